/** A request permission: call `done()` when the answer has arrived. */
export interface Permit {
  done(): void;
}

export interface RateLimiterOptions {
  /** Requests allowed in any window. */
  limit: number;
  windowMs: number;
  /**
   * Pacing: at most this fraction of `limit` sent back to back; after that, requests go out
   * one every `windowMs / limit` (a token bucket). Default 1: no pacing, the window alone.
   */
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
  /** Pacing tokens, refilled at `limit` per window up to the burst. */
  private tokens: number;
  private refilledAt: number;

  constructor(private readonly opts: RateLimiterOptions) {
    this.limit = opts.limit;
    this.now = opts.now ?? Date.now;
    this.tokens = this.burst;
    this.refilledAt = this.now();
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
   * limit holds back sends until the window has room under it; 0 stops sending.
   */
  setLimit(limit: number): void {
    this.refill();
    const before = this.burst;
    this.limit = Math.max(0, Math.floor(limit));
    // A raised limit (a first grant, a larger share) comes with its larger burst at once: the
    // window still bounds what is sent, pacing only spreads it.
    this.tokens = Math.min(this.burst, this.tokens + Math.max(0, this.burst - before));
    this.pump();
  }

  /** The most requests sent back to back. */
  private get burst(): number {
    const fraction = Math.min(1, Math.max(0, this.opts.burstFraction ?? 1));
    return this.limit === 0 ? 0 : Math.max(1, Math.ceil(this.limit * fraction));
  }

  private refill(): void {
    const now = this.now();
    const perMs = this.limit / this.opts.windowMs;
    this.tokens = Math.min(this.burst, this.tokens + (now - this.refilledAt) * perMs);
    this.refilledAt = now;
  }

  /** The requests allowed per window now. */
  get currentLimit(): number {
    return this.limit;
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
    this.refill();
    // Paced: a request spreads the window's quota instead of spending it all at once, so a
    // request that arrives later (a new user, a takeover) waits seconds, not a window.
    while (
      this.waiters.length > 0 &&
      this.finished.length + this.inFlight < this.limit &&
      this.tokens >= 1
    ) {
      this.tokens -= 1;
      this.waiters.shift()?.wake();
    }
    if (this.waiters.length === 0 || this.limit === 0) return;
    const wakes: number[] = [];
    // The next token (the window may also need the oldest answer to leave it; in-flight
    // requests wake us by done()).
    if (this.tokens < 1)
      wakes.push(Math.ceil(((1 - this.tokens) * this.opts.windowMs) / this.limit));
    const oldest = this.finished[0];
    if (this.finished.length + this.inFlight >= this.limit && oldest !== undefined) {
      wakes.push(oldest + this.opts.windowMs - now + 1);
    }
    if (wakes.length > 0)
      this.timer = this.setTimer(() => this.pump(), Math.max(1, Math.max(...wakes)));
  }
}
