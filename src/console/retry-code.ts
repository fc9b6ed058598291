import type { CollectionReference, DocumentData } from 'firebase-admin/firestore';
import type { SourcePolicy } from '../adapters/http/url-policy.js';
import { clickEach } from '../cli/batch.js';
import { stillFailed, visualsOf } from '../cli/click.js';
import { clicksPerMinute } from '../cli/pace.js';
import { describe } from '../jobs/errors.js';
import type { Log } from '../jobs/ports.js';
import { buildQuery, CONSOLE_QUERIES, RETRY_ALL_LIMIT } from './queries.js';

/** An error code as the worker writes them (src/jobs/errors.ts), and `UNKNOWN`. */
export const ERROR_CODE = /^[A-Z][A-Z0-9_]{0,63}$/;

/** The failures of one code a Retry all would click: the failures panel's window. */
export interface Selection {
  code: string;
  windowHours: number;
  /** Oldest failure first, as `retry-failed` clicks them; at most RETRY_ALL_LIMIT. */
  ids: string[];
  /** More failures of the code in the window than one Retry all clicks. */
  more: boolean;
}

/** What the preview answers: how many the confirm would click, and how long it would take. */
export interface RetryCodePreview extends Omit<Selection, 'ids'> {
  action: 'retry-code-preview';
  count: number;
  limit: number;
  perMinute: number;
  etaMs: number;
}

/** One Retry all on the server: what it selected and, as it goes, what became of each click. */
export interface RetryCodeRun {
  action: 'retry-code';
  code: string;
  by: string;
  startedAt: number;
  selected: number;
  perMinute: number;
  clicked: number;
  skipped: number;
  gone: number;
  refused: number;
  /** Each reason a click was not made, with how many (e.g. `skipped: now complete`). */
  why: Record<string, number>;
  done: boolean;
  interrupted: boolean;
  finishedAt: number | null;
}

/**
 * Picks what a Retry all clicks from the newest failures of its code (`docs`, newest first,
 * one more than the limit): those in the window, oldest first, never more than `max` (the
 * count the operator's preview showed: a burst of new failures since is not clicked unseen).
 */
export function pickFailures(
  docs: ReadonlyArray<{ id: string; at: number | undefined }>,
  since: number,
  max: number = RETRY_ALL_LIMIT,
): { ids: string[]; more: boolean } {
  const inWindow = docs.filter((d) => d.at !== undefined && d.at >= since);
  const cap = Math.max(0, Math.min(max, RETRY_ALL_LIMIT));
  // Oldest first, as `retry-failed` clicks: the ones the preview counted come before newer.
  const picked = [...inWindow].reverse().slice(0, cap);
  return { ids: picked.map((d) => d.id), more: inWindow.length > cap };
}

export interface RetryCodeOptions {
  characters: CollectionReference<DocumentData>;
  sources: SourcePolicy;
  /** The key's ClipDrop requests a minute: the clicks' pace, as `retry-failed`'s. */
  rpm: number;
  windowHours: number;
  log: Log;
  now?: () => number;
}

export interface RetryCode {
  preview(code: string): Promise<RetryCodePreview>;
  /** Starts a run in the background; `busy` when one is still going (one at a time). */
  start(code: string, by: string, max: number): Promise<RetryCodeRun | { busy: RetryCodeRun }>;
  /** The current or last run. */
  status(): RetryCodeRun | null;
  /** Stops a run between two clicks (the console's shutdown). */
  close(): Promise<void>;
}

/**
 * Retry all of a code (docs/console.md): the preview counts, the run clicks on the server with
 * `retry-failed`'s loop and pace (src/cli/batch.ts), each an operator's click that re-checks
 * the character first, and logs one `console.action` line with what changed when it ends.
 */
export function createRetryCode(opts: RetryCodeOptions): RetryCode {
  const now = opts.now ?? Date.now;
  const perMinute = clicksPerMinute(opts.rpm);
  const abort = new AbortController();
  let last: RetryCodeRun | null = null;
  let running: Promise<void> | null = null;

  async function select(code: string, max?: number): Promise<Selection> {
    const spec = CONSOLE_QUERIES.failuresOfCode;
    const query = buildQuery(opts.characters, {
      ...spec,
      where: [spec.where[0], { ...spec.where[1], value: code }],
    });
    const snap = await query.get();
    const docs = snap.docs.map((d) => {
      const at = visualsOf(d.data()).showcaseProcessingError?.at as
        { toMillis?: () => number } | undefined;
      return { id: d.id, at: typeof at?.toMillis === 'function' ? at.toMillis() : undefined };
    });
    // The window on this process's clock: a few seconds' skew does not matter over a day.
    const since = now() - opts.windowHours * 3_600_000;
    return { code, windowHours: opts.windowHours, ...pickFailures(docs, since, max) };
  }

  return {
    async preview(code) {
      const { ids, ...rest } = await select(code);
      return {
        action: 'retry-code-preview',
        ...rest,
        count: ids.length,
        limit: RETRY_ALL_LIMIT,
        perMinute,
        etaMs: Math.max(0, ids.length - 1) * (60_000 / perMinute),
      };
    },

    async start(code, by, max) {
      if (last && !last.done) return { busy: last };
      const { ids } = await select(code, max);
      if (last && !last.done) return { busy: last };
      const run: RetryCodeRun = {
        action: 'retry-code',
        code,
        by,
        startedAt: now(),
        selected: ids.length,
        perMinute,
        clicked: 0,
        skipped: 0,
        gone: 0,
        refused: 0,
        why: {},
        done: false,
        interrupted: false,
        finishedAt: null,
      };
      last = run;
      running = clickEach(opts, ids, {
        perMinute,
        stillWanted: stillFailed([code]),
        signal: abort.signal,
        now,
        onClick: (_id, click, note) => {
          if (click.kind === 'clicked') run.clicked++;
          else run.why[note] = (run.why[note] ?? 0) + 1;
        },
      })
        .then((result) => {
          Object.assign(run, result, { done: true, finishedAt: now() });
          opts.log.info('console.action', { ...run });
        })
        .catch((err: unknown) => {
          // Firestore failed mid-way: the clicks made stand (each its own transaction).
          Object.assign(run, { done: true, interrupted: true, finishedAt: now() });
          opts.log.error('console.action.failed', { ...run, detail: describe(err) });
        });
      return { ...run };
    },

    status: () => (last ? { ...last, why: { ...last.why } } : null),

    async close() {
      abort.abort();
      await running;
    },
  };
}
