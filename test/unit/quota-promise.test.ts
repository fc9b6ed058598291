import { describe, expect, it } from 'vitest';
import { SlidingWindowLimiter, type Permit } from '../../src/clipdrop/rate-limiter.js';
import { counted, rebalance, type Grant, type PresenceSeen } from '../../src/jobs/fleet.js';
import {
  drainSteps,
  leavingAt,
  leavingOf,
  stepWeight,
  type LeavingAt,
} from '../../src/jobs/quota-promise.js';
import { createQuotaShare } from '../../src/pipeline/fleet-loop.js';

const WINDOW = 60_000;
const MARGIN = 1_000;

describe('the heartbeat’s promise about calls', () => {
  it('lists calls by the whole second they leave, rounded up', () => {
    expect(leavingOf([0, 1, 999, 1_000, 1_001, 59_500])).toEqual({
      '0': 1,
      '1': 3,
      '2': 1,
      '60': 1,
    });
    expect(leavingOf([])).toEqual({});
  });

  it('reads the list back on Firestore’s clock, dropping what it cannot trust', () => {
    expect(leavingAt({ '3': 2, '1': 1, x: 4, '2': -1, '4': 1.5 }, 10_000)).toEqual([
      { at: 11_000, calls: 1 },
      { at: 13_000, calls: 2 },
    ]);
    expect(leavingAt('junk', 10_000)).toEqual([]);
  });

  it('a dead worker weighs what it reserved, less each group of calls as it leaves, then its tail', () => {
    const leaving: LeavingAt[] = [
      { at: 20_000, calls: 5 },
      { at: 30_000, calls: 3 },
    ];
    const steps = drainSteps({ reserved: 12, leaving }, 100_000, MARGIN, 30);
    expect(steps).toEqual([
      { until: 21_000, weight: 12 },
      { until: 31_000, weight: 7 },
      { until: 100_000, weight: 4 },
    ]);
    expect(stepWeight(steps, 20_999)).toBe(12);
    expect(stepWeight(steps, 21_000)).toBe(7);
    expect(stepWeight(steps, 99_999)).toBe(4);
    expect(stepWeight(steps, 100_000)).toBe(0);
    // Never above what its grant weighed; a list larger than the reservation is not trusted.
    expect(drainSteps({ reserved: 12, leaving }, 100_000, MARGIN, 10)[0]?.weight).toBe(10);
    expect(drainSteps({ reserved: 6, leaving }, 100_000, MARGIN, 30)).toEqual([
      { until: 100_000, weight: 6 },
    ]);
  });

  it('the ledger frees a dead worker’s share as its calls leave, not a window after its death', () => {
    const dead: PresenceSeen = {
      expiresAt: 10_000,
      alive: false,
      reserved: 30,
      leaving: [{ at: 12_000, calls: 30 }],
    };
    const before: Record<string, Grant> = {
      w1: { limit: 30, drainLimit: 0, drainUntil: 0 },
      w2: { limit: 30, drainLimit: 0, drainUntil: 0 },
    };
    const settle = (ledger: Record<string, Grant>, now: number, seen = dead) =>
      rebalance(ledger, {
        me: 'w1',
        rpm: 60,
        now,
        windowMs: WINDOW,
        marginMs: MARGIN,
        presence: new Map([
          ['w1', { expiresAt: now + 15_000, alive: true }],
          ['w2', seen],
        ]),
        used: 30,
      });
    const first = settle(before, 11_000);
    expect(first.limit).toBe(30);
    // Once its calls have left (plus the margin), the survivor may use the whole key.
    expect(settle(first.ledger, 13_000).limit).toBe(60);
    // A worker of the previous version (no list) keeps counting until a window past its expiry.
    const old: PresenceSeen = { expiresAt: dead.expiresAt, alive: false, reserved: 30 };
    const oldFirst = settle(before, 11_000, old);
    expect(settle(oldFirst.ledger, 13_000, old).limit).toBe(30);
    expect(settle(oldFirst.ledger, 10_000 + WINDOW + MARGIN, old).limit).toBe(60);
    expect(counted(first.ledger.w2 as Grant, 13_000)).toBe(0);
  });
});

