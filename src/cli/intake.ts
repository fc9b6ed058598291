import { readIntakeFlag, setIntakeFlag } from '../adapters/firestore/intake-flag.js';
import type { IntakeFlag } from '../jobs/intake-flag.js';
import type { Command } from './command.js';
import { configOf, openSession } from './context.js';
import { EXIT, UsageError } from './exit-codes.js';

/** The operator's flag as `intake` and `status` show it. */
export function formatIntakeFlag(flag: IntakeFlag): string {
  if (!flag.paused) {
    return flag.at
      ? `intake: open (resumed by ${flag.by || 'someone'} at ${new Date(flag.at).toISOString()})`
      : 'intake: open';
  }
  return `intake: PAUSED by ${flag.by || 'someone'} at ${new Date(flag.at).toISOString()}${flag.note ? ` (${flag.note})` : ''}: no worker claims a new job`;
}

export const intake: Command = {
  name: 'intake',
  summary: "pause or resume the whole fleet's intake of new jobs",
  help: `Usage: showcase-worker intake [pause | resume] [--note TEXT] [--json]

Without arguments: whether the operator paused the fleet's intake.
  pause    every worker stops claiming new jobs within seconds: clicks stay waiting (no lease,
           no download, nothing fails); running jobs and takeovers of a dead worker's jobs
           finish; the sweep goes on. The same pause as the daily credit budget's, with reason
           "operator" (docs/fleet.md). It holds until resumed, across restarts.
  resume   the waiting clicks are claimed within seconds.
The console's Pause and Resume buttons set the same flag (showcaseFleet/intake).

Options:
  --note TEXT   why, for the other operators (shown by status, the console and the logs)
  --json        print the flag as one JSON object

Exit codes: 0 shown or set; 2 invalid configuration; 3 Firestore failed; 64 usage error.`,
  options: { note: { type: 'string' }, json: { type: 'boolean' } },
  async run({ positionals, values }, io) {
    const [action, ...rest] = positionals;
    if (rest.length > 0) throw new UsageError('too many arguments');
    if (action !== undefined && action !== 'pause' && action !== 'resume') {
      throw new UsageError(`unknown action "${action}": pause, or resume`);
    }
    const note = typeof values.note === 'string' ? values.note : undefined;
    if (note !== undefined && action === undefined) {
      throw new UsageError('--note goes with pause or resume');
    }
    const config = configOf(io);
    const session = openSession(io, config);
    try {
      const fleet = config.fleet.collection;
      const flag =
        action === undefined
          ? await readIntakeFlag(session.db, fleet)
          : (
              await setIntakeFlag(session.db, fleet, {
                paused: action === 'pause',
                by: 'cli',
                ...(note === undefined ? {} : { note }),
              })
            ).to;
      io.out(values.json ? JSON.stringify(flag, null, 2) : formatIntakeFlag(flag));
      return EXIT.OK;
    } finally {
      await session.close();
    }
  },
};
