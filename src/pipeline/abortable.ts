import { Observable } from 'rxjs';

/**
 * A promise-returning call as a cold Observable: each subscription makes the call, and
 * unsubscribing before it settles (shutdown deadline, lost lease) aborts it through its
 * AbortSignal. A settled call is not aborted: that would only create an AbortError and wake
 * listeners for nothing.
 */
export function fromAbortable<T>(call: (signal: AbortSignal) => Promise<T>): Observable<T> {
  return new Observable<T>((subscriber) => {
    const controller = new AbortController();
    let settled = false;
    call(controller.signal).then(
      (value) => {
        settled = true;
        subscriber.next(value);
        subscriber.complete();
      },
      (err: unknown) => {
        settled = true;
        subscriber.error(err);
      },
    );
    return () => {
      if (!settled) controller.abort();
    };
  });
}
