import { F } from '../adapters/firestore/job-fields.js';
import { positiveInt, sinceInstant, stringOpt } from './args.js';
import { clickPaced, summary } from './batch.js';
import { failureCode, stillFailed, visualsOf, type Visuals } from './click.js';
import type { Command } from './command.js';
import { openSession } from './context.js';
import { EXIT } from './exit-codes.js';
import { clicksPerMinute } from './pace.js';

interface Failure {
  id: string;
  code: string;
  at: number | undefined;
}

export const retryFailed: Command = {
  name: 'retry-failed',
  summary: 're-click failed jobs (by error code, by age)',
  help: `Usage: showcase-worker retry-failed [--code CODE[,CODE...]] [--since DURATION] [--dry-run]

Clicks Process again for characters whose job failed, oldest failure first, at a pace that
keeps ClipDrop within its quota (CLIPDROP_RPM / 2 jobs a minute: each job makes two calls).
Each click re-checks the character: one that was re-clicked, fixed or deleted meanwhile is
left alone, and so is one whose source the worker would refuse (SOURCE_URL_FORBIDDEN).

Options:
  --code CODE        only failures with this error code (comma-separated for several),
                     e.g. CLIPDROP_RATE_LIMITED,STORAGE_UNAVAILABLE
  --since DURATION   only failures newer than this: 30m, 24h, 7d, or an ISO date
  --dry-run          list what would be retried; write nothing
  --per-minute N     clicks a minute instead of the quota-derived pace

Exit codes: 0 done (also when nothing matched); 1 some selected characters were deleted or
lost their image before their click, or have a source the worker would refuse; 2 invalid configuration; 3 Firestore failed; 64 bad
option; 130 interrupted.`,
  options: {
    code: { type: 'string' },
    since: { type: 'string' },
    'dry-run': { type: 'boolean' },
    'per-minute': { type: 'string' },
  },
  async run({ values }, io) {
    const now = io.now?.() ?? Date.now();
    const codes = stringOpt(values.code)
      ?.split(',')
      .map((c) => c.trim())
      .filter(Boolean);
    const since = values.since === undefined ? undefined : sinceInstant(String(values.since), now);
    const perMinute = positiveInt(values['per-minute'], '--per-minute');
    const session = openSession(io);
    try {
      const snap = await session.characters
        .where(F.status, '==', 'failed')
        .select(F.status, `${F.error}.code`, `${F.error}.at`)
        .get();
      const matches: Failure[] = snap.docs
        .map((doc) => failureOf(doc.id, visualsOf(doc.data())))
        .filter((f) => !codes || codes.includes(f.code))
        .filter((f) => since === undefined || (f.at !== undefined && f.at >= since))
        .sort((a, b) => (a.at ?? 0) - (b.at ?? 0));

      const filters = [
        codes ? `code ${codes.join(' or ')}` : undefined,
        since === undefined ? undefined : `since ${new Date(since).toISOString()}`,
      ].filter(Boolean);
      const what = `${matches.length} of ${snap.size} failed jobs match${filters.length ? ` (${filters.join(', ')})` : ''}`;
      if (values['dry-run']) {
        for (const f of matches) {
          io.out(`would retry  ${f.id}  ${f.code}  ${f.at ? new Date(f.at).toISOString() : ''}`);
        }
        io.out(`${what}; dry run: nothing written`);
        return EXIT.OK;
      }
      io.out(what);
      if (matches.length === 0) return EXIT.OK;
      const result = await clickPaced(
        session,
        io,
        matches.map((f) => f.id),
        {
          perMinute: clicksPerMinute(session.config.clipdrop.rpm, perMinute),
          // Re-checked in the click's transaction: only a failure that still matches.
          stillWanted: stillFailed(codes),
        },
      );
      io.out(summary('re-clicked', result));
      if (result.interrupted) return EXIT.INTERRUPTED;
      return result.gone > 0 || result.refused > 0 ? EXIT.PROBLEMS : EXIT.OK;
    } finally {
      await session.close();
    }
  },
};

function failureOf(id: string, visuals: Visuals): Failure {
  const at = visuals.showcaseProcessingError?.at as { toMillis?: () => number } | undefined;
  return {
    id,
    code: failureCode(visuals),
    at: typeof at?.toMillis === 'function' ? at.toMillis() : undefined,
  };
}
