/**
 * How a worker spends its share of the key's rolling window (src/clipdrop/rate-limiter.ts
 * applies it): a backlog uses the window as fast as it allows, what fits now goes now and the
 * rest as earlier calls leave the window, except for one reserve.
 *
 * The reserve: the last `reserveOf(share)` calls of this worker's window are kept for calls
 * that go first: a takeover's (its user has waited longest) and a new user's first job (one
 * who has no job running here). Without it, a backlog fills the window in seconds and a new
 * click then waits most of a minute for the oldest call to leave.
 * - Per worker, not per fleet: each worker spends its own share, a click is dealt to one
 *   worker and a dead worker's jobs are dealt among all survivors, so each needs it where
 *   it is; a fleet-wide reserve would cost a ledger write per call.
 * - Two calls: one job's (remove background, then upscale), so one such job runs at once on
 *   a saturated window. None under a share of 10: it would hold back a fifth or more.
 * - Lent, not lost: once the window's next call leaves within `RESERVE_LENT_WITHIN_MS`, the
 *   reserve goes to whoever waits. A job that goes first then waits at most that long for
 *   room, and a backlog loses no room over a long run (each call still leaves the window a
 *   window after its answer, and the one after it goes then).
 */

/** Calls of a worker's window kept for takeovers and new users' first jobs. */
export const RESERVE_CALLS = 2;

/** The reserve goes to any waiting call once the next room in the window is this close. */
export const RESERVE_LENT_WITHIN_MS = 5_000;

/** The reserve for a share (requests per window): two calls, none under a share of 10. */
export function reserveOf(share: number): number {
  return share >= 5 * RESERVE_CALLS ? RESERVE_CALLS : 0;
}

export interface WindowState {
  /** Calls counted in the window now: answered within the window, and in flight. */
  used: number;
  /** The most the window may hold now (the share, or a lower cap under it). */
  limit: number;
  /** This worker's share of the key (requests per window): the reserve's size follows it. */
  share: number;
  /** When the oldest answered call leaves the window; undefined when none is in it. */
  nextLeaveAt: number | undefined;
  now: number;
}

/**
 * Whether a call may be sent now: under the limit, and an ordinary call (`first` false) only
 * outside the reserve or when the reserve is lent.
 */
export function maySend(window: WindowState, first: boolean): boolean {
  if (window.used >= window.limit) return false;
  if (first || window.used < window.share - reserveOf(window.share)) return true;
  return (
    window.nextLeaveAt !== undefined && window.nextLeaveAt - window.now <= RESERVE_LENT_WITHIN_MS
  );
}

/**
 * When to look again while the head of the queue waits: the reserve's lending, or the oldest
 * call's leaving. Undefined: only an answer (a call in flight ending) makes room.
 */
export function nextRoomAt(window: WindowState, first: boolean): number | undefined {
  if (window.nextLeaveAt === undefined) return undefined;
  const full = window.used >= window.limit;
  return full || first ? window.nextLeaveAt : window.nextLeaveAt - RESERVE_LENT_WITHIN_MS;
}
