import { concatMap, ignoreElements, interval, type Observable, type SchedulerLike } from 'rxjs';

/**
 * Keeps a job's lease alive for as long as it is subscribed: one renewal every `everyMs`
 * (a third of the lease, so two can fail before it expires), never two at once. Emits
 * nothing; errors when a renewal fails for good (a lost lease), which ends the job.
 * Unsubscribing when the job ends stops it.
 */
export function renewLease(
  renew: () => Observable<unknown>,
  everyMs: number,
  scheduler?: SchedulerLike,
): Observable<never> {
  return interval(everyMs, scheduler).pipe(
    concatMap(() => renew()),
    ignoreElements(),
  );
}
