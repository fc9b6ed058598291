import {
  catchError,
  defer,
  delay,
  filter,
  finalize,
  map,
  merge,
  mergeMap,
  of,
  Subject,
  takeUntil,
  tap,
  timer,
  type Observable,
  type Subscription,
} from 'rxjs';
import { monotonic } from '../jobs/clock.js';
import { describe } from '../jobs/errors.js';
import type { JobOutcome, JobRequest, Log } from '../jobs/ports.js';
import type { ActiveJobs } from './active-jobs.js';
import { fairMerge } from './fair-queue.js';

export interface WorkerOptions {
  /**
   * Jobs held at once (claiming or claimed): WORKER_CONCURRENCY + WORKER_LOCAL_JOBS. The paid
   * calls among them are bounded apart, by the rate limiter.
   */
  heldJobs: number;
  log: Log;
  /** Jobs of one owner this worker runs at once (USER_MAX_ACTIVE); 0 = no cap. */
  maxPerOwner?: number;
  /** A job deferred because its owner is at USER_MAX_ACTIVE is requested again after this. */
  deferredRetryMs?: number;
  /** The longest per-owner queue, whenever it changes (metrics). */
  onDeepestQueue?: (depth: number) => void;
  /**
   * False for a request whose document another worker took while it waited here for a slot
   * (dealing.ts): skipped with no claim and no download. Default: every request is open.
   */
  stillOpen?: (request: JobRequest) => boolean;
}

export interface Worker {
  /** Every job's outcome; errors only when the request source cannot recover. */
  readonly outcomes$: Observable<JobOutcome>;
  start(onFatal: (err: unknown) => void): void;
  /**
   * Stops intake, lets running jobs finish until `deadlineMs`, then aborts the rest and
   * releases their leases so another worker can take them at once.
   */
  stop(deadlineMs: number): Promise<{ drained: boolean; released: number }>;
}

/**
 * requests$ → (one job per character at a time) → fairMerge(runJob, heldJobs) → outcomes.
 * Waiting requests queue per owner and free slots go round-robin between owners
 * (fair-queue.ts). Each job's stream ends in an outcome and never errors, so one job cannot
 * stop the others. `jobs` (one per worker) counts what it accepted; the runner tracks there
 * what it claimed, which `stop` releases.
 */
export function createWorker(
  requests$: Observable<JobRequest>,
  runJob: (request: JobRequest) => Observable<JobOutcome>,
  opts: WorkerOptions,
  jobs: ActiveJobs,
): Worker {
  const stop$ = new Subject<void>();
  const outcomes$ = new Subject<JobOutcome>();
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
    const started = monotonic();
    return defer(() => runJob(request)).pipe(
      catchError((err: unknown) => {
        opts.log.error('job.crashed', { characterId: request.characterId, detail: describe(err) });
        return of<JobOutcome>({
          characterId: request.characterId,
          kind: 'lost',
          code: 'INTERNAL',
          durationMs: monotonic() - started,
        });
      }),
    );
  };

  /**
   * Deferred jobs (owner at USER_MAX_ACTIVE across the fleet) hold no slot while they wait:
   * the job ends unclaimed and its request comes back after a pause (the sweep would find it
   * too, later).
   */
  const deferred = new Subject<JobRequest>();
  const retryDeferredMs = opts.deferredRetryMs ?? 2_000;
  const again$ = deferred.pipe(
    mergeMap((request) =>
      timer(retryDeferredMs).pipe(
        map((): JobRequest => ({ ...request, seenAt: Date.now(), deferred: true })),
      ),
    ),
  );

  /**
   * A request for a character whose job is still pending here is not dropped for good: a click
   * that lands while the job finishes (after its final write, during clean-up) is a new request,
   * so the latest one is replayed once the job ends, and the claim decides. The worker's own
   * writes never come back here (the feed drops documents held by a live lease).
   */
  const missed = new Map<string, JobRequest>();
  /** Characters whose job has its slot (claiming or claimed). */
  const running = new Set<string>();
  /** Jobs with a slot, by owner: a job whose owner has none is a new user's first. */
  const byOwner = new Map<string, number>();
  const ownerKey = (request: JobRequest) => request.ownerId ?? '';
  const replay = new Subject<JobRequest>();

  const pipeline$ = merge(requests$, again$, replay.pipe(delay(0))).pipe(
    takeUntil(stop$),
    // A takeover may promote a request for the same character still waiting for a slot.
    filter((request) => {
      if (!jobs.accepted(request.characterId) || request.takeover === true) return true;
      // One still waiting for a slot will read the document when it runs: nothing is missed.
      if (running.has(request.characterId)) missed.set(request.characterId, request);
      return false;
    }),
    tap((request) => jobs.accept(request.characterId)),
    fairMerge(
      (request: JobRequest) =>
        // Requests still waiting for a slot at shutdown were never claimed, and one taken by
        // another worker meanwhile needs no claim: drop them.
        (stopping || opts.stillOpen?.(request) === false
          ? of<JobOutcome>({ characterId: request.characterId, kind: 'skipped', durationMs: 0 })
          : defer(() => {
              running.add(request.characterId);
              const owner = ownerKey(request);
              const held = byOwner.get(owner) ?? 0;
              byOwner.set(owner, held + 1);
              const ownersFirst = held === 0 && request.ownerId !== undefined;
              return isolated(ownersFirst ? { ...request, ownersFirst } : request).pipe(
                finalize(() => {
                  const left = (byOwner.get(owner) ?? 1) - 1;
                  if (left > 0) byOwner.set(owner, left);
                  else byOwner.delete(owner);
                }),
              );
            })
        ).pipe(
          finalize(() => {
            jobs.finish(request.characterId);
            running.delete(request.characterId);
            const next = missed.get(request.characterId);
            missed.delete(request.characterId);
            if (next && !stopping) replay.next({ ...next, seenAt: Date.now() });
          }),
          tap((outcome) => {
            if (outcome.kind === 'deferred' && !stopping) deferred.next(request);
          }),
        ),
      {
        concurrency: opts.heldJobs,
        keyOf: (request) => request.ownerId,
        maxPerKey: opts.maxPerOwner ?? 0,
        ...(opts.onDeepestQueue ? { onDeepest: opts.onDeepestQueue } : {}),
        // Jobs taken over from a dead worker go first: their users have waited longest.
        isUrgent: (request) => request.takeover === true,
        idOf: (request) => request.characterId,
        // A takeover never waits for a slot: at most `heldJobs` of them beyond it.
        urgentExtra: opts.heldJobs,
      },
    ),
  );

  return {
    outcomes$: outcomes$.asObservable(),
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
      const leftover = jobs.writers();
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
