import { TestScheduler } from 'rxjs/testing';
import { delay, of } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { mergeMapUrgentFirst } from '../../src/pipeline/urgent-first.js';

const scheduler = () => new TestScheduler((actual, expected) => expect(actual).toEqual(expected));

describe('mergeMapUrgentFirst', () => {
  it('keeps the concurrency cap and serves waiting urgent values first', () => {
    scheduler().run(({ cold, expectObservable }) => {
      // a and b take both slots for 5 frames; c, d wait; U (urgent) arrives last but goes first.
      const source = cold('abcdU|');
      const project = (v: string) => of(v).pipe(delay(5));
      const out = source.pipe(mergeMapUrgentFirst(project, 2, (v) => v === 'U'));
      expectObservable(out).toBe('-----ab---Uc---(d|)');
    });
  });

  it('is a plain mergeMap when nothing is urgent', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const out = cold('abc|').pipe(
        mergeMapUrgentFirst(
          (v: string) => of(v).pipe(delay(2)),
          1,
          () => false,
        ),
      );
      expectObservable(out).toBe('--a-b-(c|)');
    });
  });

  it('errors when an inner stream errors, and unsubscribes from the source', () => {
    scheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('ab-');
      const out = source.pipe(
        mergeMapUrgentFirst(
          (v: string) => (v === 'b' ? cold('-#') : cold('----a')),
          2,
          () => false,
        ),
      );
      expectObservable(out).toBe('--#');
      expectSubscriptions(source.subscriptions).toBe('^-!');
    });
  });
});
