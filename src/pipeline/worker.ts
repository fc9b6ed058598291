import {
  filter,
  finalize,
  merge,
  mergeMap,
  of,
  Subject,
  takeUntil,
  type Observable,
  type Subscription,
} from 'rxjs';
import type { JobOutcome, JobRequest, Log } from '../jobs/ports.js';
import type { JobWriter } from './status-sink.js';

export interface WorkerOptions {
  concurrency: number;
  log: Log;
}

export interface Worker {
  /** Every job's outcome; errors only when the request source cannot recover. */
  readonly outcomes$: Observable<JobOutcome>;
  /** Jobs claimed and running now. */
  readonly active: ReadonlyMap<string, JobWriter>;
  start(onFatal: (err: unknown) => void): void;
  /**
   * Stops intake, lets running jobs finish until `deadlineMs`, then aborts the rest and
   * releases their leases so another worker can take them at once.
   */
  stop(deadlineMs: number): Promise<{ finished: number; released: number }>;
}

/**
 * requests$ → (one job per character at a time) → mergeMap(runJob, concurrency) → outcomes.
 * Each job's stream ends in an outcome and never errors, so one job cannot stop the others.
 */
export function createWorker(
  requests$: Observable<JobRequest>,
  runJob: (request: JobRequest) => Observable<JobOutcome>,
  opts: WorkerOptions,
  active: Map<string, JobWriter>,
): Worker {
  const stop$ = new Subject<void>();
  const done$ = new Subject<void>();
  const outcomes$ = new Subject<JobOutcome>();
  /** Requests accepted and not finished: running, or waiting for a concurrency slot. */
  const pending = new Set<string>();
  let stopping = false;
  let subscription: Subscription | undefined;
  let finished = 0;

  const pipeline$ = requests$.pipe(
    takeUntil(stop$),
    filter((request) => !pending.has(request.characterId)),
    mergeMap((request) => {
      pending.add(request.characterId);
      return of(request);
    }),
    mergeMap(
      (request) =>
        (stopping
          ? of<JobOutcome>({ characterId: request.characterId, kind: 'skipped', durationMs: 0 })
          : runJob(request)
        ).pipe(finalize(() => pending.delete(request.characterId))),
      opts.concurrency,
    ),
  );

  return {
    outcomes$: outcomes$.asObservable(),
    active,
    start(onFatal) {
      subscription = pipeline$.subscribe({
        next: (outcome) => {
          if (outcome.kind !== 'skipped') finished += 1;
          outcomes$.next(outcome);
        },
        error: (err: unknown) => {
          outcomes$.error(err);
          onFatal(err);
        },
        complete: () => done$.next(),
      });
    },
    async stop(deadlineMs) {
      stopping = true;
      const before = finished;
      const drained = new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), deadlineMs);
        const sub = merge(
          done$,
          outcomes$.pipe(filter(() => active.size === 0 && pending.size === 0)),
        ).subscribe({
          next: () => {
            clearTimeout(timer);
            sub.unsubscribe();
            resolve(true);
          },
          error: () => {
            clearTimeout(timer);
            resolve(false);
          },
        });
      });
      stop$.next();
      const clean = active.size === 0 && pending.size === 0 ? true : await drained;
      const leftover = [...active.values()];
      subscription?.unsubscribe();
      if (!clean) opts.log.warn('worker.drain_timeout', { running: leftover.length });
      const released = await Promise.allSettled(leftover.map((w) => w.release()));
      for (const r of released) {
        if (r.status === 'rejected')
          opts.log.warn('worker.release_failed', { detail: String(r.reason) });
      }
      return { finished: finished - before, released: leftover.length };
    },
  };
}
