/**
 * How a worker spends its share of the key's rolling window (src/clipdrop/rate-limiter.ts
 * applies it): a backlog uses the window as fast as it allows, what fits now goes now and the
 * rest as earlier calls leave the window, except for one reserve.
 *
 * The reserve: the last `reserveOf(share)` calls of this worker's window are kept for calls
 * that go first: a takeover's (its user has waited longest) and a new user's first job (one
 * who has no job running here). A backlog fills the window in seconds, and without it a
 * click that comes next waits most of a minute for the oldest call to leave.
 * - Per worker, not per fleet: each worker spends its own share, a click is dealt to one
 *   worker and a dead worker's jobs are dealt among all survivors, so each needs it where
 *   it is; a fleet-wide reserve would cost a ledger write per call.
 * - Two calls: one job's (remove background, then upscale), so one such job starts at once
 *   on a full window. None under a share of 10: two calls would be more than a fifth of it.
 * - Kept briefly: for `RESERVE_HELD_MS` once it holds a call back, and again once the next
 *   room is within `RESERVE_LENT_WITHIN_MS`; otherwise lent to whoever waits. A reserve kept
 *   until the window has room would cost a backlog a window: its two calls would leave the
 *   window only a minute after that room, so a backlog of exactly two windows' calls would
 *   wait a third window for its last two (60 clicks at 60 a minute: 120 s instead of 80).
 *   Kept 5 s, it costs a backlog at most 5 s, and a click within 5 s of the window filling
 *   (a second user's, just after a first user's burst) still starts at once. Once it is lent,
 *   a call that goes first waits for the next room, ahead of every other call.
 */

/**
 * How much longer than ClipDrop's minute a call stays in our window. The window counts a call
 * from its answer, never earlier than the server counts it, but on our clock: a clock that runs
 * slower than the server's (NTP slewing, a VM's clock source: up to about 500 ppm, 30 ms a
 * minute) or steps would let the call that follows a full window's turn reach the server a
 * few milliseconds too early when the answer came at once (a 429 from our own traffic, seen on
 * the stand-in with no latency). A quarter second is far beyond either and costs a backlog
 * 0.4 % of the key.
 */
export const WINDOW_MARGIN_MS = 250;

/** Calls of a worker's window kept for takeovers and new users' first jobs. */
export const RESERVE_CALLS = 2;

/** How long the reserve is kept once it holds a call back. */
export const RESERVE_HELD_MS = 5_000;

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
  /** Since when the reserve has held an ordinary call back (`holdsSince`); undefined: not. */
  heldSince: number | undefined;
  now: number;
}

/** Whether the window is into its reserve (an ordinary call would take a reserved call). */
export function inReserve(window: WindowState): boolean {
  return window.used >= window.share - reserveOf(window.share);
}

/**
 * When the reserve starts or stops holding calls back: it starts when an ordinary call meets
 * it, and ends once the window is out of it again (the next holding is kept afresh).
 */
export function holdsSince(window: WindowState, ordinaryWaiting: boolean): number | undefined {
  if (!inReserve(window)) return undefined;
  return window.heldSince ?? (ordinaryWaiting ? window.now : undefined);
}

/**
 * Whether a call may be sent now: under the limit, and an ordinary call (`first` false) only
 * outside the reserve or when the reserve is lent.
 */
export function maySend(window: WindowState, first: boolean): boolean {
  if (window.used >= window.limit) return false;
  if (first || !inReserve(window)) return true;
  return (lentAt(window) ?? Number.POSITIVE_INFINITY) <= window.now;
}

/**
 * When to look again while the head of the queue waits: the reserve's lending, or the oldest
 * call's leaving. Undefined: only an answer (a call in flight ending) makes room.
 */
export function nextRoomAt(window: WindowState, first: boolean): number | undefined {
  const full = window.used >= window.limit;
  return full || first ? window.nextLeaveAt : lentAt(window);
}

/** When the reserve is lent: held long enough, or the next room is close. */
function lentAt(window: WindowState): number | undefined {
  const times = [
    window.heldSince === undefined ? undefined : window.heldSince + RESERVE_HELD_MS,
    window.nextLeaveAt === undefined ? undefined : window.nextLeaveAt - RESERVE_LENT_WITHIN_MS,
  ].filter((t): t is number => t !== undefined);
  return times.length === 0 ? undefined : Math.min(...times);
}

/**
 * Claims follow the window: a job is claimed only once its two calls fit in what the window
 * has now or frees within `CLAIM_AHEAD_MS`, beside the calls promised to jobs claimed before
 * (src/clipdrop/rate-limiter.ts `admitJob`). A worker whose share is spent leaves its clicks
 * unclaimed, and a worker with room takes them after the handoff delay (src/jobs/deal.ts),
 * instead of holding them claimed for a minute. Takeovers and a new user's first job are
 * claimed at once: their calls go first.
 */
export const JOB_CALLS = 2;

/** How far ahead of the window's room a job is claimed (its claim, download and checks). */
export const CLAIM_AHEAD_MS = 2_000;

export interface ClaimState {
  /** Calls in the window now (in flight included), and those leaving it within CLAIM_AHEAD_MS. */
  used: number;
  leavingSoon: number;
  /** Calls promised to jobs admitted and not sent yet. */
  committed: number;
  limit: number;
}

/** Whether a job may be claimed now (one at a time when the limit is under a job's calls). */
export function admitsJob(state: ClaimState): boolean {
  const calls = Math.min(JOB_CALLS, state.limit);
  return state.limit > 0 && state.used - state.leavingSoon + state.committed + calls <= state.limit;
}

/** Admits jobs to their claim (the rate limiter). */
export interface CallGate {
  admitJob(signal: AbortSignal): Promise<CallTicket>;
}

/** The calls promised to an admitted job: counted until sent, or released when the job ends. */
export interface CallTicket {
  release(): void;
}

/**
 * How long room is kept for the calls of jobs this worker takes over from a dead one
 * (`holdForTakeover`): from the moment it finds them until their calls are sent. Without it,
 * the room the dead worker's share leaves goes to the backlog's jobs, admitted the moment the
 * ledger raises this worker's share, and the taken-over jobs, claimed a query later, wait for
 * the next room (issue 23). Long enough for a claim, a download and a first call's answer;
 * short enough that a job finished by the dead worker itself (nothing to call) costs little.
 */
export const TAKEOVER_HOLD_MS = 15_000;

/** The rate limiter as the fleet's quota share drives it (src/pipeline/fleet-loop.ts). */
export interface CallLimiter {
  /** Requests counted in the window now, in flight included. */
  readonly used: number;
  /** Calls sent since start (the send allowance counts them). */
  readonly sends: number;
  /**
   * Requests allowed in any window (0 stops sending), and the share the reserve is sized on (a
   * temporary cap under the share must not shrink it).
   */
  setLimit(limit: number, share: number): void;
  /** Sends stop at `untilSends`; `onSpent`: a call the window allows waits for it alone. */
  setAllowance(untilSends: number, onSpent?: () => void): void;
  /** How long until each answered call leaves the window, in ms. */
  leavingIn(): number[];
  /** Room kept for `calls` of taken-over jobs, until they use it or `ms` passes. */
  holdForTakeover(calls: number, ms: number): void;
}
