import { Observable, finalize, tap, type MonoTypeOperatorFunction } from 'rxjs';
import type { CreditHold, Intake } from '../jobs/intake.js';
import type { JobOutcome } from '../jobs/ports.js';

/**
 * A job's admission by the intake (jobs/intake.ts): its credits held, or undefined when intake
 * closed meanwhile or another worker took the job. Given up (unsubscribed) at shutdown: a hold that comes after is ended.
 */
export function intakeHold(
  intake: Intake,
  stillOpen?: () => boolean,
): Observable<CreditHold | undefined> {
  return new Observable<CreditHold | undefined>((subscriber) => {
    const controller = new AbortController();
    intake.admit(controller.signal, stillOpen).then(
      (hold) => {
        if (subscriber.closed) return hold?.end(false);
        subscriber.next(hold);
        subscriber.complete();
      },
      (err: unknown) => subscriber.error(err),
    );
    return () => controller.abort(new Error('intake admission given up'));
  });
}

/**
 * Ends the job's hold with its outcome: a job lost to another worker keeps its credits counted
 * (its heir finishes on them); any other end gives back what it did not use. A job torn down
 * with no outcome (shutdown) gives back too, its calls in flight counted as billed.
 */
export function endingHold(hold: CreditHold): MonoTypeOperatorFunction<JobOutcome> {
  return (source) =>
    source.pipe(
      tap((outcome) => hold.end(outcome.kind === 'lost')),
      finalize(() => hold.end(false)),
    );
}

/** Counts one paid call on the job's hold: billed when answered, in flight until then. */
export function billedTo<T extends { credits: number }>(
  hold: CreditHold,
): MonoTypeOperatorFunction<T> {
  return (source) =>
    new Observable<T>((subscriber) => {
      hold.callStarted();
      return source
        .pipe(
          tap({
            next: (paid) => hold.callEnded(paid.credits),
            error: () => hold.callEnded(0),
          }),
        )
        .subscribe(subscriber);
    });
}
