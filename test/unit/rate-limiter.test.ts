import { describe, expect, it } from 'vitest';
import { SlidingWindowLimiter, type Permit } from '../../src/clipdrop/rate-limiter.js';

/** A limiter on a manual clock: `advance(ms)` moves time and fires due timers in order. */
function manual(limit: number, windowMs = 60_000, burstFraction?: number) {
  let now = 0;
  let timers: Array<{ at: number; fn: () => void; cancelled: boolean }> = [];
  const limiter = new SlidingWindowLimiter({
    limit,
    windowMs,
    ...(burstFraction === undefined ? {} : { burstFraction }),
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

  it('paced: sends a burst, then one request every window/limit, never more than limit a window', async () => {
    const { limiter, advance, time } = manual(8, 8_000, 0.25);
    let sent = 0;
    for (let i = 0; i < 12; i++) {
      void limiter.acquire().then((permit) => {
        sent += 1;
        permit.done();
      });
    }
    const sentBy = async (t: number) => {
      await advance(t - time());
      await new Promise((r) => setTimeout(r, 0));
      return sent;
    };
    expect(await sentBy(0)).toBe(2); // a burst: a quarter of 8
    expect(await sentBy(999)).toBe(2);
    expect(await sentBy(1_000)).toBe(3); // then one token every 8 s / 8
    expect(await sentBy(6_000)).toBe(8);
    expect(await sentBy(8_000)).toBe(8); // tokens wait: 8 answers in the window
    expect(await sentBy(8_001)).toBe(10); // the two first answers leave it
    expect(await sentBy(9_000)).toBe(10);
    expect(await sentBy(9_001)).toBe(11);
  });

  it('paced: a later request waits for the next token, not for the window to empty', async () => {
    const { limiter, advance, time } = manual(20, 60_000, 0.25);
    for (let i = 0; i < 5; i++) (await limiter.acquire()).done(); // the burst
    const later = limiter.acquire().then(() => time());
    await advance(60_000);
    expect(await later).toBe(3_000);
  });

  it('a first grant (the limit raised from 0) comes with its burst', async () => {
    const { limiter } = manual(0, 60_000, 0.25);
    limiter.setLimit(20);
    const five = Array.from({ length: 6 }, () => limiter.acquire());
    expect(await granted(five)).toBe(5);
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
