import { LeaseLostError } from '../../src/jobs/ports.js';
import { defer, type Observable } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import { JobError } from '../../src/jobs/errors.js';
import { retryTransient, type RetryPolicy } from '../../src/pipeline/retry.js';

// random 0.5: delay = 3/4 of the exponential delay. baseMs 20 → 15, 30, 60, ...
const policy: RetryPolicy = { maxTries: 5, baseMs: 20, maxMs: 1_000, maxRetryAfterMs: 5_000 };
const half = () => 0.5;

function scheduler() {
  return new TestScheduler((actual, expected) => {
    expect(actual).toEqual(expected);
  });
}

/** A source that is a different cold observable on each subscription. */
function attempts<T>(tries: Observable<T>[]): Observable<T> {
  let n = 0;
  return defer(() => {
    const next = tries[n++];
    if (!next) throw new Error(`subscribed ${n} times, only ${tries.length} tries prepared`);
    return next;
  });
}

const socketReset = () => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });

describe('retryTransient', () => {
  it('resubscribes after transient errors at the backoff times, then succeeds', () => {
    scheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const network = new JobError('NETWORK');
      const tries = [
        cold<string>('-#', undefined, network),
        cold<string>('-#', undefined, socketReset()),
        cold('-(a|)', { a: 'ok' }),
      ];
      const result = attempts(tries).pipe(retryTransient(policy, () => undefined, undefined, half));
      // error at 1, +15 → resubscribe at 16; error at 17, +30 → resubscribe at 47; value at 48
      expectObservable(result).toBe('48ms (a|)', { a: 'ok' });
      expectSubscriptions(tries[0]!.subscriptions).toBe('^!');
      expectSubscriptions(tries[1]!.subscriptions).toBe('16ms ^!');
      expectSubscriptions(tries[2]!.subscriptions).toBe('47ms ^!');
    });
  });

  it('reports each retry with its classified error, number and delay', () => {
    const retries: [string, number, number][] = [];
    scheduler().run(({ cold, expectObservable }) => {
      const result = attempts([
        cold<string>('-#', undefined, new JobError('CLIPDROP_UNAVAILABLE')),
        cold<string>('-#', undefined, socketReset()),
        cold('-(a|)', { a: 'ok' }),
      ]).pipe(retryTransient(policy, (e, r, d) => retries.push([e.code, r, d]), undefined, half));
      expectObservable(result).toBe('48ms (a|)', { a: 'ok' });
    });
    expect(retries).toEqual([
      ['CLIPDROP_UNAVAILABLE', 1, 15],
      ['NETWORK', 2, 30],
    ]);
  });

  it('uses the scheduler it is given', () => {
    const ts = scheduler();
    ts.run(({ cold, expectObservable }) => {
      const result = attempts([
        cold<string>('-#', undefined, new JobError('TIMEOUT')),
        cold('-(a|)', { a: 'ok' }),
      ]).pipe(retryTransient(policy, () => undefined, ts, half));
      expectObservable(result).toBe('17ms (a|)', { a: 'ok' });
    });
  });

  it('does not retry a permanent error: one subscription, the error passes through', () => {
    const rejected = new JobError('CLIPDROP_REJECTED', { detail: '400' });
    let retried = false;
    scheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold<string>('--#', undefined, rejected);
      const result = source.pipe(retryTransient(policy, () => (retried = true), undefined, half));
      expectObservable(result).toBe('--#', undefined, rejected);
      expectSubscriptions(source.subscriptions).toBe('^-!');
    });
    expect(retried).toBe(false);
  });

  it('does not retry an unknown (permanent) error, and passes it on unchanged', () => {
    let caught: unknown;
    const boom = new TypeError('boom');
    scheduler().run(({ cold, flush }) => {
      const source = cold<string>('-#', undefined, boom);
      source.pipe(retryTransient(policy, () => undefined, undefined, half)).subscribe({
        error: (err: unknown) => (caught = err),
      });
      flush();
      expect(source.subscriptions).toHaveLength(1);
    });
    expect(caught).toBe(boom);
  });

  it('gives up after maxTries and passes the last error through', () => {
    const errors = [1, 2, 3].map(() => new JobError('STORAGE_UNAVAILABLE'));
    scheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const tries = errors.map((e) => cold<string>('-#', undefined, e));
      const result = attempts(tries).pipe(
        retryTransient({ ...policy, maxTries: 3 }, () => undefined, undefined, half),
      );
      expectObservable(result).toBe('48ms #', undefined, errors[2]);
      expectSubscriptions(tries[0]!.subscriptions).toBe('^!');
      expectSubscriptions(tries[1]!.subscriptions).toBe('16ms ^!');
      expectSubscriptions(tries[2]!.subscriptions).toBe('47ms ^!');
    });
  });

  it('with maxTries 1 makes a single try', () => {
    const error = new JobError('NETWORK');
    scheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold<string>('-#', undefined, error);
      const result = source.pipe(retryTransient({ ...policy, maxTries: 1 }, () => undefined));
      expectObservable(result).toBe('-#', undefined, error);
      expectSubscriptions(source.subscriptions).toBe('^!');
    });
  });

  it('passes the last transient error through unchanged, for the job to classify', () => {
    let caught: unknown;
    const last = socketReset();
    scheduler().run(({ cold, flush }) => {
      attempts([cold<string>('-#', undefined, socketReset()), cold<string>('-#', undefined, last)])
        .pipe(retryTransient({ ...policy, maxTries: 2 }, () => undefined, undefined, half))
        .subscribe({ error: (err: unknown) => (caught = err) });
      flush();
    });
    expect(caught).toBe(last);
  });

  it('passes a non-JobError permanent error through unchanged (a lost lease stays one)', () => {
    let caught: unknown;
    const lost = new LeaseLostError('c1');
    scheduler().run(({ cold, flush }) => {
      cold<string>('-#', undefined, lost)
        .pipe(retryTransient(policy, () => undefined))
        .subscribe({ error: (err: unknown) => (caught = err) });
      flush();
    });
    expect(caught).toBe(lost);
  });

  it('waits for a Retry-After longer than the backoff', () => {
    scheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const limited = new JobError('CLIPDROP_RATE_LIMITED', { retryAfterMs: 100 });
      const tries = [cold<string>('-#', undefined, limited), cold('-(a|)', { a: 'ok' })];
      const result = attempts(tries).pipe(retryTransient(policy, () => undefined, undefined, half));
      expectObservable(result).toBe('102ms (a|)', { a: 'ok' });
      expectSubscriptions(tries[1]!.subscriptions).toBe('101ms ^!');
    });
  });

  it('keeps the backoff when Retry-After is shorter, and caps a long Retry-After', () => {
    const delays: number[] = [];
    scheduler().run(({ cold, expectObservable }) => {
      const result = attempts([
        cold<string>('-#', undefined, new JobError('CLIPDROP_RATE_LIMITED', { retryAfterMs: 5 })),
        cold<string>(
          '-#',
          undefined,
          new JobError('CLIPDROP_RATE_LIMITED', { retryAfterMs: 3_600_000 }),
        ),
        cold('-(a|)', { a: 'ok' }),
      ]).pipe(retryTransient(policy, (_e, _r, d) => delays.push(d), undefined, half));
      // 1 + 15 = 16; 17 + 5000 = 5017; value at 5018
      expectObservable(result).toBe('5018ms (a|)', { a: 'ok' });
    });
    expect(delays).toEqual([15, 5_000]);
  });
});
