import { Observable } from 'rxjs';

/**
 * A promise-returning call as a cold Observable: each subscription makes the call, and
 * unsubscribing (shutdown deadline, lost lease) aborts it through its AbortSignal.
 */
export function fromAbortable<T>(call: (signal: AbortSignal) => Promise<T>): Observable<T> {
  return new Observable<T>((subscriber) => {
    const controller = new AbortController();
    call(controller.signal).then(
      (value) => {
        subscriber.next(value);
        subscriber.complete();
      },
      (err: unknown) => subscriber.error(err),
    );
    return () => controller.abort();
  });
}
