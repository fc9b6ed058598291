import { createHash } from 'node:crypto';

/**
 * One replica per click, pure: which live worker a click is dealt to, and how long the others
 * leave it to that worker. The dealing stage (src/pipeline/dealing.ts) applies it to the
 * listener's requests; docs/fleet.md tells the whole rule.
 *
 * Every replica's listener sees every click. Were each to claim it, a click would cost N source
 * downloads (the download starts alongside the claim) and N claims, N − 1 of them refused.
 * Instead each click is dealt by rendezvous (highest-random-weight) hashing of its character id
 * over the live workers: every worker that sees the same live set computes the same winner
 * with no message exchanged, the clicks spread evenly, and when a worker joins or leaves only
 * the clicks that it wins (or won) move. The dealt worker claims and downloads at once, and
 * queues the click even when busy: pickup stays as fast as one worker's.
 */

/**
 * A click dealt to another live worker and still unclaimed after this long is taken by the
 * runner-up in its order, if that worker has a free slot: a busy dealt worker does not hold a
 * click while others idle. Any other worker with a free slot takes it after twice as long
 * (`handoffAfterMs`): when the dealt worker is busy, one other worker steps in, not all of them.
 * A click dealt to a worker seen dead is re-dealt at once, without waiting. Long enough that an
 * idle dealt worker's claim (a round trip, well under a second) reaches the others' listeners
 * first; short next to a job (seconds of paid calls).
 */
export const HANDOFF_AFTER_MS = 2_000;

/** The worker's weight for a click: the first 64 bits of SHA-256, uniform and stable. */
export function weightOf(workerId: string, characterId: string): bigint {
  return createHash('sha256').update(`${workerId}\u0000${characterId}`).digest().readBigUInt64BE(0);
}

/**
 * The live workers in the click's order, highest weight first (ties, which 64 bits make
 * vanishingly rare, by id): the first is the worker the click is dealt to, the second its
 * runner-up. Duplicates count once.
 */
export function dealOrder(characterId: string, live: readonly string[]): string[] {
  return [...new Set(live)]
    .map((id) => ({ id, weight: weightOf(id, characterId) }))
    .sort((a, b) => (a.weight === b.weight ? (a.id < b.id ? -1 : 1) : a.weight > b.weight ? -1 : 1))
    .map(({ id }) => id);
}

/** The live worker a click is dealt to (`live` must not be empty: a worker counts itself). */
export function dealtTo(characterId: string, live: readonly string[]): string {
  const [first] = dealOrder(characterId, live);
  if (first === undefined) throw new Error('dealtTo: no live worker');
  return first;
}

/**
 * A click still unclaimed after this long is taken by any worker that holds it, free slot or
 * not (it queues it fairly; a claim by another meanwhile makes it skip): a dealt worker that is
 * alive but not claiming (draining at shutdown, its listener reconnecting) holds no click longer.
 */
export const HANDOFF_ANYWAY_MS = 10 * HANDOFF_AFTER_MS;

/**
 * How long a click waits unclaimed before the worker at `position` in its order may take it
 * (with a free slot): 0, the dealt worker, at once; 1, the runner-up, after HANDOFF_AFTER_MS;
 * any other (or one left out of the order) after twice that.
 */
export function handoffAfterMs(position: number): number {
  if (position === 0) return 0;
  return position === 1 ? HANDOFF_AFTER_MS : 2 * HANDOFF_AFTER_MS;
}
