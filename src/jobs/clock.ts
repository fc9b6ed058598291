import { uptime } from 'node:os';

/**
 * The two clocks a worker trusts (docs/fleet.md, "Clocks"):
 *
 * - **Firestore's**, for every time another worker compares with: a read's read time, a write's
 *   commit time, a document's update time. Workers' own clocks may be off by minutes or step
 *   (a VM without NTP, a container after a host suspend), so no decision compares two
 *   workers' `Date.now()`.
 * - **Monotonic**, for durations inside one process (the fence, the rate limiter's window,
 *   timers): `performance.now()`, which clock steps do not move, plus any time the machine
 *   slept.
 *
 * Between two answers from Firestore, a worker estimates Firestore's time from the latest: an
 * answer carrying server time `T`, received at monotonic `r`, proves that at monotonic `t` the
 * server's clock reads at least `T + (t - r)`. The estimate is that lower bound (so "has this
 * expiry passed?" errs towards "not yet", in the holder's favour), off by at most a round trip.
 */

/**
 * Whole milliseconds on a clock that never steps and keeps counting while the machine sleeps
 * (counted from the process's start, as epoch ms).
 */
export type Monotonic = () => number;

/**
 * `performance.now()` (CLOCK_MONOTONIC) for its precision, plus the time the machine spent
 * suspended, which that clock does not count but the boot-time clock (`os.uptime()`, 10 ms
 * steps) does: a worker whose host slept past its coverage must know it, or it would go on
 * paying for jobs the others took over. The two clocks run at the same rate otherwise, so
 * their gap grows only across a suspend; `toleranceMs` absorbs the boot clock's coarse steps.
 */
export function createMonotonic(
  precise: () => number,
  bootMs: () => number,
  origin: number,
  toleranceMs = 50,
): Monotonic {
  const precise0 = precise();
  const boot0 = bootMs();
  let slept = 0;
  return () => {
    const p = precise();
    slept = Math.max(slept, bootMs() - boot0 - (p - precise0) - toleranceMs);
    return Math.floor(origin + p + slept);
  };
}

export const monotonic: Monotonic = createMonotonic(
  () => performance.now(),
  () => uptime() * 1_000,
  performance.timeOrigin,
);

/** Firestore's time as this process knows it. */
export interface ServerClock {
  /**
   * Firestore's time now, at least (ms epoch). Before Firestore first answered: this machine's
   * clock (only the CLI and tests get that far; the worker reads the fleet before anything else).
   */
  readonly now: () => number;
  /** Firestore answered with `serverMs` (a read or commit time), received just now. */
  observe(serverMs: number): void;
  /** Whether Firestore answered yet. */
  readonly synced: boolean;
}

/**
 * How long the best bound is kept while newer answers give lower ones: clocks' rates differ by
 * up to ~100 ppm, so an old bound may overshoot by 100 µs a second of age; a minute keeps that
 * under 10 ms.
 */
export const BOUND_KEPT_MS = 60_000;

export function createServerClock(
  mono: Monotonic = monotonic,
  wall: () => number = Date.now,
): ServerClock {
  let best: { offset: number; at: number } | undefined;
  return {
    now: () => (best ? mono() + best.offset : wall()),
    observe(serverMs) {
      const at = mono();
      const offset = serverMs - at;
      if (!best || offset >= best.offset || at - best.at > BOUND_KEPT_MS) best = { offset, at };
    },
    get synced() {
      return best !== undefined;
    },
  };
}
