export interface BackoffPolicy {
  /** Delay before the first retry, before jitter. */
  baseMs: number;
  /** Upper bound of any computed delay (a server's Retry-After may ask for more, up to maxRetryAfterMs). */
  maxMs: number;
  /** Longest Retry-After we honour; a server asking for more gets a failed try instead of a stuck job. */
  maxRetryAfterMs: number;
}

/**
 * Delay before retry number `retry` (1-based): exponential with "equal jitter" (half fixed,
 * half random) so a burst of failures does not retry in lockstep, yet never retries at once.
 * A server's Retry-After wins when it asks for longer.
 */
export function backoffDelay(
  retry: number,
  policy: BackoffPolicy,
  retryAfterMs?: number,
  random: () => number = Math.random,
): number {
  const exp = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, retry - 1));
  const jittered = exp / 2 + (random() * exp) / 2;
  if (retryAfterMs !== undefined && retryAfterMs > jittered) {
    return Math.min(retryAfterMs, policy.maxRetryAfterMs);
  }
  return Math.round(jittered);
}
