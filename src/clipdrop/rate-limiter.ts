import {
  admitsJob,
  CLAIM_AHEAD_MS,
  holdsSince,
  JOB_CALLS,
  maySend,
  nextRoomAt,
  type CallGate,
  type CallTicket,
  type WindowState,
} from '../jobs/call-window.js';
import type { CallPriority } from '../jobs/ports.js';
import { monotonic } from '../jobs/clock.js';

/** A request permission: call `done()` when the answer has arrived. */
export interface Permit {
  done(): void;
}

export interface RateLimiterOptions {
  /** Requests allowed in any window (this worker's share of the key). */
  limit: number;
  windowMs: number;
  /**
   * Requests in flight at once (WORKER_CONCURRENCY): the paid calls, not the jobs, are what the
   * slots bound, so a job's own work before and after its calls never keeps the API waiting.
   * Default: no bound.
   */
  maxInFlight?: number;
  now?: () => number;
  /** Timer injection for tests. */
  setTimer?: (fn: () => void, ms: number) => { cancel(): void };
}

/**
 * A sliding-window limiter for one API key, shared by every stage of the process.
 *
 * The server counts a request at some moment between our send and its answer, which we
 * cannot see; so a request occupies its slot from send until `done()`, and then counts as
 * made at the moment of the answer. That is never earlier than the server's count, so the
 * window here always contains at least what the server's does: no 429 from our own traffic,
 * whatever the latency, at the price of a window's worth of latency in quota.
 *
 * What fits in the window goes at once, and the rest as earlier calls leave it, except for
 * a small reserve kept for calls that go first (src/jobs/call-window.ts).
 */
export class SlidingWindowLimiter implements CallGate {
  private readonly finished: number[] = [];
  private inFlight = 0;
  private pausedUntil = 0;
  private readonly waiters: Array<{ wake: () => void; rank: number }> = [];
  private timer: { cancel(): void } | undefined;
  private readonly now: () => number;
  private readonly setTimer: NonNullable<RateLimiterOptions['setTimer']>;
  private readonly maxInFlight: number;
  private limit: number;
  /** The worker's share, which a lower `limit` only caps: the reserve's size follows it. */
  private share: number;
  /** Since when the reserve holds ordinary calls back (src/jobs/call-window.ts). */
  private heldSince: number | undefined;
  /** Jobs waiting for their claim (`admitJob`), first come, first served. */
  private readonly admissions: Array<() => void> = [];
  /** Calls promised to admitted jobs and not sent yet, by ticket. */
  private readonly promised = new WeakMap<CallTicket, { left: number }>();
  private committed = 0;
  /** Calls sent since start; sends stop at `allowance` (the heartbeat's promise). */
  private sent = 0;
  private allowance = Number.POSITIVE_INFINITY;
  private onSpent: (() => void) | undefined;
  /** A call waits for the allowance alone (told once per wait). */
  private spent = false;
  /** Room kept for taken-over jobs' calls, each part until sent or until its timer ends. */
  private readonly holds: Array<{ left: number; timer: { cancel(): void } }> = [];

  constructor(private readonly opts: RateLimiterOptions) {
    this.limit = opts.limit;
    this.share = opts.limit;
    this.maxInFlight = Math.max(1, opts.maxInFlight ?? Number.POSITIVE_INFINITY);
    // The window is a duration: measured on a clock that NTP steps do not move.
    this.now = opts.now ?? monotonic;
    this.setTimer =
      opts.setTimer ??
      ((fn, ms) => {
        const t = setTimeout(fn, ms);
        return { cancel: () => clearTimeout(t) };
      });
  }

