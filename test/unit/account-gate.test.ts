import { describe, expect, it } from 'vitest';
import { AccountGate, type GateTimers, type PauseReason } from '../../src/clipdrop/account-gate.js';

/** A manual clock: timers fire only when the test advances time. */
function manualTimers() {
  let now = 0;
  let pending: Array<{ at: number; fn: () => void }> = [];
  const timers: GateTimers = {
    after(ms, fn) {
      const timer = { at: now + ms, fn };
      pending.push(timer);
      return () => (pending = pending.filter((t) => t !== timer));
    },
    now: () => now,
  };
  return {
    timers,
    get now() {
      return now;
    },
    /** How many timers are armed. */
    get armed() {
      return pending.length;
    },
    /** Moves the clock forward, firing due timers in order. */
    advance(ms: number) {
      const until = now + ms;
      for (;;) {
        const due = pending.filter((t) => t.at <= until).sort((a, b) => a.at - b.at)[0];
        if (!due) break;
        pending = pending.filter((t) => t !== due);
        now = due.at;
        due.fn();
      }
      now = until;
    },
  };
}

function gate(
  opts: {
    firstProbeMs?: number;
    maxProbeMs?: number;
    outageThreshold?: number;
    transientRetryMs?: (retry: number) => number;
  } = {},
) {
  const clock = manualTimers();
  const events: string[] = [];
  const schedule: Array<{ at: number; delayMs: number; after: string }> = [];
  const g = new AccountGate({
    firstProbeMs: opts.firstProbeMs ?? 2_000,
    maxProbeMs: opts.maxProbeMs ?? 30_000,
    transientRetryMs: opts.transientRetryMs ?? ((n) => 100 * 2 ** (n - 1)),
    outageThreshold: opts.outageThreshold ?? 3,
    events: {
      paused: (reason: PauseReason) => events.push(`paused:${reason}`),
      resumed: (reason: PauseReason, pausedMs: number) =>
        events.push(`resumed:${reason}:${pausedMs}`),
      probeScheduled: (delayMs, after) => schedule.push({ at: clock.now, delayMs, after }),
    },
    timers: clock.timers,
  });
  return { g, events, clock, schedule };
}

/** Whether the promise has settled, once pending callbacks have run. */
const settled = async <T>(p: Promise<T>) => {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((r) => setImmediate(r));
  return done;
};

