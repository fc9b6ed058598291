/**
 * The bench's "ideal" beside the window scenario's time (bench/lib/window-ideal.ts): the
 * makespan a rolling window allows, worked out by hand for each case.
 */
import { describe, expect, it } from 'vitest';
import { idealMakespanMs } from '../../bench/lib/window-ideal.js';

const API = { removeBackground: 800, upscale: 1500 };

describe('idealMakespanMs', () => {
  it('no binding quota: rounds of one job per slot, 2.3 s each', () => {
    // 48 jobs on 4 slots: 12 rounds.
    expect(idealMakespanMs({ clicks: 48, rpm: 1_000_000, latencyMs: API, slots: 4 })).toBe(27_600);
  });

  it('60 jobs at 60 a minute on 4 slots: calls 61–120 start as calls 1–60 leave the window', () => {
    // Each slot's 15th call (a remove-background) starts at 7 × 2.3 = 16.1 s; the 120th call
    // (an upscale) starts 60 s after the 60th: 76.1 s, and ends 1.5 s later.
    expect(idealMakespanMs({ clicks: 60, rpm: 60, latencyMs: API, slots: 4 })).toBe(77_600);
  });

  it('a call waits for the one `rpm` calls before it to leave the window', () => {
    // rpm 2, a 10 s window, 1 s calls, one slot: 0 and 1 s go at once; the third waits until
    // the first leaves (10 s), the fourth until the second leaves (11 s): done at 12 s.
    const spec = { clicks: 2, rpm: 2, slots: 1, windowMs: 10_000 };
    const latencyMs = { removeBackground: 1_000, upscale: 1_000 };
    expect(idealMakespanMs({ ...spec, latencyMs })).toBe(12_000);
  });

  it('more slots never take longer, and the window bounds them all', () => {
    const at = (slots: number) => idealMakespanMs({ clicks: 60, rpm: 60, latencyMs: API, slots });
    expect(at(12)).toBeLessThan(at(4));
    // Calls 61–120 cannot start before 60 s; the last is an upscale.
    expect(at(1_000)).toBe(61_500);
  });
});
