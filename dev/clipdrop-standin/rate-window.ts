/**
 * Sliding-window request log per key: ClipDrop limits requests per minute per API key,
 * and a client must learn (Retry-After) when the oldest request leaves the window.
 */
export type RateDecision = { ok: true } | { ok: false; retryAfterSeconds: number };

export class RateWindow {
  private readonly hits = new Map<string, number[]>();

  constructor(
    private readonly limit: number,
    private readonly windowMs = 60_000,
  ) {}

  /** Records the request when it fits in the window; otherwise says how long to wait. */
  take(key: string, now = Date.now()): RateDecision {
    const log = (this.hits.get(key) ?? []).filter((t) => t > now - this.windowMs);
    this.hits.set(key, log);
    if (log.length < this.limit) {
      log.push(now);
      return { ok: true };
    }
    const waitMs = (log[0] ?? now) + this.windowMs - now;
    // Whole seconds, rounded up, and never 0: "retry now" would just be refused again.
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) };
  }

  clear(): void {
    this.hits.clear();
  }
}
