import { describe, expect, it } from 'vitest';
import {
  SlidingWindowLimiter,
  type Permit,
  type RateLimiterOptions,
} from '../../src/clipdrop/rate-limiter.js';

/** A limiter on a manual clock: `advance(ms)` moves time and fires due timers in order. */
function manual(limit: number, windowMs = 60_000, more: Partial<RateLimiterOptions> = {}) {
  let now = 0;
  let timers: Array<{ at: number; fn: () => void; cancelled: boolean }> = [];
  const limiter = new SlidingWindowLimiter({
    limit,
    windowMs,
    ...more,
    now: () => now,
    setTimer: (fn, ms) => {
      const t = { at: now + ms, fn, cancelled: false };
      timers.push(t);
      return { cancel: () => (t.cancelled = true) };
    },
  });
  const advance = async (ms: number) => {
    const end = now + ms;
    for (;;) {
      timers = timers.filter((t) => !t.cancelled);
      const next = timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      now = next.at;
      timers.splice(timers.indexOf(next), 1);
      next.fn();
      await Promise.resolve();
    }
    now = end;
    await Promise.resolve();
  };
  return { limiter, advance, time: () => now };
}

async function granted(promises: Array<Promise<unknown>>): Promise<number> {
  let count = 0;
  await Promise.all(
    promises.map((p) =>
      Promise.race([p.then(() => (count += 1)), new Promise((r) => setTimeout(r, 0))]),
    ),
  );
  return count;
}

