import { retry, throwError, timer, type MonoTypeOperatorFunction, type SchedulerLike } from 'rxjs';
import { backoffDelay, type BackoffPolicy } from '../jobs/backoff.js';
import { classify, type JobError } from '../jobs/errors.js';

export interface RetryPolicy extends BackoffPolicy {
  /** Tries in all, the first included. */
  maxTries: number;
}

/**
 * Retries a call on transient errors only, with backoff and jitter, honouring Retry-After.
 * Any other error, or the last transient one, passes through unchanged (the job's one
 * failure handler classifies it; a LeaseLostError must stay one). Put it on a per-call
 * stream: on the outer stream it would resubscribe the listener.
 */
export function retryTransient<T>(
  policy: RetryPolicy,
  onRetry: (error: JobError, retry: number, delayMs: number) => void,
  scheduler?: SchedulerLike,
  random?: () => number,
): MonoTypeOperatorFunction<T> {
  return retry<T>({
    count: Math.max(0, policy.maxTries - 1),
    delay: (err: unknown, retryCount: number) => {
      const error = classify(err);
      if (!error.transient) return throwError(() => err);
      const delayMs = backoffDelay(retryCount, policy, error.retryAfterMs, random);
      onRetry(error, retryCount, delayMs);
      return timer(delayMs, scheduler);
    },
  });
}