  /**
   * Waits until a request may be sent: first come, first served, except that calls with a
   * `priority` go ahead (a takeover's, whose users have waited longest, before a new user's
   * first job), in their own arrival order, and may use the reserve.
   */
  acquire(
    signal?: AbortSignal,
    opts: { priority?: CallPriority; ticket?: CallTicket } = {},
  ): Promise<Permit> {
    return new Promise<Permit>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason as Error);
      const rank = RANK[opts.priority ?? 'none'];
      const waiter = {
        rank,
        wake: () => {
          signal?.removeEventListener('abort', onAbort);
          const promise = opts.ticket === undefined ? undefined : this.promised.get(opts.ticket);
          if (promise !== undefined && promise.left > 0) {
            promise.left -= 1;
            this.committed -= 1;
          }
          const hold = rank === RANK.takeover ? this.holds.find((h) => h.left > 0) : undefined;
          if (hold !== undefined) {
            hold.left -= 1;
            this.committed -= 1;
          }
          resolve(this.take());
        },
      };
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal?.reason as Error);
        this.pump();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const lower = this.waiters.findIndex((w) => w.rank < rank);
      this.waiters.splice(lower < 0 ? this.waiters.length : lower, 0, waiter);
      this.pump();
    });
  }

  /**
   * Waits until a job may be claimed: its calls fit in the window now or soon, beside those
   * promised to jobs admitted before (src/jobs/call-window.ts `admitsJob`). The ticket counts
   * its calls until they are sent (pass it with each call) or it is released (the job ended).
   */
  admitJob(signal: AbortSignal): Promise<CallTicket> {
    return new Promise<CallTicket>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason as Error);
      const admit = () => {
        signal.removeEventListener('abort', onAbort);
        const promise = { left: JOB_CALLS };
        this.committed += JOB_CALLS;
        const ticket: CallTicket = {
          release: () => {
            this.committed -= promise.left;
            promise.left = 0;
            this.pump();
          },
        };
        this.promised.set(ticket, promise);
        resolve(ticket);
      };
      const onAbort = () => {
        const i = this.admissions.indexOf(admit);
        if (i >= 0) this.admissions.splice(i, 1);
        reject(signal.reason as Error);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.admissions.push(admit);
      this.pump();
    });
  }

  /**
   * Changes the requests allowed per window (this worker's share of the fleet's quota). A lower
   * limit holds back sends until the window has room under it; 0 stops sending. `share`
   * (default `limit`) sizes the reserve: a temporary cap under the share (the fleet's
   * reservation) must not shrink it.
   */
  setLimit(limit: number, share: number = limit): void {
    this.limit = Math.max(0, Math.floor(limit));
    this.share = Math.max(this.limit, Math.floor(share));
    this.pump();
  }

  /**
   * Sends stop once `sends` reaches `untilSends` (the heartbeat's promise: src/jobs/quota-promise.ts);
   * `onSpent` is told when a call that the window allows waits for it alone.
   */
  setAllowance(untilSends: number, onSpent?: () => void): void {
    this.allowance = untilSends;
    this.onSpent = onSpent;
    this.spent = false;
    this.pump();
  }

  /**
   * Keeps room for `calls` of jobs taken over from a dead worker (counted as promised, so no
   * new job is admitted into it) until takeover calls use it, or for `ms` at most.
   */
  holdForTakeover(calls: number, ms: number): void {
    if (calls <= 0) return;
    const hold = {
      left: calls,
      timer: this.setTimer(() => {
        this.committed -= hold.left;
        hold.left = 0;
        this.holds.splice(this.holds.indexOf(hold), 1);
        this.pump();
      }, ms),
    };
    this.committed += calls;
    this.holds.push(hold);
  }

  /** Calls sent since start. */
  get sends(): number {
    return this.sent;
  }

  /** How long until each answered call leaves the window, in ms (calls in flight: not yet known). */
  leavingIn(): number[] {
    this.prune();
    const now = this.now();
    return this.finished.map((t) => t + this.opts.windowMs - now);
  }

  /** A 429 still came (another client on the key): nobody sends until `ms` from now. */
  pause(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, this.now() + ms);
    this.pump();
  }

  /** Requests counted in the window now, in flight included. */
  get used(): number {
    this.prune();
    return this.finished.length + this.inFlight;
  }

  private take(): Permit {
    this.inFlight += 1;
    this.sent += 1;
    let released = false;
    return {
      done: () => {
        if (released) return;
        released = true;
        this.inFlight -= 1;
        this.finished.push(this.now());
        this.pump();
      },
    };
  }

  private prune(): void {
    const horizon = this.now() - this.opts.windowMs;
    while (this.finished.length > 0 && (this.finished[0] ?? 0) <= horizon) this.finished.shift();
  }

  /** Lets waiters and jobs through while there is room, else sleeps until the next room. */
  private pump(): void {
    this.timer?.cancel();
    this.timer = undefined;
    const now = this.now();
    this.prune();
    const wakes: Array<number | undefined> = [];
    if (now < this.pausedUntil) {
      if (this.waiters.length > 0) wakes.push(this.pausedUntil);
    } else {
      wakes.push(this.sendCalls(now));
    }
    wakes.push(this.admitJobs(now));
    const at = Math.min(...wakes.filter((t): t is number => t !== undefined));
    if (Number.isFinite(at)) {
      this.timer = this.setTimer(() => this.pump(), Math.max(1, Math.ceil(at - now) + 1));
    }
  }

  /** Wakes calls while the window allows; when to look again, if a timer is needed. */
  private sendCalls(now: number): number | undefined {
    for (let head = this.waiters[0]; head !== undefined; head = this.waiters[0]) {
      // A call in flight ending wakes us (done()).
      if (this.inFlight >= this.maxInFlight) return undefined;
      const first = head.rank > 0;
      const seen = this.window(now);
      this.heldSince = holdsSince(seen, !first);
      const window = { ...seen, heldSince: this.heldSince };
      if (!maySend(window, first)) return this.limit > 0 ? nextRoomAt(window, first) : undefined;
      if (this.sent >= this.allowance) {
        // A beat raises it (setAllowance): no timer.
        if (!this.spent) {
          this.spent = true;
          this.onSpent?.();
        }
        return undefined;
      }
      this.spent = false;
      this.waiters.shift()?.wake();
    }
    return undefined;
  }

  /** Admits jobs while their calls fit soon; when the next call enters the look-ahead. */
  private admitJobs(now: number): number | undefined {
    const soon = now + CLAIM_AHEAD_MS;
    const leaving = (i: number) => (this.finished[i] ?? Infinity) + this.opts.windowMs <= soon;
    while (this.admissions.length > 0) {
      let leavingSoon = 0;
      while (leaving(leavingSoon)) leavingSoon += 1;
      const state = {
        used: this.finished.length + this.inFlight,
        leavingSoon,
        committed: this.committed,
        limit: this.limit,
      };
      if (!admitsJob(state)) {
        const next = this.finished[leavingSoon];
        return next === undefined ? undefined : next + this.opts.windowMs - CLAIM_AHEAD_MS;
      }
      this.admissions.shift()?.();
    }
    return undefined;
  }

  private window(now: number): WindowState {
    const oldest = this.finished[0];
    return {
      used: this.finished.length + this.inFlight,
      limit: this.limit,
      share: this.share,
      nextLeaveAt: oldest === undefined ? undefined : oldest + this.opts.windowMs,
      heldSince: this.heldSince,
      now,
    };
  }
}

/** Queue order: higher first. */
const RANK: Record<CallPriority | 'none', number> = { takeover: 2, 'new-user': 1, none: 0 };
