import { map, merge, NEVER, type Observable, type SchedulerLike } from 'rxjs';
import { RoundTripCounter } from '../jobs/round-trips.js';
import {
  noTelemetry,
  PresenceLapsedError,
  type Fence,
  type FirestoreOps,
  type JobOutcome,
  type JobRequest,
  type Log,
  type RoundTripScope,
  type Telemetry,
} from '../jobs/ports.js';
import type { InProgressStatus } from '../jobs/status.js';
import { monotonic } from '../jobs/clock.js';
import { fromAbortable } from './abortable.js';
import { renewLease } from './lease.js';
import { retryTransient, type RetryPolicy } from './retry.js';
import type { JobWriter } from './status-sink.js';

/** How a job's calls are paced: retries, lease renewal, the clock and the scheduler. */
export interface JobTiming {
  retry: RetryPolicy;
  /** How often a running job's lease is extended (a third of the lease). */
  renewEveryMs: number;
  scheduler?: SchedulerLike;
  /** Durations and the fence's "claimed at": monotonic (src/jobs/clock.ts). */
  now?: () => number;
  /** Firestore's time, to which the click's time belongs (pickup). Default: this machine's. */
  serverNow?: () => number;
}

/**
 * What watches over every job besides its work. Each member has a do-nothing default
 * (`unwatched`): a runner built without one simply does not report or fence that way.
 */
export interface JobWatch {
  telemetry: Telemetry;
  /**
   * The worker's own heartbeat record: a job claimed before a gap in it stops before any paid
   * call or write (another worker may hold it now). Default: always holds (a single worker).
   */
  fence: Fence;
  /** Lets the adapters count each job's Google requests (`JobOutcome.roundTrips`). */
  roundTrips: RoundTripScope;
  /** Firestore reads and writes made for a job since the last call (counted by the adapter). */
  firestoreOps: (characterId: string) => FirestoreOps | undefined;
  /** Called with each claimed job's writer while it runs, and with undefined when it ends. */
  track: (characterId: string, writer: JobWriter | undefined) => void;
}

export const unwatched: JobWatch = {
  telemetry: noTelemetry,
  fence: { holds: () => true, lapses$: NEVER },
  roundTrips: { run: (_trips, call) => call(), report: () => undefined },
  firestoreOps: () => undefined,
  track: () => undefined,
};

/** Each part of the watch given, the do-nothing default for each left out (or undefined). */
export function watching(given: Partial<JobWatch> = {}): JobWatch {
  return {
    telemetry: given.telemetry ?? unwatched.telemetry,
    fence: given.fence ?? unwatched.fence,
    roundTrips: given.roundTrips ?? unwatched.roundTrips,
    firestoreOps: given.firestoreOps ?? unwatched.firestoreOps,
    track: given.track ?? unwatched.track,
  };
}

type Level = 'info' | 'warn' | 'error';
type Call = <T>(name: string, fn: (signal: AbortSignal) => Promise<T>) => Observable<T>;

/** One request's scope before its claim: its log, its counts and the outcome it reports. */
export interface JobScope {
  readonly log: Log;
  readonly telemetry: Telemetry;
  /** A call before the claim: retried on transient errors, its Google requests counted. */
  retried: Call;
  outcome(kind: JobOutcome['kind'], code?: string): JobOutcome;
  /** The claimed job's scope: from here on every call is fenced. */
  claimed(writer: JobWriter, origin: JobRequest['origin']): ClaimedScope;
}

/** A claimed job's scope: its log line fields, fenced calls, lease renewal and the fence. */
export interface ClaimedScope {
  /** The stage the job is in, which its log lines name. */
  readonly stage: InProgressStatus;
  /** Enters a stage (logged); the function returned reports its duration once it is done. */
  enter(stage: InProgressStatus): () => void;
  /** One side-effecting call, abortable, fenced, retried on transient errors. */
  call: Call;
  event(name: string, fields: Record<string, unknown>, level?: Level): void;
  /**
   * Renews the lease while subscribed and errors when the fence's coverage runs out (calls in
   * flight are then aborted) or a renewal fails for good. Emits nothing.
   */
  guard$: Observable<never>;
  /** The job's last write is done: its round trips are final. */
  settled(): void;
  /** The job has ended: it no longer holds a writer. */
  ended(): void;
}

/**
 * Opens one request's scope. `started` precedes the claim: the fence refuses a job if the
 * worker's heartbeats had a gap at any time since.
 */
