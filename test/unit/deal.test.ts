import { describe, expect, it } from 'vitest';
import {
  dealOrder,
  dealtTo,
  HANDOFF_AFTER_MS,
  handoffAfterMs,
  weightOf,
} from '../../src/jobs/deal.js';

const ids = Array.from({ length: 6_000 }, (_, i) => `character-${i}`);
const workers = (n: number) => Array.from({ length: n }, (_, i) => `worker-${i}`);

function counts(live: readonly string[]): Map<string, number> {
  const n = new Map<string, number>();
  for (const id of ids) {
    const w = dealtTo(id, live);
    n.set(w, (n.get(w) ?? 0) + 1);
  }
  return n;
}

describe('dealing clicks by rendezvous hashing', () => {
  it.each([3, 6])('spreads clicks evenly over %i workers (each within 10 % of its share)', (n) => {
    const live = workers(n);
    const dealt = counts(live);
    expect([...dealt.keys()].sort()).toEqual([...live].sort());
    for (const count of dealt.values()) {
      expect(Math.abs(count - ids.length / n)).toBeLessThan((0.1 * ids.length) / n);
    }
  });

  it('is the same on every worker: whatever the order of the live set, and duplicates', () => {
    const live = workers(5);
    const shuffled = [live[3]!, live[0]!, live[4]!, live[1]!, live[2]!, live[0]!];
    for (const id of ids.slice(0, 500)) {
      expect(dealtTo(id, shuffled)).toBe(dealtTo(id, live));
      expect(dealOrder(id, shuffled)).toEqual(dealOrder(id, live));
    }
  });

  it('orders the live workers by weight, the dealt worker first', () => {
    const live = workers(4);
    for (const id of ids.slice(0, 200)) {
      const order = dealOrder(id, live);
      expect([...order].sort()).toEqual(live);
      const weights = order.map((w) => weightOf(w, id));
      for (let i = 1; i < weights.length; i++) expect(weights[i - 1]! > weights[i]!).toBe(true);
      expect(order[0]).toBe(dealtTo(id, live));
    }
  });

  it('when a worker leaves, only its clicks move, spread over the rest', () => {
    const live = workers(3);
    const leaver = live[1]!;
    const after = live.filter((w) => w !== leaver);
    const moved = new Map<string, number>();
    for (const id of ids) {
      const before = dealtTo(id, live);
      const now = dealtTo(id, after);
      if (before !== leaver) expect(now).toBe(before);
      else moved.set(now, (moved.get(now) ?? 0) + 1);
    }
    // Its third goes to the two others about evenly: no single heir.
    const share = ids.length / 3 / 2;
    for (const w of after) expect(Math.abs((moved.get(w) ?? 0) - share)).toBeLessThan(0.15 * share);
  });

  it('when a worker joins, only the clicks it wins move (about its share), all to it', () => {
    const live = workers(3);
    const joined = [...live, 'worker-new'];
    let moved = 0;
    for (const id of ids) {
      const before = dealtTo(id, live);
      const now = dealtTo(id, joined);
      if (now !== before) {
        expect(now).toBe('worker-new');
        moved++;
      }
    }
    expect(Math.abs(moved - ids.length / 4)).toBeLessThan(0.1 * (ids.length / 4));
  });

  it('a worker alone is dealt everything', () => {
    for (const id of ids.slice(0, 100)) expect(dealtTo(id, ['only'])).toBe('only');
    expect(() => dealtTo('x', [])).toThrow();
  });

  it('hands a waiting click to the runner-up after HANDOFF_AFTER_MS, to the others after twice that', () => {
    expect(HANDOFF_AFTER_MS).toBe(2_000);
    expect(handoffAfterMs(0)).toBe(0);
    expect(handoffAfterMs(1)).toBe(HANDOFF_AFTER_MS);
    expect(handoffAfterMs(2)).toBe(2 * HANDOFF_AFTER_MS);
    expect(handoffAfterMs(5)).toBe(2 * HANDOFF_AFTER_MS);
  });
});
