/** A request permission: call `done()` when the answer has arrived. */
export interface Permit {
  done(): void;
}

export interface RateLimiterOptions {
  /** Requests allowed in any window. */
  limit: number;
  windowMs: number;
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
  private readonly waiters: Array<{ wake: () => void }> = [];
  private timer: { cancel(): void } | undefined;
  private readonly now: () => number;
  private readonly setTimer: NonNullable<RateLimiterOptions['setTimer']>;
  private limit: number;

  constructor(private readonly opts: RateLimiterOptions) {
    this.limit = opts.limit;
    this.now = opts.now ?? Date.now;
    this.setTimer =
      opts.setTimer ??
      ((fn, ms) => {
        const t = setTimeout(fn, ms);
        return { cancel: () => clearTimeout(t) };
      });
  }

  /** Waits (first come, first served) until a request may be sent. */
  acquire(signal?: AbortSignal): Promise<Permit> {
    return new Promise<Permit>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason as Error);
      const waiter = {
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
      this.waiters.push(waiter);
      this.pump();
    });
  }

  /**
   * Changes the requests allowed per window (this worker's share of the fleet's quota). A lower
   * limit holds back sends until the window has room under it; 0 stops sending.
   */
  setLimit(limit: number): void {
    this.limit = Math.max(0, Math.floor(limit));
    this.pump();
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
    while (this.waiters.length > 0 && this.finished.length + this.inFlight < this.limit) {
      this.waiters.shift()?.wake();
    }
    const oldest = this.finished[0];
    if (this.waiters.length > 0 && oldest !== undefined) {
      // Wake when the oldest answered request leaves the window (in-flight ones wake us by done()).
      this.timer = this.setTimer(() => this.pump(), oldest + this.opts.windowMs - now + 1);
    }
  }
}
