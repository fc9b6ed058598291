import { monotonic } from '../jobs/clock.js';

/** A request permission: call `done()` when the answer has arrived. */
export interface Permit {
  done(): void;
}

export interface RateLimiterOptions {
  /** Requests allowed in any window. */
  limit: number;
  windowMs: number;
  /**
   * Pacing: the paid calls expected soon besides those waiting here (e.g. two for each job
   * the worker has queued). While they all fit in the window, requests go out at once. When
   * they do not (a backlog), the window is used at once only up to `burstFraction` of the
   * limit, and the rest is spread (rate-limiter.ts `nextPacedAt`); urgent requests skip the
   * spacing (not the window). Absent: no pacing, the window alone.
   */
  backlog?: () => number;
  /** With `backlog`: the part of the limit sent at once before pacing starts. Default 0.5. */
  burstFraction?: number;
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
 */
export class SlidingWindowLimiter {
  private readonly finished: number[] = [];
  private inFlight = 0;
  private pausedUntil = 0;
  private readonly waiters: Array<{ wake: () => void; urgent: boolean }> = [];
  private timer: { cancel(): void } | undefined;
  private readonly now: () => number;
  private readonly setTimer: NonNullable<RateLimiterOptions['setTimer']>;
  private limit: number;
  /** The rate pacing spreads (the worker's share), which a lower `limit` only caps. */
  private paceLimit: number;
  /** When the last request was let through (pacing). */
  private lastSentAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly opts: RateLimiterOptions) {
    this.limit = opts.limit;
    this.paceLimit = opts.limit;
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
   * Waits until a request may be sent: first come, first served, except that `urgent` waiters
   * (jobs taken over from a dead worker, whose users have waited longest) go before all others.
   */
  acquire(signal?: AbortSignal, opts: { urgent?: boolean } = {}): Promise<Permit> {
    return new Promise<Permit>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason as Error);
      const urgent = opts.urgent === true;
      const waiter = {
        urgent,
        wake: () => {
          signal?.removeEventListener('abort', onAbort);
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
      if (urgent) {
        const firstNormal = this.waiters.findIndex((w) => !w.urgent);
        this.waiters.splice(firstNormal < 0 ? this.waiters.length : firstNormal, 0, waiter);
      } else {
        this.waiters.push(waiter);
      }
      this.pump();
    });
  }

  /**
   * Changes the requests allowed per window (this worker's share of the fleet's quota). A lower
   * limit holds back sends until the window has room under it; 0 stops sending. `paceLimit`
   * (default `limit`) is the rate pacing spreads: a temporary cap under the share (the
   * fleet's reservation) must not slow the pace to its own rate.
   */
  setLimit(limit: number, paceLimit: number = limit): void {
    this.limit = Math.max(0, Math.floor(limit));
    this.paceLimit = Math.max(this.limit, Math.floor(paceLimit));
    this.pump();
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

  /** Lets waiters through while there is room, else sleeps until the next slot frees. */
  private pump(): void {
    this.timer?.cancel();
    this.timer = undefined;
    const now = this.now();
    if (now < this.pausedUntil) {
      if (this.waiters.length > 0)
        this.timer = this.setTimer(() => this.pump(), this.pausedUntil - now);
      return;
    }
    this.prune();
    // Paced when what is expected does not fit in the window: past the burst, a backlog flows
    // evenly instead of spending the window's quota at once and then sending nothing for most
    // of a window, so a request that arrives later (a new user's, a takeover's) waits seconds,
    // not a window. What fits goes at once. The window still bounds what is sent.
    const demand = Math.max(this.waiters.length, this.opts.backlog?.() ?? 0);
    const paced =
      this.opts.backlog !== undefined &&
      this.finished.length + this.inFlight + demand > this.paceLimit;
    const burst = Math.ceil(this.paceLimit * (this.opts.burstFraction ?? 0.5));
    // While pacing, the last tenth of the window (at most 2 calls) is kept for urgent calls: a
    // takeover on a saturated key then starts at once instead of waiting for the window.
    const reserve = paced ? Math.min(2, Math.floor(this.paceLimit / 10)) : 0;
    for (let head = this.waiters[0]; head !== undefined; head = this.waiters[0]) {
      const used = this.finished.length + this.inFlight;
      if (used >= this.limit) break;
      if (paced && !head.urgent) {
        if (used >= this.paceLimit - reserve) break;
        if (used >= burst && now < this.nextPacedAt(used, reserve)) break;
      }
      this.lastSentAt = now;
      this.waiters.shift()?.wake();
    }
    if (this.waiters.length === 0 || this.limit === 0) return;
    const used = this.finished.length + this.inFlight;
    const oldest = this.finished[0];
    const full = used >= this.limit || (paced && used >= this.paceLimit - reserve);
    let wakeAt: number | undefined;
    if (full) {
      // Full: wait for the oldest answer to leave (in-flight requests wake us by done()).
      if (oldest !== undefined) wakeAt = oldest + this.opts.windowMs + 1;
    } else if (paced && used >= burst) {
      wakeAt = this.nextPacedAt(used, reserve);
    }
    if (wakeAt !== undefined) {
      this.timer = this.setTimer(() => this.pump(), Math.max(1, Math.ceil(wakeAt - now)));
    }
  }

  /**
   * When the next paced request may go: the share's even spacing after the last one, and
   * while a burst still fills the window, a gap wide enough that the room left lasts until the
   * burst leaves it (otherwise the window fills and blocks everything for the rest of the
   * burst's minute): `now - last >= (oldest leaves - now) / room`.
   */
  private nextPacedAt(used: number, reserve: number): number {
    if (this.paceLimit <= 0) return Number.POSITIVE_INFINITY;
    const even = this.lastSentAt + this.opts.windowMs / this.paceLimit;
    const room = this.paceLimit - reserve - used;
    const oldest = this.finished[0];
    if (oldest === undefined || room <= 0) return even;
    const leaves = oldest + this.opts.windowMs;
    return Math.max(even, (room * this.lastSentAt + leaves) / (room + 1));
  }
}