describe('SlidingWindowLimiter', () => {
  it('lets `limit` requests through at once and holds the next', async () => {
    const { limiter } = manual(3);
    const permits = [1, 2, 3, 4].map(() => limiter.acquire());
    expect(await granted(permits)).toBe(3);
    expect(limiter.used).toBe(3);
  });

  it('counts a request from its answer, so the window never holds less than the server’s', async () => {
    const { limiter, advance } = manual(1, 1_000);
    const first = await limiter.acquire();
    await advance(5_000); // a slow answer: the server may have counted it any time up to now
    first.done();
    const next = limiter.acquire();
    await advance(999);
    expect(await granted([next])).toBe(0);
    await advance(2);
    expect(await granted([next])).toBe(1);
  });

  it('serves waiters first come, first served as slots free', async () => {
    const { limiter, advance } = manual(1, 1_000);
    const order: string[] = [];
    const a = await limiter.acquire();
    const b = limiter.acquire().then((p) => (order.push('b'), p));
    const c = limiter.acquire().then((p) => (order.push('c'), p));
    a.done();
    await advance(1_001);
    (await b).done();
    await advance(1_001);
    await c;
    expect(order).toEqual(['b', 'c']);
  });

  it('serves a takeover’s calls first, then a new user’s first job’s, then the rest, each in arrival order', async () => {
    const { limiter, advance } = manual(1, 1_000);
    const order: string[] = [];
    const held = await limiter.acquire();
    const queue = (name: string, priority?: 'takeover' | 'new-user') =>
      limiter
        .acquire(undefined, priority === undefined ? {} : { priority })
        .then((p) => (order.push(name), p));
    const a = queue('a');
    const n1 = queue('n1', 'new-user');
    const t1 = queue('t1', 'takeover');
    const b = queue('b');
    const n2 = queue('n2', 'new-user');
    const t2 = queue('t2', 'takeover');
    held.done();
    for (const next of [t1, t2, n1, n2, a, b]) {
      await advance(1_001);
      (await next).done();
    }
    expect(order).toEqual(['t1', 't2', 'n1', 'n2', 'a', 'b']);
  });

  /** Sends of `n` waiting requests, each answered at once, over `seconds` (1 s steps). */
  async function sendTimes(tick: ReturnType<typeof manual>, n: number, seconds: number) {
    const sentAt: number[] = [];
    for (let i = 0; i < n; i++) {
      void tick.limiter.acquire().then((permit) => {
        sentAt.push(tick.time());
        permit.done();
      });
    }
    for (let s = 0; s <= seconds; s++) {
      await new Promise((r) => setTimeout(r, 0));
      await tick.advance(1_000);
    }
    return sentAt;
  }

  it('a backlog spends the window at once but for the reserve, kept 5 s, then as calls leave it', async () => {
    const tick = manual(20); // a share of 20 a minute keeps 2 calls back
    const sentAt = await sendTimes(tick, 40, 70);
    expect(sentAt.filter((t) => t === 0)).toHaveLength(18); // what fits goes now
    // The reserve is kept 5 s, then lent: the window is full until its first calls leave.
    expect(sentAt.filter((t) => t > 0 && t < 5_000)).toHaveLength(0);
    expect(sentAt.filter((t) => t >= 5_000 && t < 6_000)).toHaveLength(2);
    expect(sentAt.filter((t) => t >= 6_000 && t < 60_000)).toHaveLength(0);
    // Then the rest as the first calls leave it (the reserve lent at once: room is near).
    expect(sentAt.filter((t) => t <= 61_000)).toHaveLength(38);
    expect(sentAt).toHaveLength(40);
    expect(Math.max(...sentAt)).toBeLessThanOrEqual(66_000);
    for (const t of sentAt) {
      expect(sentAt.filter((u) => u >= t && u < t + 60_000).length).toBeLessThanOrEqual(20);
    }
  });

  it('calls that go first (takeovers, a new user’s first job) use the reserve at once on a full window', async () => {
    const tick = manual(20);
    const sentAt = await sendTimes(tick, 30, 3); // 18 sent, 12 wait; 4 s now
    expect(sentAt).toHaveLength(18);
    expect(tick.time()).toBe(4_000);
    const urgent = Array.from({ length: 3 }, () =>
      tick.limiter.acquire(undefined, { priority: 'takeover' }),
    );
    expect(await granted(urgent)).toBe(2); // the reserve: two calls, one job's
    await tick.advance(55_999); // 59.999 s: the window is still full
    expect(await granted(urgent.slice(2))).toBe(0);
    await tick.advance(2); // the first calls leave the window: the takeover's goes first
    expect(await granted(urgent.slice(2))).toBe(1);
  });

  it('no reserve under a share of 10: a small share is spent in full', async () => {
    const { limiter } = manual(9);
    const nine = Array.from({ length: 10 }, () => limiter.acquire());
    expect(await granted(nine)).toBe(9);
  });

  it('the reserve follows the share, not a lower cap (the fleet reservation) set under it', async () => {
    const { limiter } = manual(20);
    limiter.setLimit(12, 20); // capped at 12 in the window, a share of 20 (reserve 2)
    const burst = Array.from({ length: 14 }, () => limiter.acquire());
    expect(await granted(burst)).toBe(12); // the cap binds, not a reserve sized on 12
    limiter.setLimit(20, 20); // the next beat raises the cap: up to the reserve
    expect(await granted(burst)).toBe(14);
    const more = Array.from({ length: 6 }, () => limiter.acquire());
    expect(await granted(more)).toBe(4); // 18 of 20: the last 2 kept (for 5 s)
  });

  it('bounds the calls in flight (WORKER_CONCURRENCY): an answer lets the next one go', async () => {
    const { limiter } = manual(60, 60_000, { maxInFlight: 4 });
    const calls = Array.from({ length: 6 }, () => limiter.acquire());
    expect(await granted(calls)).toBe(4);
    (await calls[0])?.done();
    expect(await granted(calls)).toBe(5);
    const urgent = limiter.acquire(undefined, { priority: 'takeover' });
    (await calls[1])?.done();
    expect(await granted([urgent])).toBe(1); // ahead of the sixth, still waiting
    expect(await granted(calls)).toBe(5);
  });

  it('claims follow the window: a job is admitted while its two calls fit beside those promised', async () => {
    const { limiter } = manual(10);
    const signal = new AbortController().signal;
    const tickets = Array.from({ length: 6 }, () => limiter.admitJob(signal));
    expect(await granted(tickets)).toBe(5); // 5 × 2 = 10
    const first = await tickets[0]!;
    // Its calls move from promised to sent: the sixth still does not fit.
    (await limiter.acquire(undefined, { ticket: first })).done();
    expect(await granted(tickets.slice(5))).toBe(0);
    first.release(); // its job ended having made one call: one promised call given back
    expect(await granted(tickets.slice(5))).toBe(0);
    (await tickets[1]!).release(); // a job that made none: two given back
    expect(await granted(tickets.slice(5))).toBe(1);
  });

  it('a job is admitted 2 s before the window has room for it, and never on a share of 0', async () => {
    const tick = manual(2);
    const signal = new AbortController().signal;
    for (let i = 0; i < 2; i += 1) (await tick.limiter.acquire()).done(); // full until 60 s
    const next = tick.limiter.admitJob(signal).then(() => tick.time());
    await tick.advance(57_999);
    expect(await granted([next])).toBe(0);
    await tick.advance(10_000);
    expect(await next).toBe(58_001);
    tick.limiter.setLimit(0, 0); // a lapse: nothing is claimed
    const none = tick.limiter.admitJob(signal);
    await tick.advance(120_000);
    expect(await granted([none])).toBe(0);
  });

  it('stops at the send allowance, says so once, and goes on when it is raised', async () => {
    const { limiter } = manual(10);
    let told = 0;
    limiter.setAllowance(2, () => (told += 1));
    const calls = [1, 2, 3, 4].map(() => limiter.acquire());
    expect(await granted(calls)).toBe(2);
    expect(limiter.sends).toBe(2);
    expect(told).toBe(1);
    // A waiter the window allows but the allowance does not is told once, not on every look.
    (await calls[0]!).done();
    expect(await granted(calls.slice(2))).toBe(0);
    expect(told).toBe(1);
    limiter.setAllowance(3, () => (told += 1));
    expect(await granted(calls.slice(2))).toBe(1);
    expect(told).toBe(2);
  });

  it('lists when each answered call leaves the window', async () => {
    const tick = manual(10, 60_000);
    (await tick.limiter.acquire()).done();
    await tick.advance(10_000);
    (await tick.limiter.acquire()).done();
    await tick.limiter.acquire(); // in flight: not listed
    await tick.advance(5_000);
    expect(tick.limiter.leavingIn()).toEqual([45_000, 55_000]);
  });

  it('holds room for taken-over jobs: no job is admitted into it until their calls use it', async () => {
    const tick = manual(12);
    const signal = new AbortController().signal;
    tick.limiter.holdForTakeover(4, 600_000);
    const tickets = Array.from({ length: 5 }, () => tick.limiter.admitJob(signal));
    expect(await granted(tickets)).toBe(4); // 4 held + 4 × 2 = 12
    // An ordinary call does not use the held room: once it has left the window, still nothing.
    (await tick.limiter.acquire()).done();
    await tick.advance(61_000);
    expect(await granted(tickets.slice(4))).toBe(0);
    // The takeover's four calls do: once they have left the window, the fifth job fits.
    for (let i = 0; i < 4; i += 1) {
      (await tick.limiter.acquire(undefined, { priority: 'takeover' })).done();
    }
    await tick.advance(61_000);
    expect(await granted(tickets.slice(4))).toBe(1);
  });

  it('gives held room back once the hold ends unused', async () => {
    const tick = manual(10);
    const signal = new AbortController().signal;
    tick.limiter.holdForTakeover(10, 15_000);
    const ticket = tick.limiter.admitJob(signal);
    await tick.advance(14_999);
    expect(await granted([ticket])).toBe(0);
    await tick.advance(2);
    expect(await granted([ticket])).toBe(1);
  });

  it('holds everyone after a 429 until the pause ends', async () => {
    const { limiter, advance } = manual(10);
    limiter.pause(2_000);
    const waiting = limiter.acquire();
    await advance(1_999);
    expect(await granted([waiting])).toBe(0);
    await advance(2);
    expect(await granted([waiting])).toBe(1);
  });

  it('gives up a wait when its signal aborts, and the slot goes to the next waiter', async () => {
    const { limiter, advance } = manual(1);
    const held = await limiter.acquire();
    const controller = new AbortController();
    const aborted = limiter.acquire(controller.signal);
    const next = limiter.acquire();
    controller.abort(new Error('shutdown'));
    await expect(aborted).rejects.toThrow('shutdown');
    held.done();
    await advance(60_001);
    await expect(next).resolves.toBeDefined();
  });

  it('with its reserve and calls that go first, never more than the share in any window', async () => {
    const { limiter, advance, time } = manual(20, 10_000);
    const sentAt: number[] = [];
    const answering: Array<{ permit: Permit; at: number }> = [];
    const priorities = [undefined, 'new-user', undefined, 'takeover', undefined] as const;
    let arrived = 0;
    for (let step = 0; step < 1_000 && sentAt.length < 90; step += 1) {
      // One call arrives every 37 ms; each is answered 300 ms after it is sent.
      for (; arrived < 90 && arrived * 37 <= time(); arrived += 1) {
        const priority = priorities[arrived % priorities.length];
        void limiter.acquire(undefined, priority ? { priority } : {}).then((permit) => {
          sentAt.push(time());
          answering.push({ permit, at: time() + 300 });
        });
      }
      for (const a of answering.filter((x) => x.at <= time())) {
        answering.splice(answering.indexOf(a), 1);
        a.permit.done();
      }
      await advance(50);
    }
    expect(sentAt).toHaveLength(90);
    for (const t of sentAt) {
      expect(sentAt.filter((s) => s > t - 10_000 && s <= t).length).toBeLessThanOrEqual(20);
    }
  });

  it('never has more than `limit` requests in any window over a long run', async () => {
    const { limiter, advance, time } = manual(5, 1_000);
    const answeredAt: number[] = [];
    const jobs = Array.from({ length: 40 }, async () => {
      const permit = await limiter.acquire();
      const sentAt = time();
      await advance(37); // each answer takes a while
      permit.done();
      answeredAt.push(time());
      return sentAt;
    });
    for (let i = 0; i < 200 && answeredAt.length < 40; i += 1) await advance(50);
    const sent = await Promise.all(jobs);
    for (const t of sent) {
      const inWindow = sent.filter((s) => s > t - 1_000 && s <= t).length;
      expect(inWindow).toBeLessThanOrEqual(5);
    }
  });
});
