import { describe, expect, it } from 'vitest';
import {
  RESERVE_CALLS,
  RESERVE_HELD_MS,
  RESERVE_LENT_WITHIN_MS,
  holdsSince,
  maySend,
  nextRoomAt,
  reserveOf,
  type WindowState,
} from '../../src/jobs/call-window.js';

const at = (now: number, more: Partial<WindowState> = {}): WindowState => ({
  used: 0,
  limit: 60,
  share: 60,
  nextLeaveAt: undefined,
  heldSince: undefined,
  now,
  ...more,
});

describe('the window rule and its reserve (call-window.ts)', () => {
  it('keeps one job’s two calls of a share of 10 or more, none under', () => {
    expect(RESERVE_CALLS).toBe(2);
    expect(reserveOf(60)).toBe(2);
    expect(reserveOf(10)).toBe(2);
    expect(reserveOf(9)).toBe(0);
    expect(reserveOf(0)).toBe(0);
  });

  it('an ordinary call goes while the window is short of the reserve', () => {
    expect(maySend(at(0, { used: 57 }), false)).toBe(true);
    expect(maySend(at(0, { used: 58, nextLeaveAt: 60_000 }), false)).toBe(false);
    expect(maySend(at(0, { used: 58, nextLeaveAt: 60_000 }), true)).toBe(true);
    expect(maySend(at(0, { used: 60, nextLeaveAt: 60_000 }), true)).toBe(false);
  });

  it('the reserve is lent once the next room is within 5 s (a manual clock)', () => {
    const window = { used: 58, nextLeaveAt: 60_000, heldSince: 50_000 };
    const lentAt = 60_000 - RESERVE_LENT_WITHIN_MS;
    expect(maySend(at(lentAt - 1, window), false)).toBe(false);
    expect(maySend(at(lentAt, window), false)).toBe(true);
    expect(nextRoomAt(at(50_000, window), false)).toBe(lentAt);
  });

  it('the reserve is kept 5 s once it holds a call back, then lent (a manual clock)', () => {
    const window = { used: 58, nextLeaveAt: 60_000 };
    // An ordinary call meets the reserve at 10 s: it holds from then.
    const since = holdsSince(at(10_000, window), true);
    expect(since).toBe(10_000);
    const held = { ...window, heldSince: since };
    expect(maySend(at(10_000 + RESERVE_HELD_MS - 1, held), false)).toBe(false);
    expect(maySend(at(10_000 + RESERVE_HELD_MS, held), false)).toBe(true);
    expect(nextRoomAt(at(10_000, held), false)).toBe(10_000 + RESERVE_HELD_MS);
    // It keeps its start while the window stays in the reserve; a call that goes first does
    // not start it; once out of the reserve it ends, and the next holding starts afresh.
    expect(holdsSince(at(12_000, held), true)).toBe(10_000);
    expect(holdsSince(at(12_000, window), false)).toBeUndefined();
    expect(holdsSince(at(12_000, { ...held, used: 57 }), true)).toBeUndefined();
  });

  it('all calls in flight and the reserve not holding yet: only an answer makes room', () => {
    expect(maySend(at(0, { used: 58 }), false)).toBe(false);
    expect(nextRoomAt(at(0, { used: 58 }), false)).toBeUndefined();
  });

  it('a full window: everyone waits for the oldest call to leave', () => {
    expect(nextRoomAt(at(0, { used: 60, nextLeaveAt: 42_000 }), false)).toBe(42_000);
    expect(nextRoomAt(at(0, { used: 60, nextLeaveAt: 42_000 }), true)).toBe(42_000);
  });

  it('a cap under the share (the fleet reservation) binds everyone, the reserve stays the share’s', () => {
    expect(maySend(at(0, { used: 12, limit: 12, share: 60 }), true)).toBe(false);
    expect(maySend(at(0, { used: 11, limit: 12, share: 60 }), false)).toBe(true);
  });
});
