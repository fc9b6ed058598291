import { Observable, finalize, from, type ObservableInput, type OperatorFunction } from 'rxjs';

export interface FairMergeOptions<T> {
  /** Inner streams subscribed at once (free slots). */
  concurrency: number;
  /** The queue a value waits in (its owner); values without one share the `''` queue. */
  keyOf: (value: T) => string | undefined;
  /** At most this many inner streams of one key at once; 0 = no cap. */
  maxPerKey?: number;
  /** Called whenever the longest per-key queue changes length (for metrics). */
  onDeepest?: (depth: number) => void;
  /**
   * Urgent values (jobs taken over from a dead worker, whose users have waited longest) are
   * served before every key's queue, in arrival order, whatever `maxPerKey` says.
   */
  isUrgent?: (value: T) => boolean;
  /**
   * With `isUrgent`: an urgent value whose id is waiting as a normal value takes its place;
   * one whose id is running or already urgent is dropped.
   */
  idOf?: (value: T) => string;
  /**
   * Slots beyond `concurrency` that only urgent values may use: a takeover starts at once
   * instead of waiting for a job to end (on a saturated worker, that can take many seconds).
   */
  urgentExtra?: number;
}

interface Waiting<T> {
  value: T;
  /** Arrival order across all queues: breaks ties between keys never served. */
  seq: number;
}

/**
 * Like `mergeMap(project, concurrency)`, but fair between keys: values wait in one queue per
 * key, and each free slot goes to the key served least recently (arrival order within a key).
 * One key alone gets every slot. Values are projected when they get their slot, not when they
 * arrive, so `project` sees the state of the world at that moment (e.g. shutdown).
 *
 * Completes when the source has completed, every queue is empty and every inner stream has
 * completed; an error from the source or an inner stream is passed on at once (as mergeMap).
 */
export function fairMerge<T, R>(
  project: (value: T) => ObservableInput<R>,
  opts: FairMergeOptions<T>,
): OperatorFunction<T, R> {
  const cap = Math.max(1, opts.concurrency);
  const perKey = opts.maxPerKey ?? 0;
  const extra = Math.max(0, opts.urgentExtra ?? 0);
  return (source) =>
    new Observable<R>((subscriber) => {
      const queues = new Map<string, Waiting<T>[]>();
      const urgent: T[] = [];
      const runningIds = new Set<string>();
      /** Key → tick of its last slot; a key never served has none and goes first. */
      const lastServed = new Map<string, number>();
      const running = new Map<string, number>();
      let active = 0;
      /** Urgent values running: up to `extra` of them do not count against `cap`. */
      let activeUrgent = 0;
      let tick = 0;
      let seq = 0;
      let sourceDone = false;
      let deepest = 0;

      const reportDeepest = () => {
        let max = 0;
        for (const queue of queues.values()) max = Math.max(max, queue.length);
        if (max !== deepest) {
          deepest = max;
          opts.onDeepest?.(max);
        }
      };

      const eligible = (key: string) => perKey === 0 || (running.get(key) ?? 0) < perKey;

      /** The key whose turn it is: least recently served; never served first, by arrival. */
      const nextKey = (): string | undefined => {
        let best: string | undefined;
        let bestServed = Infinity;
        let bestSeq = Infinity;
        for (const [key, queue] of queues) {
          if (!eligible(key)) continue;
          const served = lastServed.get(key) ?? -1;
          const headSeq = queue[0]?.seq ?? Infinity;
          if (served < bestServed || (served === bestServed && headSeq < bestSeq)) {
            best = key;
            bestServed = served;
            bestSeq = headSeq;
          }
        }
        return best;
      };

      const maybeComplete = () => {
        if (sourceDone && active === 0 && queues.size === 0 && urgent.length === 0) {
          subscriber.complete();
        }
      };

      const fill = () => {
        while (active < cap + extra && !subscriber.closed && urgent.length > 0) {
          const value = urgent.shift() as T;
          const key = opts.keyOf(value) ?? '';
          lastServed.set(key, ++tick);
          active += 1;
          activeUrgent += 1;
          running.set(key, (running.get(key) ?? 0) + 1);
          start(key, value, true);
        }
        while (active - Math.min(activeUrgent, extra) < cap && !subscriber.closed) {
          const key = nextKey();
          if (key === undefined) break;
          const queue = queues.get(key) ?? [];
          const item = queue.shift();
          if (queue.length === 0) queues.delete(key);
          if (!item) continue;
          lastServed.set(key, ++tick);
          active += 1;
          running.set(key, (running.get(key) ?? 0) + 1);
          start(key, item.value, false);
        }
        reportDeepest();
        maybeComplete();
      };

      const start = (key: string, value: T, isUrgent: boolean) => {
        const id = opts.idOf?.(value);
        if (id !== undefined) runningIds.add(id);
        let inner: ObservableInput<R>;
        try {
          inner = project(value);
        } catch (err) {
          subscriber.error(err);
          return;
        }
        // Like mergeMap, the next value gets the slot once this inner stream is torn down
        // (its finalizers have run), so a slot is never held by two streams at once.
        subscriber.add(
          from(inner)
            .pipe(
              finalize(() => {
                if (id !== undefined) runningIds.delete(id);
                active -= 1;
                if (isUrgent) activeUrgent -= 1;
                const left = (running.get(key) ?? 1) - 1;
                if (left === 0) running.delete(key);
                else running.set(key, left);
                if (!subscriber.closed) fill();
              }),
            )
            .subscribe({
              next: (r) => subscriber.next(r),
              error: (err: unknown) => subscriber.error(err),
            }),
        );
      };

      /** Queues an urgent value ahead of all keys; false when it was dropped. */
      const promote = (value: T): boolean => {
        const id = opts.idOf?.(value);
        if (id !== undefined) {
          if (runningIds.has(id) || urgent.some((u) => opts.idOf?.(u) === id)) return false;
          for (const [key, queue] of queues) {
            const i = queue.findIndex((w) => opts.idOf?.(w.value) === id);
            if (i < 0) continue;
            queue.splice(i, 1);
            if (queue.length === 0) queues.delete(key);
          }
        }
        urgent.push(value);
        return true;
      };

      const sourceSub = source.subscribe({
        next: (value) => {
          if (opts.isUrgent?.(value)) {
            if (promote(value)) fill();
            return;
          }
          const key = opts.keyOf(value) ?? '';
          const queue = queues.get(key);
          const item = { value, seq: seq++ };
          if (queue) queue.push(item);
          else queues.set(key, [item]);
          fill();
        },
        error: (err: unknown) => subscriber.error(err),
        complete: () => {
          sourceDone = true;
          maybeComplete();
        },
      });
      subscriber.add(sourceSub);
      return () => {
        queues.clear();
        urgent.length = 0;
        if (deepest !== 0) opts.onDeepest?.(0);
      };
    });
}
