import { clickProcess, type ClickResult } from './click.js';
import type { Command } from './command.js';
import { openSession } from './context.js';
import { EXIT, UsageError } from './exit-codes.js';

const VERDICT: Record<ClickResult['kind'], string> = {
  clicked: 'enqueued',
  'in-progress': 'already',
  missing: 'missing',
  'no-image': 'no-image',
  forbidden: 'forbidden',
  changed: 'skipped',
};

export const enqueue: Command = {
  name: 'enqueue',
  summary: 'click Process for these characters',
  help: `Usage: showcase-worker enqueue <characterId...>

Clicks Process for each character, as the app does: sets
visuals.showcaseProcessingStatus to "removing-background". A running worker picks the job up
within milliseconds. A character already being processed is left alone (the running job
already covers it).

Prints one line per id: enqueued, already (in progress), missing (no such character),
no-image (nothing to process) or forbidden (the worker would refuse its source with
SOURCE_URL_FORBIDDEN: a host not allowed, or a gs:// object that is not the owner's, see
SOURCE_GS_PATHS; not clicked).

Exit codes: 0 every id enqueued or already in progress; 1 some id missing, without an
image or with a forbidden source; 2 invalid configuration; 3 Firestore failed; 64 no id given.`,
  options: {},
  async run({ positionals }, io) {
    if (positionals.length === 0) throw new UsageError('give at least one character id');
    const session = openSession(io);
    let problems = 0;
    try {
      for (const id of positionals) {
        if (io.signal.aborted) return EXIT.INTERRUPTED;
        const result = await clickProcess(session.characters, id, { sources: session.sources });
        const detail =
          result.kind === 'clicked'
            ? `was ${result.previous ?? 'never processed'}`
            : result.kind === 'in-progress'
              ? `in progress (${result.status})`
              : result.kind === 'missing'
                ? 'no such character'
                : result.kind === 'no-image'
                  ? 'no visuals.imageUrl to process'
                  : result.kind === 'forbidden'
                    ? `source refused (SOURCE_URL_FORBIDDEN): ${result.reason}`
                    : result.reason;
        if (['missing', 'no-image', 'forbidden'].includes(result.kind)) problems++;
        io.out(`${VERDICT[result.kind].padEnd(9)} ${id}  ${detail}`);
      }
    } finally {
      await session.close();
    }
    return problems > 0 ? EXIT.PROBLEMS : EXIT.OK;
  },
};
