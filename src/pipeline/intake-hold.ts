import { Observable, finalize, tap, type MonoTypeOperatorFunction } from 'rxjs';
import type { CreditHold, Intake } from '../jobs/intake.js';
import { callsLeft } from '../jobs/fleet.js';
import type { JobOutcome, JobRequest } from '../jobs/ports.js';

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

/**
 * The paid calls a job that must finish has left, or undefined for one that waits at the
 * intake: a takeover (its status as the dead worker left it; both calls when unknown, since it
 * may repeat one its first worker was billed for), or a job already past its first paid call
 * (released at shutdown, recovered: its document says `upscaling` or `finalizing`).
 */
export function mustFinishCalls(request: JobRequest): number | undefined {
  const status = (
    request.document as { visuals?: { showcaseProcessingStatus?: unknown } } | undefined
  )?.visuals?.showcaseProcessingStatus;
  const known = typeof status === 'string' ? status : undefined;
  if (request.takeover === true) return known === undefined ? 2 : callsLeft(known);
  return known === 'upscaling' || known === 'finalizing' ? callsLeft(known) : undefined;
}
