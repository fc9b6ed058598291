import { clickProcess, type Visuals } from './click.js';
import type { Session } from './context.js';
import type { CliIo } from './io.js';
import { createPacer } from './pace.js';
import { createProgress, formatDuration } from './progress.js';

export interface BatchResult {
  clicked: number;
  /** Left alone: already in progress, or changed since it was selected. */
  skipped: number;
  /** Vanished or lost its image since it was selected. */
  gone: number;
  /** Not clicked: the worker would refuse the source (SOURCE_URL_FORBIDDEN). */
  refused: number;
  interrupted: boolean;
}

/**
 * Clicks Process for each id, `perMinute` at most, with a progress bar. Each click re-checks
 * the document in its transaction (`stillWanted`), since it may have changed since the scan.
 */
export async function clickPaced(
  session: Session,
  io: CliIo,
  ids: string[],
  opts: { perMinute: number; stillWanted: (visuals: Visuals) => string | undefined },
): Promise<BatchResult> {
  const intervalMs = 60_000 / opts.perMinute;
  if (ids.length > 1) {
    io.out(
      `clicking ${ids.length} characters, ${opts.perMinute} a minute ` +
        `(about ${formatDuration((ids.length - 1) * intervalMs)}); Ctrl-C stops cleanly`,
    );
  }
  const turn = createPacer(intervalMs, io.signal, io.now);
  const progress = createProgress(io, ids.length, { intervalMs, verb: 'clicked' });
  const result: BatchResult = { clicked: 0, skipped: 0, gone: 0, refused: 0, interrupted: false };
  try {
    for (const id of ids) {
      if (!(await turn())) {
        result.interrupted = true;
        break;
      }
      const click = await clickProcess(session.characters, id, {
        stillWanted: opts.stillWanted,
        sources: session.sources,
      });
      if (click.kind === 'clicked') result.clicked++;
      else if (click.kind === 'missing' || click.kind === 'no-image') result.gone++;
      else if (click.kind === 'forbidden') result.refused++;
      else result.skipped++;
      const note =
        click.kind === 'clicked'
          ? 'enqueued'
          : click.kind === 'in-progress'
            ? `skipped: in progress (${click.status})`
            : click.kind === 'changed'
              ? `skipped: ${click.reason}`
              : click.kind === 'forbidden'
                ? `refused: source not allowed (${click.reason})`
                : `skipped: ${click.kind === 'missing' ? 'deleted' : 'image removed'}`;
      progress.tick(`${id} ${note}`);
    }
  } finally {
    progress.done();
  }
  return result;
}

export function summary(verb: string, r: BatchResult): string {
  const parts = [`${verb} ${r.clicked}`];
  if (r.skipped) parts.push(`skipped ${r.skipped} (changed since the scan)`);
  if (r.gone) parts.push(`${r.gone} deleted or without an image now`);
  if (r.refused) parts.push(`${r.refused} refused (source not allowed)`);
  return `${parts.join(', ')}${r.interrupted ? ' (interrupted)' : ''}`;
}
