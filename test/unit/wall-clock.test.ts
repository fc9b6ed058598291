import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  BOUND_KEPT_MS,
  createMonotonic,
  createServerClock,
  monotonic,
} from '../../src/jobs/clock.js';
import { afterBeat, holds, NO_CONTINUITY } from '../../src/jobs/fleet.js';
import { SlidingWindowLimiter, type Permit } from '../../src/clipdrop/rate-limiter.js';

const FIVE_MINUTES = 5 * 60_000;

describe('Firestore’s time as a worker knows it', () => {
  it('is the latest answer’s time plus what the monotonic clock counted since', () => {
    let mono = 1_000;
    const clock = createServerClock(
      () => mono,
      () => 42,
    );
    expect(clock.synced).toBe(false);
    expect(clock.now()).toBe(42); // this machine's clock until Firestore answers
    clock.observe(5_000_000);
    mono += 700;
    expect(clock.synced).toBe(true);
    expect(clock.now()).toBe(5_000_700);
  });

  it('keeps the highest lower bound: an answer that took long (an older time) does not lower it', () => {
    let mono = 0;
    const clock = createServerClock(() => mono);
    clock.observe(10_000);
    mono = 500;
    clock.observe(10_100); // read at 10 100, received 400 ms later
    expect(clock.now()).toBe(10_500);
    mono = 600;
    clock.observe(10_650); // a closer answer raises it
    expect(clock.now()).toBe(10_650);
  });

  it('gives up a bound older than a minute for the latest one (clocks’ rates differ)', () => {
    let mono = 0;
    const clock = createServerClock(() => mono);
    clock.observe(100_000);
    mono = BOUND_KEPT_MS + 1;
    clock.observe(100_000 + BOUND_KEPT_MS - 20); // this machine ran 21 ms fast over the minute
    expect(clock.now()).toBe(100_000 + BOUND_KEPT_MS - 20);
  });

  it.each([FIVE_MINUTES, -FIVE_MINUTES])(
    'does not move when the wall clock steps by %d ms',
    (step) => {
      vi.useFakeTimers({ toFake: ['Date'] });
      try {
        const clock = createServerClock();
        clock.observe(Date.now());
        const gap = clock.now() - monotonic();
        const mono = monotonic();
        vi.setSystemTime(Date.now() + step);
        expect(monotonic() - mono).toBeLessThan(1_000);
        expect(Math.abs(clock.now() - monotonic() - gap)).toBeLessThanOrEqual(1);
      } finally {
        vi.useRealTimers();
      }
    },
  );
});

describe('the monotonic clock across a suspend of the machine', () => {
  it('counts the time the machine slept, which performance.now() does not', () => {
    let precise = 0;
    let boot = 1_000_000;
    const mono = createMonotonic(
      () => precise,
      () => boot,
      5_000,
    );
    precise += 1_000;
    boot += 1_000;
    expect(mono()).toBe(6_000);
    boot += 10; // the boot clock's coarse steps are not a suspend
    expect(mono()).toBe(6_000);
    boot += 60_000; // asleep for a minute: only the boot clock moved
    expect(mono()).toBeGreaterThanOrEqual(6_000 + 60_000 - 50);
    const after = mono();
    precise += 5;
    boot += 5;
    expect(mono()).toBe(after + 5);
  });

  it('so a worker whose host slept past its coverage no longer holds its jobs', () => {
    let precise = 0;
    let boot = 0;
    const mono = createMonotonic(
      () => precise,
      () => boot,
      0,
    );
    const beat = afterBeat(NO_CONTINUITY, { sentAt: 0, ackAt: 20, ttlMs: 15_000, marginMs: 1_000 });
    const claimedAt = mono() + 30;
    precise += 100;
    boot += 100;
    expect(holds(beat, mono(), claimedAt, 1_000)).toBe(true);
    boot += 20_000; // suspended past the presence timeout; its timers did not run
    expect(holds(beat, mono(), claimedAt, 1_000)).toBe(false);
  });
});

describe('the rate limiter’s window on a stepped wall clock', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  const settled = async (p: Promise<Permit>): Promise<boolean> => {
    let done = false;
    void p.then(() => (done = true));
    await vi.advanceTimersByTimeAsync(0);
    return done;
  };

  it.each([FIVE_MINUTES, -FIVE_MINUTES])(
    'spends exactly its limit per window when the clock steps by %d ms',
    async (step) => {
      vi.useFakeTimers({ toFake: ['Date', 'performance', 'setTimeout', 'clearTimeout'] });
      // The default clock: what the worker runs with.
      const limiter = new SlidingWindowLimiter({ limit: 2, windowMs: 60_000 });
      (await limiter.acquire()).done();
      (await limiter.acquire()).done();
      const third = limiter.acquire();
      vi.setSystemTime(Date.now() + step);
      // A step forward does not empty the window (a new request looks at it at once); a step
      // back does not hold it for 5 minutes.
      const fourth = limiter.acquire();
      expect(await settled(third)).toBe(false);
      expect(await settled(fourth)).toBe(false);
      await vi.advanceTimersByTimeAsync(59_000);
      expect(await settled(third)).toBe(false);
      await vi.advanceTimersByTimeAsync(1_100);
      expect(await settled(third)).toBe(true);
    },
  );
});
