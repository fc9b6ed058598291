import {
  defer,
  exhaustMap,
  from,
  catchError,
  EMPTY,
  retry,
  tap,
  filter,
  merge,
  throwError,
  timer,
  mergeAll,
  type Observable,
  type ObservableInput,
  type SchedulerLike,
} from 'rxjs';
import { monotonic } from '../jobs/clock.js';
import { backoffDelay, type BackoffPolicy } from '../jobs/backoff.js';
import { describe } from '../jobs/errors.js';
import type { JobRequest, Log } from '../jobs/ports.js';

export class ListenerGaveUpError extends Error {
  override readonly name = 'ListenerGaveUpError';
}

/**
 * The listener, resubscribed with backoff whenever it errors (the Admin SDK gives up for good
 * after repeated failures). A fresh subscription delivers every matching document, so clicks
 * made while it was down are not lost. Errors with ListenerGaveUpError when it has not
 * delivered a snapshot for `giveUpMs`, so the platform restarts the process.
 */
export function resilientListener(
  listen: () => Observable<JobRequest[]>,
  opts: {
    giveUpMs: number;
    backoff: BackoffPolicy;
    log: Log;
    scheduler?: SchedulerLike;
    onResubscribe?: () => void;
  },
): Observable<JobRequest> {
  const clock = opts.scheduler ?? { now: monotonic };
  let failingSince: number | undefined;
  return defer(listen).pipe(
    tap(() => {
      if (failingSince !== undefined) {
        opts.log.info('listener.recovered', { downMs: clock.now() - failingSince });
      }
      failingSince = undefined;
    }),
    retry({
      resetOnSuccess: true,
      delay: (err: unknown, retryCount: number) => {
        failingSince ??= clock.now();
        const downMs = clock.now() - failingSince;
        if (downMs >= opts.giveUpMs) {
          opts.log.error('listener.gave_up', { downMs, detail: describe(err) });
          return throwError(() => new ListenerGaveUpError(`listener down for ${downMs} ms`));
        }
        const delayMs = backoffDelay(retryCount, opts.backoff);
        opts.onResubscribe?.();
        opts.log.warn('listener.resubscribing', {
          retry: retryCount,
          delayMs,
          detail: describe(err),
        });
        return timer(delayMs, opts.scheduler);
      },
    }),
    mergeAll(),
  );
}

/**
 * Runs the reconciling query at start and every `everyMs`: it finds jobs whose lease expired
 * (a crashed worker's) and anything a silently broken listener missed. A failed sweep is
 * logged and tried again next time. In a fleet only the leader sweeps (`runIf`), and it
 * sweeps at once when it sees a worker die (`now$`).
 */
export function sweep(
  findUnowned: (now: number) => ObservableInput<JobRequest[]>,
  opts: {
    everyMs: number;
    log: Log;
    scheduler?: SchedulerLike;
    onSuccess?: () => void;
    /** Checked at each tick: whether this worker sweeps (the fleet's leader). Default: yes. */
    runIf?: () => boolean;
    /** Extra ticks, e.g. a dead worker seen. */
    now$?: Observable<unknown>;
    /** Called when a query is sent (counting sweeps). */
    onRun?: () => void;
  },
): Observable<JobRequest> {
  const clock = opts.scheduler ?? { now: () => Date.now() };
  return merge(timer(0, opts.everyMs, opts.scheduler), opts.now$ ?? EMPTY).pipe(
    filter(() => opts.runIf?.() ?? true),
    exhaustMap(() =>
      defer(() => {
        opts.onRun?.();
        return from(findUnowned(clock.now()));
      }).pipe(
        tap((found) => {
          opts.onSuccess?.();
          if (found.length > 0) opts.log.info('sweep.found', { count: found.length });
        }),
        catchError((err: unknown) => {
          opts.log.warn('sweep.failed', { detail: describe(err) });
          return EMPTY;
        }),
      ),
    ),
    mergeAll(),
  );
}
