import { NEVER, take, throwError } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import { LeaseLostError, type JobRequest } from '../../src/jobs/ports.js';
import { renewLease } from '../../src/pipeline/lease.js';
import { sweep } from '../../src/pipeline/source.js';
import { recordingLog } from './fakes.js';

const scheduler = () => new TestScheduler((actual, expected) => expect(actual).toEqual(expected));

describe('lease renewal timing', () => {
  it('renews every interval, one renewal at a time, for as long as the job runs', () => {
    scheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const renewal = cold('5ms (a|)');
      // Job lasts 70 ms: renewals at 20, 40, 60; unsubscribed at 70.
      expectObservable(
        renewLease(() => renewal, 20),
        '^ 69ms !',
      ).toBe('');
      expectSubscriptions(renewal.subscriptions).toBe([
        '20ms ^ 4ms !',
        '40ms ^ 4ms !',
        '60ms ^ 4ms !',
      ]);
    });
  });

  it('waits for a slow renewal instead of overlapping it', () => {
    scheduler().run(({ cold, expectSubscriptions, expectObservable }) => {
      const slow = cold('30ms (a|)');
      expectObservable(
        renewLease(() => slow, 20),
        '^ 99ms !',
      ).toBe('');
      // The tick at 40 waits for the renewal started at 20 (done at 50); ticks queue, never overlap.
      expectSubscriptions(slow.subscriptions).toBe([
        '20ms ^ 29ms !',
        '50ms ^ 29ms !',
        '80ms ^ 19ms !',
      ]);
    });
  });

  it('ends the job with the error when a renewal finds the lease taken', () => {
    scheduler().run(({ expectObservable }) => {
      const lost = new LeaseLostError('c1');
      let n = 0;
      const renew = () => (++n < 3 ? NEVER.pipe(take(0)) : throwError(() => lost));
      expectObservable(renewLease(renew, 20)).toBe('60ms #', undefined, lost);
    });
  });
});

describe('sweep timing', () => {
  const found = (id: string): JobRequest[] => [{ characterId: id, origin: 'sweep', seenAt: 0 }];

  it('sweeps at start, then every interval', () => {
    scheduler().run(({ cold, expectObservable }) => {
      let n = 0;
      const result = sweep(() => cold('2ms (a|)', { a: found(`s${n++}`) }), {
        everyMs: 30,
        log: recordingLog(),
      });
      expectObservable(result, '^ 70ms !').toBe('2ms a 29ms b 29ms c', {
        a: found('s0')[0],
        b: found('s1')[0],
        c: found('s2')[0],
      });
    });
  });

  it('skips a tick while the previous sweep is still running (no piling up)', () => {
    scheduler().run(({ cold, expectObservable }) => {
      let n = 0;
      // Each sweep takes 40 ms with an interval of 30: the ticks at 30 and 90 are skipped.
      const result = sweep(() => cold('40ms (a|)', { a: found(`s${n++}`) }), {
        everyMs: 30,
        log: recordingLog(),
      });
      expectObservable(result, '^ 110ms !').toBe('40ms a 59ms b', {
        a: found('s0')[0],
        b: found('s1')[0],
      });
    });
  });

  it('a failing sweep is logged and the next one still runs', () => {
    scheduler().run(({ cold, expectObservable, flush }) => {
      const log = recordingLog();
      let n = 0;
      const result = sweep(
        () =>
          n++ === 0
            ? cold('1ms #', undefined, new Error('unavailable'))
            : cold('1ms (a|)', { a: found('ok') }),
        { everyMs: 10, log },
      );
      expectObservable(result, '^ 15ms !').toBe('11ms a', { a: found('ok')[0] });
      flush();
      expect(log.messages('warn')).toContain('sweep.failed');
    });
  });
});
