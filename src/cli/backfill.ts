import { FieldPath } from 'firebase-admin/firestore';
import { F } from '../adapters/firestore/job-fields.js';
import { positiveInt } from './args.js';
import { clickPaced, summary } from './batch.js';
import { hasImage, sourceRefusal, visualsOf, type Visuals } from './click.js';
import type { Command } from './command.js';
import { openSession, type Session } from './context.js';
import { EXIT } from './exit-codes.js';
import { clicksPerMinute } from './pace.js';

const PAGE = 500;

/**
 * A character that needs a showcase: it has an image, was never processed and was never
 * requested. Failed ones are `retry-failed`'s business; requested ones are queued already.
 */
export function needsShowcase(visuals: Visuals): boolean {
  const status = visuals.showcaseProcessingStatus;
  return (
    hasImage(visuals) &&
    (status === undefined || status === null || status === '') &&
    visuals.isShowcaseProcessed !== true &&
    !visuals.showcaseImageUrl
  );
}

export const backfill: Command = {
  name: 'backfill',
  summary: 'click Process for every character with an image and no showcase yet',
  help: `Usage: showcase-worker backfill [--limit N] [--dry-run] [--per-minute N]

Finds every character with visuals.imageUrl, no showcase and no status (never clicked), and
clicks Process for each, at a pace that keeps ClipDrop within its quota: CLIPDROP_RPM / 2
jobs a minute (each job makes two calls), so the worker never has to wait on 429s. Shows a
progress bar on a terminal, one line per character otherwise. Ctrl-C stops between two
clicks; running it again continues where it stopped.

Failed characters are left to retry-failed; characters already queued are left alone.
Characters whose source the worker would refuse (SOURCE_URL_FORBIDDEN: a host not allowed,
or a gs:// object that is not the owner's, see SOURCE_GS_PATHS) are listed, not clicked.

Options:
  --limit N        click at most N characters (the first N by id)
  --dry-run        list the characters it would click; write nothing
  --per-minute N   clicks a minute instead of the quota-derived pace

Exit codes: 0 done (also when nothing needed a showcase); 1 some characters vanished or
lost their image during the run, or have a source the worker would refuse; 2 invalid configuration; 3 Firestore failed; 64 bad option;
130 interrupted.`,
  options: {
    limit: { type: 'string' },
    'dry-run': { type: 'boolean' },
    'per-minute': { type: 'string' },
  },
  async run({ values }, io) {
    const limit = positiveInt(values.limit, '--limit');
    const perMinute = positiveInt(values['per-minute'], '--per-minute');
    const session = openSession(io);
    try {
      const scanned = await scan(session);
      const refused = scanned.filter((c) => c.refusal !== undefined);
      for (const c of refused) io.out(`refused  ${c.id}  source not allowed (${c.refusal})`);
      const found = scanned.filter((c) => c.refusal === undefined);
      const chosen = limit === undefined ? found : found.slice(0, limit);
      const what =
        `${found.length} characters need a showcase` +
        (chosen.length < found.length ? `; taking the first ${chosen.length}` : '') +
        (refused.length > 0 ? `; ${refused.length} refused (source not allowed)` : '');
      const done = refused.length > 0 ? EXIT.PROBLEMS : EXIT.OK;
      if (values['dry-run']) {
        for (const c of chosen) io.out(`would enqueue  ${c.id}  ${c.imageUrl}`);
        io.out(`${what}; dry run: nothing written`);
        return done;
      }
      io.out(what);
      if (chosen.length === 0) return done;
      const result = await clickPaced(
        session,
        io,
        chosen.map((c) => c.id),
        {
          perMinute: clicksPerMinute(session.config.clipdrop.rpm, perMinute),
          stillWanted: (visuals) => (needsShowcase(visuals) ? undefined : 'processed meanwhile'),
        },
      );
      io.out(summary('enqueued', result));
      if (result.interrupted) return EXIT.INTERRUPTED;
      return result.gone > 0 || result.refused > 0 ? EXIT.PROBLEMS : done;
    } finally {
      await session.close();
    }
  },
};

interface Candidate {
  id: string;
  imageUrl: string;
  /** Why the worker would refuse the source, if it would. */
  refusal: string | undefined;
}

/** Pages through the whole collection by id, reading only the fields that decide. */
async function scan(session: Session): Promise<Candidate[]> {
  const found: Candidate[] = [];
  let after: string | undefined;
  for (;;) {
    let query = session.characters
      .orderBy(FieldPath.documentId())
      .select('visuals.imageUrl', 'meta.userId', F.status, F.imageUrl, F.processed)
      .limit(PAGE);
    if (after !== undefined) query = query.startAfter(after);
    const page = await query.get();
    for (const doc of page.docs) {
      const visuals = visualsOf(doc.data());
      if (needsShowcase(visuals)) {
        const refusal = sourceRefusal(doc.data(), session.sources);
        found.push({ id: doc.id, imageUrl: String(visuals.imageUrl), refusal });
      }
    }
    if (page.size < PAGE) return found;
    after = page.docs[page.docs.length - 1]?.id;
  }
}
