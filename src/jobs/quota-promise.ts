/**
 * What a worker's heartbeat promises about its ClipDrop calls, and what a dead worker still
 * weighs in the key's window because of it (the quota ledger: src/jobs/fleet.ts `rebalance`).
 *
 * A beat promises two things:
 * - the calls in this worker's window at the beat leave it by the times it lists (`leaving`,
 *   whole seconds after the beat, rounded up; calls in flight are not listed);
 * - after the beat it sends at most `reserved − used` more calls (`used`: its calls in the
 *   window then, in flight included) until a later beat is acknowledged. The rate limiter
 *   keeps that as a send allowance (`setAllowance`), and a spent allowance asks for a beat.
 * So a dead worker's weight falls as its listed calls leave, down to its tail (calls in flight
 * at its last beat, and the sends that beat allowed), which counts until a window past its
 * expiry, when every call it can have made has left the window.
 *
 * Why: "at most `reserved` in any window" alone kept a dead worker's whole share counted for
 * a window past its death, since it might have refilled its window as calls left. A backlog
 * keeps every worker's window full, so the survivors had no room for the dead worker's jobs
 * until their own calls left: a takeover waited a minute (issue 23). A send allowance costs a
 * busy worker an early beat for each `reserved − used` calls (a quarter of its share at least).
 */

/** The beat's `leaving` field: calls by the whole second after the beat they leave the window. */
export type Leaving = Record<string, number>;

/** A heartbeat's listed calls, on Firestore's clock: `calls` leave by `at`. */
export interface LeavingAt {
  at: number;
  calls: number;
}

/** A dead worker's weight in the ledger: `weight` calls until `until` (Firestore's ms). */
export interface DrainStep {
  until: number;
  weight: number;
}

/** The `leaving` field from how long until each call leaves the window (ms from now). */
export function leavingOf(leavingInMs: readonly number[]): Leaving {
  const leaving: Leaving = {};
  for (const ms of leavingInMs) {
    const s = String(Math.max(0, Math.ceil(ms / 1000)));
    leaving[s] = (leaving[s] ?? 0) + 1;
  }
  return leaving;
}

/** Parses a beat's `leaving` (anything malformed is dropped: it then counts in the tail). */
export function leavingAt(field: unknown, beatAt: number): LeavingAt[] {
  if (!field || typeof field !== 'object') return [];
  return Object.entries(field as Record<string, unknown>)
    .filter(
      (e): e is [string, number] =>
        /^\d+$/.test(e[0]) && typeof e[1] === 'number' && Number.isInteger(e[1]) && e[1] > 0,
    )
    .map(([s, calls]) => ({ at: beatAt + Number(s) * 1000, calls }))
    .sort((a, b) => a.at - b.at);
}

/**
 * A dead worker's weight over time from its last beat: everything it `reserved` until its first
 * listed calls leave, less each group as it leaves (plus `marginMs`), and its tail until `end`
 * (a window past its expiry). No step weighs more than `cap` (what its grant weighed).
 */
export function drainSteps(
  last: { reserved: number; leaving: readonly LeavingAt[] },
  end: number,
  marginMs: number,
  cap: number,
): DrainStep[] {
  const listed = last.leaving.reduce((n, l) => n + l.calls, 0);
  // A beat that lists more than it reserved is not one this rule wrote: trust only `reserved`.
  if (listed > last.reserved) return [{ until: end, weight: Math.min(cap, last.reserved) }];
  const steps: DrainStep[] = [];
  let weight = last.reserved;
  for (const l of last.leaving) {
    steps.push({ until: Math.min(end, l.at + marginMs), weight: Math.min(cap, weight) });
    weight -= l.calls;
  }
  steps.push({ until: end, weight: Math.min(cap, weight) });
  return steps;
}

/** What the steps weigh at `now` (0 once the last has passed). */
export function stepWeight(steps: readonly DrainStep[], now: number): number {
  return steps.find((s) => now < s.until)?.weight ?? 0;
}