/** A seeded generator (mulberry32): the same runs each time. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('what a dead worker still weighs always covers what it sent', () => {
  /**
   * One worker with a backlog and a quota share that the ledger moves, beating every 3 s (and at once when its
   * allowance is spent), its beats committed and acknowledged after random delays, killed at a
   * random moment. From the last beat that committed, the ledger's steps must weigh at least
   * the calls that may still count at ClipDrop (any moment from send to answer, plus a window)
   * at every moment after the kill. A short window and fast answers: the window turns between
   * beats, when a worker that ignored its promise would refill it.
   */
  it.each(Array.from({ length: 24 }, (_, i) => i + 1))('seed %i', async (seed) => {
    const WINDOW = 10_000;
    const rnd = random(seed);
    let now = 0;
    let timers: Array<{ at: number; fn: () => void }> = [];
    const limiter = new SlidingWindowLimiter({
      limit: 0,
      windowMs: WINDOW,
      now: () => now,
      setTimer: (fn, ms) => {
        const t = { at: now + ms, fn };
        timers.push(t);
        return { cancel: () => (timers = timers.filter((x) => x !== t)) };
      },
    });
    const share = createQuotaShare(limiter);
    const grant = 10 + Math.floor(rnd() * 40);
    share.granted(grant);
    const calls: Array<{ sentAt: number; answeredAt?: number }> = [];
    let committed: { fields: ReturnType<typeof share.beat>; at: number } | undefined;
    let nextBeat = 0;
    share.onHeldBack(() => (nextBeat = Math.min(nextBeat, now + 250)));
    const killAt = 12_000 + rnd() * 40_000; // past the first window's turn
    const latency = () => 300 + rnd() * 500;
    const due: Array<{ at: number; fn: () => void }> = [];

    const ask = () => {
      void limiter.acquire().then((permit: Permit) => {
        const call: { sentAt: number; answeredAt?: number } = { sentAt: now };
        calls.push(call);
        due.push({
          at: now + latency(),
          fn: () => {
            if (now >= killAt) return; // the answer never reaches a dead process
            call.answeredAt = now;
            permit.done();
          },
        });
      });
    };
    for (let i = 0; i < 400; i += 1) ask();

    for (; now < killAt; now += 50) {
      for (const t of [...timers, ...due].filter((x) => x.at <= now)) {
        timers = timers.filter((x) => x !== t);
        due.splice(due.indexOf(t), 1);
        t.fn();
      }
      if (now >= nextBeat) {
        nextBeat = now + 3_000;
        const fields = share.beat();
        const commitAt = now + 10 + rnd() * 400;
        const ackAt = commitAt + 10 + rnd() * 400;
        due.push({ at: commitAt, fn: () => (committed = { fields, at: commitAt }) });
        due.push({ at: ackAt, fn: () => share.acknowledged(fields) });
      }
      if (rnd() < 0.02) ask();
      // The ledger moves the grant now and then (a worker joins or leaves).
      if (rnd() < 0.004) share.granted(2 + Math.floor(rnd() * grant));
      await Promise.resolve();
      await Promise.resolve();
    }

    expect(committed).toBeDefined();
    if (!committed) return;
    const expiresAt = committed.at + 15_000;
    const end = expiresAt + WINDOW + MARGIN;
    const steps = drainSteps(
      {
        reserved: committed.fields.reserved,
        leaving: leavingAt(committed.fields.leaving, committed.at),
      },
      end,
      MARGIN,
      Number.POSITIVE_INFINITY, // the promise alone, not the grant's cap
    );
    // A call may count at ClipDrop from its send until a window after its answer (one in
    // flight at the kill: a window after the kill).
    const mayCount = (t: number) =>
      calls.filter((c) => c.sentAt <= t && t < (c.answeredAt ?? killAt) + WINDOW).length;
    expect(calls.length).toBeGreaterThan(0);
    for (let t = killAt; t <= end + 5_000; t += 250) {
      expect(mayCount(t), `at ${t} ms`).toBeLessThanOrEqual(stepWeight(steps, t));
    }
  });
});
