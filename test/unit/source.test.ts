import { defer, type Observable } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { BackoffPolicy } from '../../src/jobs/backoff.js';
import type { JobRequest } from '../../src/jobs/ports.js';
import { ListenerGaveUpError, resilientListener, sweep } from '../../src/pipeline/source.js';
import { deferred, recordingLog } from './fakes.js';

const req = (characterId: string, origin: JobRequest['origin'] = 'listener'): JobRequest => ({
  characterId,
  origin,
  seenAt: 0,
});

// With Math.random() = 0.5 the delays are 3/4 of the exponential delay: 15, 30, 60, 60, ...
const backoff: BackoffPolicy = { baseMs: 20, maxMs: 80, maxRetryAfterMs: 80 };

function scheduler() {
  return new TestScheduler((actual, expected) => {
    expect(actual).toEqual(expected);
  });
}

/** listen(): a different cold observable on each call. */
function listens(tries: Observable<JobRequest[]>[]) {
  let calls = 0;
  return {
    listen: () =>
      defer(() => {
        const next = tries[calls++];
        if (!next) throw new Error(`listen() called ${calls} times`);
        return next;
      }),
    calls: () => calls,
  };
}

describe('resilientListener', () => {
  beforeEach(() => {
    // resilientListener takes no random source: pin Math.random for deterministic backoff.
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('resubscribes after an error with backoff, and emits each request of a batch', () => {
    const log = recordingLog();
    const ts = scheduler();
    ts.run(({ cold, expectObservable, expectSubscriptions }) => {
      const boom = new Error('14 UNAVAILABLE');
      const tries = [
        cold<JobRequest[]>('-#', undefined, boom),
        cold<JobRequest[]>('-#', undefined, boom),
        cold('-a', { a: [req('x'), req('y')] }),
      ];
      const { listen } = listens(tries);
      const out = resilientListener(listen, { giveUpMs: 10_000, backoff, log, scheduler: ts });
      // error at 1, +15 → 16; error at 17, +30 → 47; batch at 48
      expectObservable(out).toBe('48ms (xy)', { x: req('x'), y: req('y') });
      expectSubscriptions(tries[0]!.subscriptions).toBe('^!');
      expectSubscriptions(tries[1]!.subscriptions).toBe('16ms ^!');
      expectSubscriptions(tries[2]!.subscriptions).toBe('47ms ^');
    });
    expect(log.entries.filter((e) => e.message === 'listener.resubscribing')).toMatchObject([
      { level: 'warn', fields: { retry: 1, delayMs: 15 } },
      { level: 'warn', fields: { retry: 2, delayMs: 30 } },
    ]);
    expect(log.entries.find((e) => e.message === 'listener.recovered')?.fields).toEqual({
      downMs: 47,
    });
  });

  it('passes batches through while the listener is healthy', () => {
    const ts = scheduler();
    ts.run(({ cold, expectObservable }) => {
      const { listen, calls } = listens([cold('a--b', { a: [req('x')], b: [req('y'), req('z')] })]);
      const out = resilientListener(listen, {
        giveUpMs: 100,
        backoff,
        log: recordingLog(),
        scheduler: ts,
      });
      expectObservable(out).toBe('x--(yz)', { x: req('x'), y: req('y'), z: req('z') });
      ts.flush();
      expect(calls()).toBe(1);
    });
  });

  it('resets the backoff and the give-up clock after a successful emission', () => {
    const ts = scheduler();
    const log = recordingLog();
    ts.run(({ cold, expectObservable, expectSubscriptions }) => {
      const boom = new Error('listener broke');
      const tries = [
        cold<JobRequest[]>('-#', undefined, boom), // 0-1, retry 1: +15
        cold('-a#', { a: [req('x')] }, boom), // 16: x at 17, error 18; reset → retry 1: +15
        cold<JobRequest[]>('-#', undefined, boom), // 33-34, down 16 ms, retry 2: +30
        cold<JobRequest[]>('-#', undefined, boom), // 64-65, down 47 ms, retry 3: +60
        cold<JobRequest[]>('-#', undefined, boom), // 125-126, down 108 ms ≥ 50: give up
      ];
      const { listen } = listens(tries);
      const out = resilientListener(listen, { giveUpMs: 50, backoff, log, scheduler: ts });
      // Without the reset the delay at 18 would be 30 (retry 2), and the give-up clock,
      // started at 1, would pass 50 ms at 65.
      expectObservable(out).toBe(
        '17ms x 108ms #',
        { x: req('x') },
        new ListenerGaveUpError('listener down for 108 ms'),
      );
      expectSubscriptions(tries[1]!.subscriptions).toBe('16ms ^-!');
      expectSubscriptions(tries[2]!.subscriptions).toBe('33ms ^!');
      expectSubscriptions(tries[3]!.subscriptions).toBe('64ms ^!');
      expectSubscriptions(tries[4]!.subscriptions).toBe('125ms ^!');
    });
    expect(
      log.entries
        .filter((e) => e.message === 'listener.resubscribing')
        .map((e) => e.fields?.delayMs),
    ).toEqual([15, 15, 30, 60]);
  });

  it('errors with ListenerGaveUpError once down for giveUpMs', () => {
    const ts = scheduler();
    const log = recordingLog();
    let caught: unknown;
    let listenCalls = 0;
    ts.run(({ cold, flush }) => {
      const listen = () => {
        listenCalls += 1;
        return cold<JobRequest[]>('#', undefined, new Error('PERMISSION_DENIED'));
      };
      resilientListener(listen, { giveUpMs: 100, backoff, log, scheduler: ts }).subscribe({
        error: (err: unknown) => (caught = err),
      });
      // errors at 0, 15, 45 (down 45), 105 (down 105 ≥ 100)
      flush();
      expect(ts.now()).toBe(105);
    });
    expect(caught).toBeInstanceOf(ListenerGaveUpError);
    expect((caught as Error).message).toBe('listener down for 105 ms');
    expect(listenCalls).toBe(4);
    expect(log.entries.find((e) => e.message === 'listener.gave_up')).toMatchObject({
      level: 'error',
      fields: { downMs: 105 },
    });
  });
});

describe('sweep', () => {
  const START = 1_700_000_000_000;

  beforeEach(() => {
    vi.useFakeTimers({ now: START });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('queries at 0 and every everyMs, with the current time, emitting each request', async () => {
    let n = 0;
    const findUnowned = vi.fn((_now: number) => Promise.resolve([req(`c${++n}`, 'sweep')]));
    const onSuccess = vi.fn();
    const log = recordingLog();
    const seen: string[] = [];
    const sub = sweep(findUnowned, { everyMs: 1_000, log, onSuccess }).subscribe((r) =>
      seen.push(r.characterId),
    );

    await vi.advanceTimersByTimeAsync(0);
    expect(findUnowned.mock.calls).toEqual([[START]]);
    expect(seen).toEqual(['c1']);

    await vi.advanceTimersByTimeAsync(999);
    expect(findUnowned).toHaveBeenCalledTimes(1);

    await vi.advanceTimersByTimeAsync(1);
    expect(findUnowned.mock.calls).toEqual([[START], [START + 1_000]]);
    expect(seen).toEqual(['c1', 'c2']);

    await vi.advanceTimersByTimeAsync(2_000);
    expect(findUnowned.mock.calls.map(([now]) => now - START)).toEqual([0, 1_000, 2_000, 3_000]);
    expect(seen).toEqual(['c1', 'c2', 'c3', 'c4']);
    expect(onSuccess).toHaveBeenCalledTimes(4);
    expect(log.messages('info')).toEqual(Array(4).fill('sweep.found'));
    sub.unsubscribe();
  });

  it('logs a failing sweep and keeps going', async () => {
    const findUnowned = vi
      .fn<(now: number) => Promise<JobRequest[]>>()
      .mockRejectedValueOnce(new Error('DEADLINE_EXCEEDED'))
      .mockResolvedValueOnce([req('late', 'sweep')])
      .mockResolvedValue([]);
    const onSuccess = vi.fn();
    const log = recordingLog();
    const seen: string[] = [];
    let ended = false;
    const sub = sweep(findUnowned, { everyMs: 500, log, onSuccess }).subscribe({
      next: (r) => seen.push(r.characterId),
      error: () => (ended = true),
      complete: () => (ended = true),
    });

    await vi.advanceTimersByTimeAsync(0);
    expect(log.entries).toEqual([
      { level: 'warn', message: 'sweep.failed', fields: { detail: 'Error: DEADLINE_EXCEEDED' } },
    ]);
    expect(onSuccess).not.toHaveBeenCalled();
    expect(ended).toBe(false);

    await vi.advanceTimersByTimeAsync(500);
    expect(seen).toEqual(['late']);
    expect(onSuccess).toHaveBeenCalledTimes(1);

    await vi.advanceTimersByTimeAsync(500);
    expect(findUnowned).toHaveBeenCalledTimes(3);
    expect(ended).toBe(false);
    sub.unsubscribe();
  });

  it('does not start a sweep while the previous one is still running', async () => {
    const slow = deferred<JobRequest[]>();
    const findUnowned = vi
      .fn<(now: number) => Promise<JobRequest[]>>()
      .mockReturnValueOnce(slow.promise)
      .mockResolvedValue([]);
    const seen: string[] = [];
    const sub = sweep(findUnowned, { everyMs: 100, log: recordingLog() }).subscribe((r) =>
      seen.push(r.characterId),
    );
    await vi.advanceTimersByTimeAsync(350);
    expect(findUnowned).toHaveBeenCalledTimes(1);
    slow.resolve([req('slow', 'sweep')]);
    await vi.advanceTimersByTimeAsync(0);
    expect(seen).toEqual(['slow']);
    await vi.advanceTimersByTimeAsync(100);
    expect(findUnowned).toHaveBeenCalledTimes(2);
    sub.unsubscribe();
  });
});
