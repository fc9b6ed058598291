/**
 * Fleet policies, pure: who is alive, whether this worker may still act on a job it claimed,
 * and what share of the key's quota each worker may use. The fleet loop
 * (src/pipeline/fleet-loop.ts) and the Firestore adapters (presence.ts, quota-ledger.ts,
 * sweep-leader.ts) apply them. The job unit's words (fence, lapse, ticket, admission,
 * settlement...) are in ports.ts.
 *
 * Clocks (src/jobs/clock.ts): times that other workers compare with (an expiry, a lease,
 * a grant's drain) are Firestore's (read and commit times); coverage and continuity, which
 * only this worker reads, are on its monotonic clock. No rule compares two workers' clocks.
 *
 * Glossary:
 * - presence: a worker's heartbeat document; its last beat's commit time plus its timeout is
 *   when the others may call it dead (`expiresAt` below).
 * - coverage: until when this worker knows the others see it alive (its last acknowledged beat).
 * - continuity: since when coverage had no gap; a job claimed before a gap may have been taken over.
 * - grant: the requests per rolling window a worker may send, recorded in the quota ledger.
 * - reservation: the most requests a worker promised (in its last beat) to have in any window;
 *   less the calls then in its window, what it may send until its next beat (quota-promise.ts).
 * - takeover: a dead worker's running jobs, dealt among the survivors (`takeoverShare`).
 * - leader: the one worker that runs the reconciling sweep, under a lease.
 */

import { drainSteps, stepWeight, type DrainStep, type LeavingAt } from './quota-promise.js';

/** What a worker's heartbeat says about it (times in ms on Firestore's clock). */
export interface PresenceRecord {
  workerId: string;
  startedAt: number;
  /** The last beat's commit time (the document's update time). */
  beatAt: number;
  /** `beatAt` plus the worker's PRESENCE_TIMEOUT_MS. */
  expiresAt: number;
  running: number;
  demand: number;
  /** Its quota share, and the most requests it promised to have in any window (`reservation`). */
  share?: number;
  reserved?: number;
  /** When its calls in the window at the beat leave it (src/jobs/quota-promise.ts). */
  leaving?: LeavingAt[];
}

/** Alive for a read of the fleet at `now` (its read time): the margin is in the owner's favour. */
export function isAlive(
  p: { expiresAt: number } | undefined,
  now: number,
  marginMs: number,
): boolean {
  return p !== undefined && now <= p.expiresAt + marginMs;
}

/**
 * Heartbeat cadence: fast while the worker holds or waits for jobs (four tries before its
 * coverage runs out), slower when idle (two tries; an idle worker has no job to lose).
 */
export function beatEveryMs(timeoutMs: number, busy: boolean): number {
  return Math.max(250, Math.floor(busy ? timeoutMs / 5 : timeoutMs / 3));
}

/**
 * When to read the fleet next to see a death as soon as it is visible: just after the
 * earliest expiry (plus the margin) of another live worker, if that comes before `next`.
 */
export function nextDeathCheck(
  workers: readonly PresenceRecord[],
  me: string,
  now: number,
  marginMs: number,
  next: number,
): number {
  let at = next;
  for (const w of workers) {
    if (w.workerId === me || !isAlive(w, now, marginMs)) continue;
    at = Math.min(at, w.expiresAt + marginMs + 50);
  }
  return at;
}

/**
 * The margin between a worker's own coverage and the others' verdict on it: the coverage ends
 * this much before the earliest moment anyone may call it dead (clock rates, a timer's lateness).
 * Not a clock-skew allowance: no rule compares two workers' clocks.
 */
export function fleetMarginMs(timeoutMs: number): number {
  return Math.max(100, Math.min(1_000, Math.floor(timeoutMs / 15)));
}

/** On the monotonic clock: only this worker reads it. */
export interface Continuity {
  /** The expiry the others last saw from us (send time of the last acknowledged beat + ttl). */
  coveredUntil: number;
  /** Start of the current gap-free run of beats; Infinity before the first beat. */
  since: number;
}

export const NO_CONTINUITY: Continuity = { coveredUntil: 0, since: Number.POSITIVE_INFINITY };

