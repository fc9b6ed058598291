import { afterEach, describe, expect, it, vi } from 'vitest';
import { AccountGate, type PauseReason } from '../../src/clipdrop/account-gate.js';

function gate(opts: { probeMs?: number; outageThreshold?: number } = {}) {
  const events: string[] = [];
  const g = new AccountGate({
    probeMs: opts.probeMs ?? 1_000,
    outageThreshold: opts.outageThreshold ?? 3,
    events: {
      paused: (reason: PauseReason) => events.push(`paused:${reason}`),
      resumed: (reason: PauseReason) => events.push(`resumed:${reason}`),
    },
  });
  return { g, events };
}

const settled = async <T>(p: Promise<T>) => {
  let done = false;
  void p.then(() => (done = true));
  await vi.advanceTimersByTimeAsync(0);
  return done;
};

describe('AccountGate', () => {
  afterEach(() => vi.useRealTimers());

  it('lets calls straight through while open', async () => {
    const { g } = gate();
    await expect(g.enter()).resolves.toEqual({ probe: false });
  });

  it('pauses on 402, holds callers, lets one probe through per interval, resumes on success', async () => {
    vi.useFakeTimers();
    const { g, events } = gate({ probeMs: 1_000 });
    g.accountRefused('no-credits', '402', false);
    expect(g.paused).toBe('no-credits');
    const a = g.enter();
    const b = g.enter();
    expect(await settled(a)).toBe(false);
    await vi.advanceTimersByTimeAsync(1_000);
    await expect(a).resolves.toEqual({ probe: true });
    expect(await settled(b)).toBe(false);
    // The probe is refused again: still paused, next probe after another interval.
    g.accountRefused('no-credits', '402', true);
    await vi.advanceTimersByTimeAsync(999);
    expect(await settled(b)).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await expect(b).resolves.toEqual({ probe: true });
    const c = g.enter();
    g.succeeded(true);
    await expect(c).resolves.toEqual({ probe: false });
    expect(g.paused).toBeUndefined();
    // One pause, one resume, however many refusals in between.
    expect(events).toEqual(['paused:no-credits', 'resumed:no-credits']);
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
    vi.useFakeTimers();
    const { g } = gate({ probeMs: 500 });
    g.accountRefused('unauthorized', '401', false);
    const a = g.enter();
    const b = g.enter();
    await vi.advanceTimersByTimeAsync(500);
    await expect(a).resolves.toEqual({ probe: true });
    g.abandoned(true);
    await expect(b).resolves.toEqual({ probe: true });
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
