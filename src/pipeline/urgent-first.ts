import { finalize, Observable, Subscription, type OperatorFunction } from 'rxjs';

/**
 * `mergeMap(project, concurrency)` whose waiting values are served urgent ones first (in
 * arrival order among each kind). Used so jobs taken over from a dead worker, whose users have
 * waited longest, get the next free slot instead of the back of the queue.
 *
 * With `keyOf`, an urgent value whose key is already waiting as a normal value takes that
 * value's place, and one whose key is running or already urgent is dropped.
 */
export function mergeMapUrgentFirst<T, R>(
  project: (value: T) => Observable<R>,
  concurrency: number,
  isUrgent: (value: T) => boolean,
  keyOf?: (value: T) => string,
): OperatorFunction<T, R> {
  return (source) =>
    new Observable<R>((subscriber) => {
      const urgent: T[] = [];
      const normal: T[] = [];
      const subscriptions = new Subscription();
      let active = 0;
      let sourceDone = false;
      const running = new Set<string>();
      const enqueue = (value: T) => {
        if (!isUrgent(value)) return normal.push(value);
        if (keyOf) {
          const key = keyOf(value);
          if (running.has(key) || urgent.some((u) => keyOf(u) === key)) return;
          const i = normal.findIndex((n) => keyOf(n) === key);
          if (i >= 0) normal.splice(i, 1);
        }
        return urgent.push(value);
      };

      const finishIfDone = () => {
        if (sourceDone && active === 0 && urgent.length === 0 && normal.length === 0) {
          subscriber.complete();
        }
      };
      const drain = () => {
        while (active < concurrency && (urgent.length > 0 || normal.length > 0)) {
          const value = (urgent.length > 0 ? urgent.shift() : normal.shift()) as T;
          active += 1;
          const key = keyOf?.(value);
          if (key !== undefined) running.add(key);
          let completed = false;
          // Set once subscribed; a synchronous inner has already finished by then.
          const holder: { inner?: Subscription } = {};
          // As in mergeMap, the next value starts once the previous inner is torn down.
          const inner = project(value)
            .pipe(
              finalize(() => {
                if (key !== undefined) running.delete(key);
                if (!completed || subscriber.closed) return;
                active -= 1;
                if (holder.inner) subscriptions.remove(holder.inner);
                drain();
                finishIfDone();
              }),
            )
            .subscribe({
              next: (r) => subscriber.next(r),
              error: (err: unknown) => subscriber.error(err),
              complete: () => (completed = true),
            });
          holder.inner = inner;
          if (!inner.closed) subscriptions.add(inner);
        }
      };

      subscriptions.add(
        source.subscribe({
          next: (value) => {
            enqueue(value);
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
