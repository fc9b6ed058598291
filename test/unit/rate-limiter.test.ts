import { describe, expect, it } from 'vitest';
import { SlidingWindowLimiter, type Permit } from '../../src/clipdrop/rate-limiter.js';

/** A limiter on a manual clock: `advance(ms)` moves time and fires due timers in order. */
function manual(limit: number, windowMs = 60_000, backlog?: () => number) {
  let now = 0;
  let timers: Array<{ at: number; fn: () => void; cancelled: boolean }> = [];
  const limiter = new SlidingWindowLimiter({
    limit,
    windowMs,
    ...(backlog === undefined ? {} : { backlog }),
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

async function granted(promises: Array<Promise<Permit>>): Promise<number> {
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

  it('serves urgent waiters (taken-over jobs) before the others, in their own arrival order', async () => {
    const { limiter, advance } = manual(1, 1_000);
    const order: string[] = [];
    const held = await limiter.acquire();
    const a = limiter.acquire().then((p) => (order.push('a'), p));
    const u1 = limiter.acquire(undefined, { urgent: true }).then((p) => (order.push('u1'), p));
    const b = limiter.acquire().then((p) => (order.push('b'), p));
    const u2 = limiter.acquire(undefined, { urgent: true }).then((p) => (order.push('u2'), p));
    held.done();
    for (const next of [u1, u2, a, b]) {
      await advance(1_001);
      (await next).done();
    }
    expect(order).toEqual(['u1', 'u2', 'a', 'b']);
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

  it('paced when the backlog does not fit: half at once, the rest spread, never a stall or more than the limit', async () => {
    const tick = manual(20, 60_000, () => 100);
    const sentAt = await sendTimes(tick, 40, 150);
    expect(sentAt.filter((t) => t === 0)).toHaveLength(10); // half of 20 at once
    for (const t of sentAt) {
      expect(sentAt.filter((u) => u >= t && u < t + 60_000).length).toBeLessThanOrEqual(20);
    }
    // 18 of each window's 20 used (the last 2 are kept for takeovers), and no stall: the 8 left
    // after the burst are spread over the burst's minute (6.7 s apart), then close to 3 s.
    expect(sentAt.filter((t) => t <= 60_000)).toHaveLength(18);
    expect(sentAt.filter((t) => t > 60_000 && t <= 120_000)).toHaveLength(18);
    const gaps = sentAt.slice(10).map((t, i) => t - (sentAt[i + 9] ?? 0));
    expect(Math.max(...gaps)).toBeLessThanOrEqual(7_000);
  });

  it('paced: the last tenth of the window is kept for urgent calls', async () => {
    const tick = manual(20, 60_000, () => 100);
    const sentAt = await sendTimes(tick, 30, 58); // 18 sent by 58 s, the rest wait
    expect(sentAt).toHaveLength(18);
    const urgent = Array.from({ length: 3 }, () =>
      tick.limiter.acquire(undefined, { urgent: true }),
    );
    expect(await granted(urgent)).toBe(2); // at once, up to the window's 20
  });

  it('urgent requests (takeovers) skip the pacing gap, not the window', async () => {
    const { limiter, advance, time } = manual(12, 60_000, () => 100);
    for (let i = 0; i < 6; i++) (await limiter.acquire()).done(); // half of 12 at once
    const normal = limiter.acquire().then(() => time());
    const urgent = await limiter.acquire(undefined, { urgent: true }); // at once: room left
    expect(time()).toBe(0);
    urgent.done();
    const more = Array.from({ length: 6 }, () => limiter.acquire(undefined, { urgent: true }));
    expect(await granted(more)).toBe(5); // then the window is full (12)
    for (const p of more.slice(0, 5)) (await p).done();
    void more[5]?.then((p) => p.done());
    await advance(120_000);
    expect(await normal).toBeGreaterThan(60_000); // it waited for the window, after them
  });

  it('not paced while everything expected fits in the window', async () => {
    const { limiter } = manual(20, 60_000, () => 8);
    const eight = Array.from({ length: 8 }, () => limiter.acquire());
    expect(await granted(eight)).toBe(8);
  });

  it('a backlog after a burst: the room left is spread until the burst leaves the window', async () => {
    let backlog = 0;
    const { limiter, advance, time } = manual(20, 60_000, () => backlog);
    for (let i = 0; i < 10; i++) (await limiter.acquire()).done(); // fits: at once
    backlog = 100;
    const next = limiter.acquire().then(() => time());
    await advance(10_000);
    // The 8 left (2 are kept for takeovers) last until the first 10 leave at 60 s: 60 s / 9,
    // not the even 3 s (which would fill the window at 30 s and send nothing for 30).
    expect(await next).toBe(6_667);
  });

  it('paces at the share, not at a lower cap (the fleet reservation) set under it', async () => {
    const { limiter, advance, time } = manual(20, 60_000, () => 100);
    limiter.setLimit(12, 20); // capped at 12 in the window, paced as a share of 20
    const burst = Array.from({ length: 10 }, () => limiter.acquire());
    expect(await granted(burst)).toBe(10); // half of 20 (half of 12 would stop at 6)
    for (const p of burst) (await p).done();
    const paced = limiter.acquire().then(() => time());
    await advance(20_000);
    expect(await paced).toBe(6_667); // the 8 left of a share of 20 spread over the minute
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
