import type { CollectionReference, DocumentData } from 'firebase-admin/firestore';
import type { SourcePolicy } from '../adapters/http/url-policy.js';
import { clickProcess, type ClickResult, type Visuals } from './click.js';
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

/** Where the clicks go: the characters, under the worker's source policy. */
export interface ClickTarget {
  characters: CollectionReference<DocumentData>;
  sources: SourcePolicy;
}

/**
 * Clicks Process for each id in turn, `perMinute` at most, until `signal` aborts: the loop
 * `retry-failed` and `backfill` run, and the console's Retry all of a code. Each click
 * re-checks the document in its transaction (`stillWanted`), since it may have changed since
 * the scan; `onClick` hears each one's verdict and its note.
 */
export async function clickEach(
  target: ClickTarget,
  ids: readonly string[],
  opts: {
    perMinute: number;
    stillWanted: (visuals: Visuals) => string | undefined;
    signal: AbortSignal;
    now?: () => number;
    onClick?: (id: string, click: ClickResult, note: string) => void;
  },
): Promise<BatchResult> {
  const turn = createPacer(60_000 / opts.perMinute, opts.signal, opts.now);
  const result: BatchResult = { clicked: 0, skipped: 0, gone: 0, refused: 0, interrupted: false };
  for (const id of ids) {
    if (!(await turn())) {
      result.interrupted = true;
      break;
    }
    const click = await clickProcess(target.characters, id, {
      stillWanted: opts.stillWanted,
      sources: target.sources,
    });
    if (click.kind === 'clicked') result.clicked++;
    else if (click.kind === 'missing' || click.kind === 'no-image') result.gone++;
    else if (click.kind === 'forbidden') result.refused++;
    else result.skipped++;
    opts.onClick?.(id, click, clickNote(click));
  }
  return result;
}

/** What became of one click, in a few words (progress lines, the console's tally). */
export function clickNote(click: ClickResult): string {
  switch (click.kind) {
    case 'clicked':
      return 'enqueued';
    case 'in-progress':
      return `skipped: in progress (${click.status})`;
    case 'changed':
      return `skipped: ${click.reason}`;
    case 'forbidden':
      return `refused: source not allowed (${click.reason})`;
    case 'missing':
      return 'skipped: deleted';
    case 'no-image':
      return 'skipped: image removed';
  }
}

/** `clickEach` for a command: a line saying how long, a progress bar, Ctrl-C stops it. */
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
  const progress = createProgress(io, ids.length, { intervalMs, verb: 'clicked' });
  try {
    return await clickEach(session, ids, {
      ...opts,
      signal: io.signal,
      ...(io.now ? { now: io.now } : {}),
      onClick: (id, _click, note) => progress.tick(`${id} ${note}`),
    });
  } finally {
    progress.done();
  }
}

export function summary(verb: string, r: BatchResult): string {
  const parts = [`${verb} ${r.clicked}`];
  if (r.skipped) parts.push(`skipped ${r.skipped} (changed since the scan)`);
  if (r.gone) parts.push(`${r.gone} deleted or without an image now`);
  if (r.refused) parts.push(`${r.refused} refused (source not allowed)`);
  return `${parts.join(', ')}${r.interrupted ? ' (interrupted)' : ''}`;
}