/**
 * A beat sent at `sentAt` was acknowledged at `ackAt`. It continues the run only when it landed
 * before the previous coverage ran out (less the margin): otherwise another worker may have seen
 * us dead in between, and the run restarts at the acknowledgement.
 */
export function afterBeat(
  c: Continuity,
  beat: { sentAt: number; ackAt: number; ttlMs: number; marginMs: number },
): Continuity {
  const continuous = beat.ackAt < c.coveredUntil - beat.marginMs;
  return {
    coveredUntil: Math.max(c.coveredUntil, beat.sentAt + beat.ttlMs),
    since: continuous ? c.since : beat.ackAt,
  };
}

/** Whether a job claimed at `claimedAt` is still surely ours: covered now, no gap since. */
export function holds(c: Continuity, now: number, claimedAt: number, marginMs: number): boolean {
  return now < c.coveredUntil - marginMs && claimedAt >= c.since;
}

/** When coverage runs out (the moment to presume every running job lost). */
export function lapseAt(c: Continuity, marginMs: number): number {
  return c.coveredUntil - marginMs;
}

/**
 * Which of a dead worker's jobs this worker takes over. The jobs, those with the most paid
 * calls left first (then by id), go one by one to the live worker with the fewest calls dealt
 * so far (then by id): every survivor reading the same fleet computes the same split, so they
 * take the jobs over at once and side by side, each at its own share of the quota, without
 * racing for them. A job whose survivor dies too is left to the sweep.
 */
export function takeoverShare(
  jobs: ReadonlyArray<{ id: string; callsLeft: number }>,
  live: readonly string[],
  me: string,
): string[] {
  const workers = [...new Set([...live, me])].sort();
  const load = workers.map(() => 0);
  const mine: string[] = [];
  const ordered = [...new Map(jobs.map((j) => [j.id, j])).values()].sort(
    (a, b) => b.callsLeft - a.callsLeft || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
  );
  for (const job of ordered) {
    const least = load.indexOf(Math.min(...load));
    // Even a job with no paid call left costs its claim and finishing: it counts a little.
    load[least] = (load[least] ?? 0) + Math.max(job.callsLeft, 0.5);
    if (workers[least] === me) mine.push(job.id);
  }
  return mine;
}

/** Paid calls a job in this status still needs (its checkpoints may spare some). */
export function callsLeft(status: string | undefined): number {
  return status === 'removing-background' ? 2 : status === 'upscaling' ? 1 : 0;
}

/** The leader lease: held by `holder` until `expiresAt`, unless given up. */
export interface LeaderLease {
  holder: string | null;
  expiresAt: number;
}

/**
 * Whether `me` may take (or keep) the lease at `now`: free, ours, run out, or its holder's
 * heartbeat is no longer fresh (a holder leads only while its own heartbeat coverage lasts, so
 * leadership moves as soon as a death is visible, not a lease later).
 */
export function mayLead(
  lease: LeaderLease | undefined,
  me: string,
  now: number,
  marginMs: number,
  holderAlive: (id: string) => boolean = () => true,
): boolean {
  return (
    !lease ||
    !lease.holder ||
    lease.holder === me ||
    now > lease.expiresAt + marginMs ||
    !holderAlive(lease.holder)
  );
}

/** One worker's entry in the quota ledger. */
export interface Grant {
  /** Requests per window the worker may send now. */
  limit: number;
  /** A higher limit given up recently: its requests still count until `drainUntil`. */
  drainLimit: number;
  drainUntil: number;
  /**
   * A dead worker's drain as its calls leave the window (its last beat's promise), each step
   * under `drainLimit`; absent, `drainLimit` counts until `drainUntil`.
   */
  drainSteps?: DrainStep[];
}

/** What a grant weighs in the fleet's window at `now`. */
export function counted(g: Grant, now: number): number {
  if (now >= g.drainUntil) return g.limit;
  const drain = g.drainSteps ? Math.min(g.drainLimit, stepWeight(g.drainSteps, now)) : g.drainLimit;
  return Math.max(g.limit, drain);
}