describe('AccountGate', () => {
  it('lets calls straight through while open', async () => {
    const { g } = gate();
    await expect(g.enter()).resolves.toMatchObject({ probe: false });
  });

  it('pauses on 402, holds callers, lets one probe through at a time, resumes on success', async () => {
    const { g, events, clock } = gate({ firstProbeMs: 1_000 });
    g.accountRefused('no-credits', '402', false);
    expect(g.paused).toBe('no-credits');
    const a = g.enter();
    const b = g.enter();
    expect(await settled(a)).toBe(false);
    clock.advance(1_000);
    await expect(a).resolves.toMatchObject({ probe: true });
    expect(await settled(b)).toBe(false);
    // The probe is refused again: still paused, next probe after twice the interval.
    g.accountRefused('no-credits', '402', true);
    clock.advance(1_999);
    expect(await settled(b)).toBe(false);
    clock.advance(1);
    await expect(b).resolves.toMatchObject({ probe: true });
    const c = g.enter();
    g.succeeded(true);
    await expect(c).resolves.toMatchObject({ probe: false });
    expect(g.paused).toBeUndefined();
    expect(clock.armed).toBe(0);
    // One pause, one resume (3 s after the pause), however many refusals in between.
    expect(events).toEqual(['paused:no-credits', 'resumed:no-credits:3000']);
  });

  it('probes first after firstProbeMs, then doubles the interval on each refusal up to maxProbeMs', async () => {
    const { g, clock, schedule } = gate({ firstProbeMs: 2_000, maxProbeMs: 30_000 });
    g.accountRefused('no-credits', '402', false);
    const probes: number[] = [];
    for (let i = 0; i < 7; i++) {
      const p = g.enter();
      while (!(await settled(p))) clock.advance(100);
      expect(await p).toMatchObject({ probe: true });
      probes.push(clock.now);
      g.accountRefused('no-credits', '402', true);
    }
    const gaps = probes.map((t, i) => t - (probes[i - 1] ?? 0));
    expect(gaps).toEqual([2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
    expect(schedule.map((s) => s.after)).toEqual(['pause', ...Array<string>(7).fill('refused')]);
    g.close();
  });

  it('a probe that meets a transient failure during an account pause is retried on the retry backoff', async () => {
    const { g, clock, schedule, events } = gate({
      firstProbeMs: 2_000,
      transientRetryMs: (n) => 100 * 2 ** (n - 1),
    });
    g.accountRefused('no-credits', '402', false);
    const probeAt = async () => {
      const p = g.enter();
      while (!(await settled(p))) clock.advance(10);
      expect(await p).toMatchObject({ probe: true });
      return clock.now;
    };
    expect(await probeAt()).toBe(2_000);
    // A 5xx, a reset, a timeout: 100 ms, 200 ms, 400 ms later, not a probe interval later.
    expect(g.transientFailure('ClipDrop 500', true)).toBe(true);
    expect(await probeAt()).toBe(2_100);
    expect(g.transientFailure('ECONNRESET', true)).toBe(true);
    expect(await probeAt()).toBe(2_300);
    expect(g.transientFailure('timeout', true)).toBe(true);
    expect(await probeAt()).toBe(2_700);
    // Still the account's refusal: the interval resumes where it was (4 s), not from the top.
    g.accountRefused('no-credits', '402', true);
    expect(await probeAt()).toBe(6_700);
    // The next transient failure starts the retry backoff afresh.
    g.transientFailure('ClipDrop 503', true);
    expect(await probeAt()).toBe(6_800);
    g.succeeded(true);
    expect(g.paused).toBeUndefined();
    expect(events).toEqual(['paused:no-credits', 'resumed:no-credits:6800']);
    expect(schedule.map((s) => s.after)).toEqual([
      'pause',
      'transient',
      'transient',
      'transient',
      'refused',
      'transient',
    ]);
  });

  it('answers of calls already in flight when the gate closed never push the probe back', async () => {
    const { g, clock } = gate({ firstProbeMs: 2_000 });
    g.accountRefused('no-credits', '402', false);
    const waiting = g.enter();
    // Calls sent before the pause come back over the next seconds: 402s, 5xx, resets.
    for (const t of [500, 1_000, 1_500, 1_900]) {
      clock.advance(t - clock.now);
      g.accountRefused('no-credits', '402', false);
      expect(g.transientFailure('ClipDrop 500', false)).toBe(true);
    }
    clock.advance(2_000 - clock.now - 1);
    expect(await settled(waiting)).toBe(false);
    clock.advance(1);
    await expect(waiting).resolves.toMatchObject({ probe: true });
    g.close();
  });

  it('during an outage a failed probe backs off like a refusal', async () => {
    const { g, clock, events } = gate({ firstProbeMs: 1_000, maxProbeMs: 3_000 });
    for (let i = 0; i < 3; i++) g.transientFailure('ClipDrop 503', false);
    expect(g.paused).toBe('outage');
    const probes: number[] = [];
    for (let i = 0; i < 4; i++) {
      const p = g.enter();
      while (!(await settled(p))) clock.advance(50);
      probes.push(clock.now);
      expect(g.transientFailure('ClipDrop 503', true)).toBe(true);
    }
    expect(probes).toEqual([1_000, 3_000, 6_000, 9_000]);
    expect(events).toEqual(['paused:outage']);
    g.close();
  });

  it('each pause starts again from firstProbeMs; a first probe above the maximum is capped', async () => {
    const { g, clock, schedule } = gate({ firstProbeMs: 5_000, maxProbeMs: 3_000 });
    g.accountRefused('unauthorized', '401', false);
    const p = g.enter();
    clock.advance(3_000);
    await expect(p).resolves.toMatchObject({ probe: true });
    g.accountRefused('unauthorized', '401', true);
    const q = g.enter();
    clock.advance(3_000);
    await expect(q).resolves.toMatchObject({ probe: true });
    g.succeeded(true);
    g.accountRefused('no-credits', '402', false);
    expect(schedule.map((s) => s.delayMs)).toEqual([3_000, 3_000, 3_000]);
    g.close();
  });

  it('pauses for an outage only after the threshold of consecutive failures', () => {
    const { g, events } = gate({ outageThreshold: 3 });
    expect(g.transientFailure('503', false)).toBe(false);
    expect(g.transientFailure('503', false)).toBe(false);
    g.succeeded(false); // a success in between resets the count
    expect(g.transientFailure('503', false)).toBe(false);
    expect(g.transientFailure('503', false)).toBe(false);
    expect(g.transientFailure('503', false)).toBe(true);
    expect(events).toEqual(['paused:outage']);
    g.close();
  });

  it('a probe abandoned before its answer hands the probe to the next caller', async () => {
    const { g, clock } = gate({ firstProbeMs: 500 });
    g.accountRefused('unauthorized', '401', false);
    const a = g.enter();
    const b = g.enter();
    clock.advance(500);
    await expect(a).resolves.toMatchObject({ probe: true });
    g.abandoned(true);
    await expect(b).resolves.toMatchObject({ probe: true });
    g.close();
  });

  it('with nobody waiting when the probe is due, the next caller probes at once', async () => {
    const { g, clock } = gate({ firstProbeMs: 500 });
    g.accountRefused('no-credits', '402', false);
    clock.advance(500);
    await expect(g.enter()).resolves.toMatchObject({ probe: true });
    // Only one probe at a time.
    expect(await settled(g.enter())).toBe(false);
    g.close();
  });

  it('a waiting caller whose signal aborts stops waiting', async () => {
    const { g } = gate();
    g.accountRefused('no-credits', '402', false);
    const controller = new AbortController();
    const waiting = g.enter(controller.signal);
    controller.abort(new Error('stop'));
    await expect(waiting).rejects.toThrow('stop');
    g.close();
  });
});

describe('AccountGate and calls already in flight', () => {
  it('a 200 of a call sent before the pause does not reopen it; the probe’s 200 does', async () => {
    const { g, events, clock } = gate();
    const early = await g.enter(); // sent while the gate was open
    const other = await g.enter();
    g.accountRefused('no-credits', '402', other.probe);
    g.succeeded(early.probe, early.pauses); // counted before the 402: proves nothing now
    expect(g.paused).toBe('no-credits');
    expect(events).toEqual(['paused:no-credits']);

    const probe = g.enter();
    clock.advance(2_000);
    const entry = await probe;
    expect(entry.probe).toBe(true);
    g.succeeded(entry.probe, entry.pauses);
    expect(g.paused).toBeUndefined();
    expect(events).toEqual(['paused:no-credits', 'resumed:no-credits:2000']);
  });
});
