import { finalize, Observable, Subscription, type OperatorFunction } from 'rxjs';

/**
 * `mergeMap(project, concurrency)` whose waiting values are served urgent ones first (in
 * arrival order among each kind). Used so jobs taken over from a dead worker, whose users have
 * waited longest, get the next free slot instead of the back of the queue.
 */
export function mergeMapUrgentFirst<T, R>(
  project: (value: T) => Observable<R>,
  concurrency: number,
  isUrgent: (value: T) => boolean,
): OperatorFunction<T, R> {
  return (source) =>
    new Observable<R>((subscriber) => {
      const urgent: T[] = [];
      const normal: T[] = [];
      const subscriptions = new Subscription();
      let active = 0;
      let sourceDone = false;

      const finishIfDone = () => {
        if (sourceDone && active === 0 && urgent.length === 0 && normal.length === 0) {
          subscriber.complete();
        }
      };
      const drain = () => {
        while (active < concurrency && (urgent.length > 0 || normal.length > 0)) {
          const value = (urgent.length > 0 ? urgent.shift() : normal.shift()) as T;
          active += 1;
          let completed = false;
          let inner: Subscription | undefined;
          // As in mergeMap, the next value starts once the previous inner is torn down.
          inner = project(value)
            .pipe(
              finalize(() => {
                if (!completed || subscriber.closed) return;
                active -= 1;
                if (inner) subscriptions.remove(inner);
                drain();
                finishIfDone();
              }),
            )
            .subscribe({
              next: (r) => subscriber.next(r),
              error: (err: unknown) => subscriber.error(err),
              complete: () => (completed = true),
            });
          if (!inner.closed) subscriptions.add(inner);
        }
      };

      subscriptions.add(
        source.subscribe({
          next: (value) => {
            (isUrgent(value) ? urgent : normal).push(value);
            drain();
          },
          error: (err: unknown) => subscriber.error(err),
          complete: () => {
            sourceDone = true;
            finishIfDone();
          },
        }),
      );
      return subscriptions;
    });
}