export function openJobScope(
  request: JobRequest,
  log: Log,
  timing: JobTiming,
  watch: JobWatch,
): JobScope {
  const now = timing.now ?? monotonic;
  const started = now();
  const trips = new RoundTripCounter();
  let tripsAtEnd: JobOutcome['roundTrips'];
  const requestLog = log.child({ characterId: request.characterId });
  const counted =
    <T>(fn: (signal: AbortSignal) => Promise<T>) =>
    (signal: AbortSignal) =>
      watch.roundTrips.run(trips, () => fn(signal));
  /** A call retried on transient errors, each retry logged on `log` as job.retry_scheduled. */
  const retriedOn =
    (log: Log) =>
    <T>(call: string, fn: (signal: AbortSignal) => Promise<T>): Observable<T> =>
      fromAbortable(fn).pipe(
        retryTransient(
          timing.retry,
          (error, retry, delayMs) =>
            log.warn('job.retry_scheduled', { call, code: error.code, retry, delayMs }),
          timing.scheduler,
        ),
      );
  const retried: Call = (call, fn) => retriedOn(requestLog)(call, counted(fn));

  const claimed = (writer: JobWriter, origin: JobRequest['origin']): ClaimedScope => {
    const { lease } = writer;
    const jobLog = requestLog.child({ jobId: lease.jobId, attempt: lease.attempt });
    const serverNow = timing.serverNow ?? Date.now;
    const pickupMs = serverNow() - lease.requestedAt;
    jobLog.info('job.claimed', { origin, pickupMs });
    watch.telemetry.jobClaimed(pickupMs);
    watch.track(request.characterId, writer);

    const fenced = <T>(fn: () => Promise<T>): Promise<T> =>
      // Checked before every try of every call: a worker that was partitioned pays and writes
      // nothing for a job another worker took over.
      watch.fence.holds(started)
        ? fn()
        : Promise.reject(new PresenceLapsedError(request.characterId));
    let stage: InProgressStatus = 'removing-background';
    /** The stage entered and not finished, and since when (monotonic). */
    let open: { stage: InProgressStatus; began: number } | undefined;
    // The final write tells the stage it ended in (a failure's) and its round trips so far.
    writer.onFinal(() => {
      const counted = watch.roundTrips.report(trips);
      return {
        ...(open ? { stages: { [open.stage]: { ms: now() - open.began } } } : {}),
        ...(counted ? { roundTrips: finalTrips(counted, trips) } : {}),
      };
    });
    const scope: ClaimedScope = {
      get stage() {
        return stage;
      },
      enter(next) {
        stage = next;
        scope.event('job.stage', {});
        const began = now();
        const entered = { stage: next, began };
        open = entered;
        // Carried by this stage's status write (or the next write made, if the sink skips it).
        writer.note({ stages: { [next]: { startedAt: serverNow() } } });
        return () => {
          const ms = now() - began;
          if (open === entered) open = undefined;
          writer.note({ stages: { [next]: { ms } } });
          watch.telemetry.stageFinished(next, ms);
        };
      },
      call: (name, fn) =>
        fromAbortable(counted((signal) => fenced(() => fn(signal)))).pipe(
          retryTransient(
            timing.retry,
            (error, retry, delayMs) =>
              scope.event(
                'job.retry_scheduled',
                { call: name, code: error.code, retry, delayMs, detail: error.detail },
                'warn',
              ),
            timing.scheduler,
          ),
        ),
      event(name, fields, level = 'info') {
        jobLog[level](name, { stage, elapsedMs: now() - started, ...fields });
      },
      guard$: merge(
        renewLease(
          () => retriedOn(jobLog)('renew', () => fenced(() => writer.renew())),
          timing.renewEveryMs,
          timing.scheduler,
        ),
        // Coverage running out mid-job ends it at once: in-flight calls are aborted.
        watch.fence.lapses$.pipe(
          map(() => {
            throw new PresenceLapsedError(request.characterId);
          }),
        ),
      ),
      settled: () => {
        tripsAtEnd = watch.roundTrips.report(trips);
      },
      ended: () => watch.track(request.characterId, undefined),
    };
    return scope;
  };

  return {
    log: requestLog,
    telemetry: watch.telemetry,
    retried,
    claimed,
    outcome: (kind, code) => {
      const firestore = watch.firestoreOps(request.characterId);
      return {
        ...(firestore ? { firestore } : {}),
        characterId: request.characterId,
        kind,
        ...(code === undefined ? {} : { code }),
        durationMs: now() - started,
        ...(tripsAtEnd ? { roundTrips: tripsAtEnd } : {}),
      };
    },
  };
}

/**
 * The round trips a final write records, itself included: it is sent next, one more request,
 * and one more in sequence unless another of the job's requests is still in flight.
 */
function finalTrips(
  counted: { sequential: number; total: number },
  trips: RoundTripCounter,
): { sequential: number; total: number } {
  return { sequential: counted.sequential + (trips.idle ? 1 : 0), total: counted.total + 1 };
}
