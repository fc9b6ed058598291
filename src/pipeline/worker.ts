import {
  catchError,
  defer,
  filter,
  finalize,
  of,
  Subject,
  takeUntil,
  tap,
  type Observable,
  type Subscription,
} from 'rxjs';
import { describe } from '../jobs/errors.js';
import type { JobOutcome, JobRequest, Log } from '../jobs/ports.js';
import type { JobWriter } from './status-sink.js';
import { mergeMapUrgentFirst } from './urgent-first.js';

export interface WorkerOptions {
  concurrency: number;
  log: Log;
}

export interface Worker {
  /** Every job's outcome; errors only when the request source cannot recover. */
  readonly outcomes$: Observable<JobOutcome>;
  /** Jobs claimed and running now, by character id. */
  readonly active: ReadonlyMap<string, JobWriter>;
  /** Requests accepted and not finished: running, or waiting for a slot (the worker's demand). */
  readonly demand: number;
  start(onFatal: (err: unknown) => void): void;
  /**
   * Stops intake, lets running jobs finish until `deadlineMs`, then aborts the rest and
   * releases their leases so another worker can take them at once.
   */
  stop(deadlineMs: number): Promise<{ drained: boolean; released: number }>;
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
  const outcomes$ = new Subject<JobOutcome>();
  /** Requests accepted and not finished: running, or waiting for a concurrency slot. */
  const pending = new Set<string>();
  let stopping = false;
  let subscription: Subscription | undefined;
  let settle: () => void = () => undefined;
  const settled = new Promise<void>((resolve) => (settle = resolve));

  /**
   * runJob's streams end in an outcome and never error; this is the net under that promise. A
   * job that throws anyway (synchronously, or from a callback) is logged and given up, and the
   * stream goes on: its lease expires and the sweep retries it, within JOB_MAX_ATTEMPTS.
   */
  const isolated = (request: JobRequest): Observable<JobOutcome> => {
    const started = Date.now();
    return defer(() => runJob(request)).pipe(
      catchError((err: unknown) => {
        opts.log.error('job.crashed', { characterId: request.characterId, detail: describe(err) });
        return of<JobOutcome>({
          characterId: request.characterId,
          kind: 'lost',
          code: 'INTERNAL',
          durationMs: Date.now() - started,
        });
      }),
    );
  };

  const pipeline$ = requests$.pipe(
    takeUntil(stop$),
    // A takeover may promote a request for the same character still waiting for a slot.
    filter((request) => !pending.has(request.characterId) || request.takeover === true),
    tap((request) => pending.add(request.characterId)),
    // Jobs taken over from a dead worker go first: their users have waited longest.
    mergeMapUrgentFirst(
      (request) =>
        // Requests still waiting for a slot at shutdown were never claimed: drop them.
        (stopping
          ? of<JobOutcome>({ characterId: request.characterId, kind: 'skipped', durationMs: 0 })
          : isolated(request)
        ).pipe(finalize(() => pending.delete(request.characterId))),
      opts.concurrency,
      (request) => request.takeover === true,
      (request) => request.characterId,
    ),
  );

  return {
    outcomes$: outcomes$.asObservable(),
    active,
    get demand() {
      return pending.size;
    },
    start(onFatal) {
      subscription = pipeline$.subscribe({
        next: (outcome) => outcomes$.next(outcome),
        error: (err: unknown) => {
          settle();
          outcomes$.error(err);
          onFatal(err);
        },
        complete: () => {
          settle();
          outcomes$.complete();
        },
      });
    },
    async stop(deadlineMs) {
      stopping = true;
      stop$.next();
      let timer: NodeJS.Timeout | undefined;
      const drained = await Promise.race([
        settled.then(() => true),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), deadlineMs))),
      ]);
      clearTimeout(timer);
      const leftover = [...active.values()];
      subscription?.unsubscribe();
      if (!drained) opts.log.warn('worker.drain_timeout', { running: leftover.length });
      const results = await Promise.allSettled(leftover.map((writer) => writer.release()));
      for (const result of results) {
        if (result.status === 'rejected') {
          opts.log.warn('worker.release_failed', { detail: describe(result.reason) });
        }
      }
      return { drained, released: leftover.length };
    },
  };
}
