/** ClipDrop calls one job makes: remove-background, then upscale. */
export const CALLS_PER_JOB = 2;

/**
 * Clicks a minute that keep the worker within the ClipDrop quota (`CLIPDROP_RPM`, shared by
 * every call of a job), unless the operator asks for another pace.
 */
export function clicksPerMinute(rpm: number, override?: number): number {
  return override ?? Math.max(1, Math.floor(rpm / CALLS_PER_JOB));
}

/**
 * Spaces events `intervalMs` apart: the first passes at once, each next one when its turn
 * comes. Resolves false when `signal` aborts while waiting.
 */
export function createPacer(intervalMs: number, signal: AbortSignal, now: () => number = Date.now) {
  let nextAt = 0;
  return async function turn(): Promise<boolean> {
    if (signal.aborted) return false;
    const wait = nextAt - now();
    if (wait > 0) {
      const passed = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          signal.removeEventListener('abort', onAbort);
          resolve(true);
        }, wait);
        const onAbort = () => {
          clearTimeout(timer);
          resolve(false);
        };
        signal.addEventListener('abort', onAbort, { once: true });
      });
      if (!passed) return false;
    }
    nextAt = Math.max(now(), nextAt) + intervalMs;
    return true;
  };
}
