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

describe('mergeMapUrgentFirst with keys', () => {
  it('an urgent value takes the place of a waiting one with the same key; running keys are not doubled', () => {
    scheduler().run(({ cold, expectObservable }) => {
      // a runs; b and c wait; urgent C (key c) jumps ahead of b; urgent A (key a, running) is dropped.
      const source = cold('abcCA|');
      const project = (v: string) => of(v).pipe(delay(5));
      const out = source.pipe(
        mergeMapUrgentFirst(
          project,
          1,
          (v) => v === v.toUpperCase(),
          (v) => v.toLowerCase(),
        ),
      );
      expectObservable(out).toBe('-----a----C----(b|)');
    });
  });
});
