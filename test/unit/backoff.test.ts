import { describe, expect, it } from 'vitest';
import { backoffDelay, type BackoffPolicy } from '../../src/jobs/backoff.js';

const policy: BackoffPolicy = { baseMs: 100, maxMs: 10_000, maxRetryAfterMs: 60_000 };

const fixed = (value: number) => () => value;

describe('backoffDelay', () => {
  it('grows exponentially: with random 0 it is half the exponential delay', () => {
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay(n, policy, undefined, fixed(0)))).toEqual([
      50, 100, 200, 400, 800,
    ]);
  });

  it('grows exponentially: with random near 1 it is the full exponential delay', () => {
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay(n, policy, undefined, fixed(0.9999)))).toEqual([
      100, 200, 400, 800, 1600,
    ]);
  });

  it('stays within [exp/2, exp] for any random value', () => {
    for (let retry = 1; retry <= 20; retry++) {
      const exp = Math.min(policy.maxMs, policy.baseMs * 2 ** (retry - 1));
      for (const r of [0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.9999]) {
        const delay = backoffDelay(retry, policy, undefined, fixed(r));
        expect(delay).toBeGreaterThanOrEqual(Math.floor(exp / 2));
        expect(delay).toBeLessThanOrEqual(exp);
      }
    }
  });

  it('is capped by maxMs however many retries', () => {
    expect(backoffDelay(30, policy, undefined, fixed(0.9999))).toBe(10_000);
    expect(backoffDelay(30, policy, undefined, fixed(0))).toBe(5_000);
    expect(backoffDelay(1000, policy, undefined, fixed(0.5))).toBe(7_500);
  });

  it('never retries at once, even for retry 0', () => {
    expect(backoffDelay(0, policy, undefined, fixed(0))).toBe(50);
    expect(backoffDelay(1, { ...policy, baseMs: 1 }, undefined, fixed(0))).toBeGreaterThan(0);
  });

  it('is deterministic with an injected random', () => {
    const sequence = [0.1, 0.7, 0.3];
    const run = () => {
      let i = 0;
      const random = () => sequence[i++ % sequence.length] ?? 0;
      return [1, 2, 3].map((n) => backoffDelay(n, policy, undefined, random));
    };
    expect(run()).toEqual([55, 170, 260]);
    expect(run()).toEqual(run());
  });

  it('uses the random source once per call', () => {
    let calls = 0;
    backoffDelay(3, policy, undefined, () => {
      calls += 1;
      return 0.5;
    });
    expect(calls).toBe(1);
  });

  it('honours a Retry-After longer than the backoff', () => {
    expect(backoffDelay(1, policy, 5_000, fixed(0.5))).toBe(5_000);
  });

  it('ignores a Retry-After shorter than the backoff', () => {
    // retry 3: exp 400, jittered 300
    expect(backoffDelay(3, policy, 10, fixed(0.5))).toBe(300);
    expect(backoffDelay(3, policy, 0, fixed(0.5))).toBe(300);
  });

  it('caps a Retry-After at maxRetryAfterMs', () => {
    expect(backoffDelay(1, policy, 3_600_000, fixed(0.5))).toBe(60_000);
  });
});
