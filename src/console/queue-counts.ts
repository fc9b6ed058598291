import { Timestamp, type CollectionReference, type DocumentData } from 'firebase-admin/firestore';
import { F } from '../adapters/firestore/job-fields.js';
import { monotonic } from '../jobs/clock.js';
import type { Log } from '../jobs/ports.js';
import { IN_PROGRESS } from '../jobs/status.js';
import { buildQuery, hourCount } from './queries.js';
import type { ReadMeter } from './read-meter.js';
import type { HourBar } from './state.js';

export const STATUSES = [...IN_PROGRESS, 'complete', 'failed'] as const;
type Status = (typeof STATUSES)[number];

/** What a listener saw change: the statuses whose counts may have moved. */
export type Changed = 'active' | 'complete' | 'failed';

export interface QueueCountsOptions {
  characters: CollectionReference<DocumentData>;
  /** Firestore's time as the console knows it. */
  now(): number;
  /** Every answer's read time, to keep `now` on Firestore's clock. */
  observe(readTime: Timestamp): void;
  /** The counts changed: the state is pushed again. */
  onChange(): void;
  log: Log;
  /** Counts the reads as billed (./read-meter.ts). */
  reads?: ReadMeter;
  /** Bars of the chart (hours), the current one included. */
  hours?: number;
  /** The least time between two recounts a listener asks for. */
  minGapMs?: number;
  /** How often the closed hours' bars are counted again (a retry moves a failure out). */
  closedEveryMs?: number;
}

export interface QueueCounts {
  counts(): Record<string, number> | null;
  countedAt(): number | null;
  /** Oldest first; null until first counted. */
  hourly(): HourBar[] | null;
  /** The statuses, and with `chart` the hours' bars: the timer's count (and `/metrics`'s). */
  countAll(chart?: boolean): Promise<void>;
  /** A listener saw a change: the statuses it touches are counted again within `minGapMs`. */
  changed(what: Changed): void;
  /** Drops a recount not yet started (nobody watches); `changed` starts again. */
  stop(): void;
}

const HOUR = 3_600_000;
/** A count of up to 1,000 entries bills one read: recounted on a change only below that. */
const CHEAP_COUNT = 1_000;
const startOfHour = (ms: number) => Math.floor(ms / HOUR) * HOUR;

/**
 * The Queue's numbers, from count queries (docs/console.md): characters by status, and the
 * chart of jobs completed and failed per hour. Count queries are billed one read per 1,000
 * index entries (at least one), so they run on a timer and when a listener sees the
 * statuses they count change, at most once per `minGapMs`, never per document; the closed
 * hours' bars only every `closedEveryMs`.
 */
export function createQueueCounts(opts: QueueCountsOptions): QueueCounts {
  const hours = opts.hours ?? 12;
  const minGapMs = opts.minGapMs ?? 5_000;
  const closedEveryMs = opts.closedEveryMs ?? 600_000;
  let counts: Record<string, number> | null = null;
  let countedAt: number | null = null;
  const bars = new Map<number, { complete: number; failed: number }>();
  let closedCountedAt = -Infinity;
  let pending = new Set<Changed>();
  let timer: NodeJS.Timeout | undefined;
  let lastRecount = -Infinity;

  async function countOf(spec: Parameters<typeof buildQuery>[1]): Promise<number> {
    const snap = await buildQuery(opts.characters, spec).count().get();
    opts.reads?.counted('chart', snap.data().count);
    opts.observe(snap.readTime);
    return snap.data().count;
  }

  /** Each status's count as of the latest read applied: an older answer never wins. */
  const readAt: Partial<Record<Status, number>> = {};

  async function countStatus(status: Status): Promise<[Status, number, number]> {
    const snap = await opts.characters.where(F.status, '==', status).count().get();
    opts.reads?.counted('counts', snap.data().count);
    opts.observe(snap.readTime);
    return [status, snap.data().count, snap.readTime.toMillis()];
  }

  async function countHour(start: number, which: ReadonlyArray<'complete' | 'failed'>) {
    const from = Timestamp.fromMillis(start);
    const to = Timestamp.fromMillis(start + HOUR);
    const values = await Promise.all(which.map((s) => countOf(hourCount(s, from, to))));
    const bar = { ...(bars.get(start) ?? { complete: 0, failed: 0 }) };
    which.forEach((s, i) => (bar[s] = values[i] ?? 0));
    bars.set(start, bar);
  }

  /**
   * The statuses `what` touches, and the current hour's bars of the terminal ones. After a
   * change (`cheap`), a status last counted at CHEAP_COUNT or more is left to the timer: its
   * count bills a read per 1,000 characters, and a busy fleet changes every few seconds.
   */
  async function recount(what: ReadonlySet<Changed>, chart = true, cheap = false): Promise<void> {
    const statuses = STATUSES.filter(
      (s) =>
        (s === 'complete' || s === 'failed' ? what.has(s) : what.has('active')) &&
        !(cheap && (counts?.[s] ?? 0) >= CHEAP_COUNT),
    );
    const terminal = (['complete', 'failed'] as const).filter((s) => what.has(s));
    const [found] = await Promise.all([
      Promise.all(statuses.map(countStatus)),
      chart && terminal.length > 0 ? countHour(startOfHour(opts.now()), terminal) : undefined,
    ]);
    // All at once (a page never sees half a count), and never an older answer over a newer.
    const next = { ...(counts ?? Object.fromEntries(STATUSES.map((s) => [s, 0]))) };
    for (const [status, n, at] of found) {
      if (at < (readAt[status] ?? 0)) continue;
      readAt[status] = at;
      next[status] = n;
      countedAt = Math.max(countedAt ?? 0, at);
    }
    counts = next;
  }

  async function countAll(chart = true): Promise<void> {
    if (!chart) {
      await recount(new Set<Changed>(['active', 'complete', 'failed']), false);
      return;
    }
    const current = startOfHour(opts.now());
    const closedDue = monotonic() - closedCountedAt >= closedEveryMs || !bars.has(current - HOUR);
    const starts = Array.from({ length: hours }, (_, i) => current - (hours - 1 - i) * HOUR);
    await Promise.all([
      recount(new Set<Changed>(['active', 'complete', 'failed'])),
      ...(closedDue ? starts.slice(0, -1).map((s) => countHour(s, ['complete', 'failed'])) : []),
    ]);
    if (closedDue) closedCountedAt = monotonic();
    for (const start of bars.keys()) if (start < starts[0]!) bars.delete(start);
    opts.onChange();
  }

  function runPending(): void {
    timer = undefined;
    if (pending.size === 0) return;
    const what = pending;
    pending = new Set();
    lastRecount = monotonic();
    recount(what, true, true)
      .then(() => opts.onChange())
      .catch((err: unknown) =>
        opts.log.warn('console.poll.failed', { what: 'recount', detail: String(err) }),
      );
  }

  return {
    counts: () => counts,
    countedAt: () => countedAt,
    hourly() {
      if (bars.size === 0) return null;
      const current = startOfHour(opts.now());
      return Array.from({ length: hours }, (_, i) => {
        const hour = current - (hours - 1 - i) * HOUR;
        return { hour, ...(bars.get(hour) ?? { complete: 0, failed: 0 }) };
      });
    },
    countAll,
    changed(what) {
      pending.add(what);
      if (timer) return;
      timer = setTimeout(runPending, Math.max(0, lastRecount + minGapMs - monotonic()));
    },
    stop() {
      clearTimeout(timer);
      timer = undefined;
      pending.clear();
    },
  };
}