/**
 * Equal shares of `rpm` among the live workers; the remainder goes to the first ids in sort
 * order, so every worker computes the same split from the same view.
 */
export function fairShare(rpm: number, live: readonly string[], me: string): number {
  const ids = [...new Set([...live, me])].sort();
  const base = Math.floor(rpm / ids.length);
  return base + (ids.indexOf(me) < rpm % ids.length ? 1 : 0);
}

export interface RebalanceInput {
  me: string;
  rpm: number;
  now: number;
  windowMs: number;
  marginMs: number;
  /**
   * Every presence document seen (dead ones included, for their expiry and `reserved`: the
   * most requests that worker promised to have in any window from its last beat on).
   */
  presence: ReadonlyMap<string, PresenceSeen>;
  /** This worker's requests in the current window (in flight included), its limit already applied. */
  used: number;
}

export interface PresenceSeen {
  expiresAt: number;
  alive: boolean;
  reserved?: number;
  /** Present when its beat also promised a send allowance (src/jobs/quota-promise.ts). */
  leaving?: readonly LeavingAt[];
}

/**
 * What a worker promises in its heartbeat: from this beat on, at most this many requests in
 * any window (those already in it, plus `headroom` more until its next beat raises it). A dead
 * worker's grant then drains at this weight, not its whole share: a restarted worker gets the
 * quota its predecessor did not use.
 */
export function reservation(grant: number, used: number): number {
  return Math.min(grant, used + Math.max(4, Math.ceil(grant / 4)));
}

/**
 * The quota ledger's one rule, applied in a transaction by each worker for itself:
 * - a worker no longer alive keeps counting its grant until its last expiry plus a window
 *   (its last requests leave the server's window), then leaves the ledger;
 * - a worker lowers its own limit at once, but the old limit keeps counting for a window;
 * - a worker raises its own limit only into what the others' counted grants leave free.
 * So at any moment the counted grants sum to at most `rpm`, and each worker's requests in any
 * window stay within a limit that was counted during it: the fleet never exceeds the quota.
 */
export function rebalance(
  ledger: Readonly<Record<string, Grant>>,
  input: RebalanceInput,
): { ledger: Record<string, Grant>; limit: number; target: number } {
  const { me, now } = input;
  const next: Record<string, Grant> = {};
  for (const [id, grant] of Object.entries(ledger)) {
    if (id === me) continue;
    const seen = input.presence.get(id);
    if (seen?.alive) {
      next[id] = grant;
      continue;
    }
    if (grant.limit === 0) {
      // Already given up (a clean stop, or converted by another worker): let it drain.
      if (now < grant.drainUntil) next[id] = grant;
      continue;
    }
    // Dead: it sends nothing more; what it promised keeps counting until it has left the
    // window, and at most a window past its expiry (src/jobs/quota-promise.ts).
    const end = (seen?.expiresAt ?? now) + input.windowMs + input.marginMs;
    const weight = Math.min(counted(grant, now), seen?.reserved ?? Number.POSITIVE_INFINITY);
    const steps =
      seen?.reserved !== undefined && seen.leaving !== undefined
        ? drainSteps(
            { reserved: seen.reserved, leaving: seen.leaving },
            end,
            input.marginMs,
            weight,
          )
        : undefined;
    next[id] = {
      limit: 0,
      drainLimit: weight,
      drainUntil: Math.max(end, grant.drainUntil),
      ...(steps ? { drainSteps: steps } : {}),
    };
  }
  const live = [...input.presence].filter(([, p]) => p.alive).map(([id]) => id);
  const target = fairShare(input.rpm, live, me);
  const others = Object.values(next).reduce((sum, g) => sum + counted(g, now), 0);
  const mine = ledger[me] ?? { limit: 0, drainLimit: 0, drainUntil: 0 };
  const limit = Math.max(0, Math.min(target, input.rpm - others));
  // Lowered: the requests already in the window keep counting until they leave it.
  next[me] =
    limit < mine.limit
      ? {
          limit,
          drainLimit: Math.min(counted(mine, now), Math.max(limit, input.used)),
          drainUntil: now + input.windowMs + input.marginMs,
        }
      : { ...mine, limit };
  return { ledger: next, limit, target };
}
