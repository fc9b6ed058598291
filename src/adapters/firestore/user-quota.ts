import { setTimeout as delay } from 'node:timers/promises';
import {
  FieldValue,
  Timestamp,
  type DocumentData,
  type DocumentReference,
  type DocumentSnapshot,
  type Firestore,
  type UpdateData,
} from 'firebase-admin/firestore';
import type { Admission, QuotaTicket, SlotResult, UserQuota } from '../../jobs/ports.js';
import {
  nextUtcMidnight,
  parseOverride,
  resolveLimits,
  usageDocId,
  utcDay,
  withinDailyLimit,
  type UserLimits,
} from '../../jobs/user-limits.js';
import { answerLost, GRPC } from './lost-answer.js';
import { USAGE_COLLECTION, type ActiveSlots, type DailyUsage } from './usage-docs.js';

export interface UserQuotaOptions {
  limits: UserLimits;
  /**
   * Which of these characters' jobs hold a live lease now (the characters' layout is theirs:
   * job-fields.ts `createLiveJobsReader`): a slot stays taken while its job holds one.
   */
  liveJobs: (characterIds: readonly string[], nowMs: number) => Promise<ReadonlySet<string>>;
  /** A slot younger than this counts even before its job's claim is visible (one lease). */
  slotGraceMs: number;
  now?: () => number;
}

/** How long a user's override document, once read, is trusted (docs/fairness.md). */
export const OVERRIDE_TTL_MS = 10_000;
/** Past this many users kept, expired entries are dropped. */
const OVERRIDE_CACHE_USERS = 1_000;
/** Enough for every worker of a fleet racing for one user's document at once. */
const MAX_ROUNDS = 50;

/** A write decided from one read of the document, or no write at all. */
type Decision<T> = { result: T; write?: 'create' | 'update'; data?: UpdateData<DocumentData> };

export class UsageContentionError extends Error {
  override readonly name = 'UsageContentionError';
  // ABORTED: classify() makes it transient, so the job's call is retried with backoff.
  readonly code = 10;
  constructor(path: string) {
    super(`${path} kept changing during ${MAX_ROUNDS} tries`);
  }
}

/**
 * Per-user limits in Firestore. Each decision is a compare-and-set on the user's document: read
 * it, decide, write only if it is still the version read (`create`, or `update` with
 * `lastUpdateTime`), else read again. Replicas racing for the last place of the day admit
 * exactly the limit, and a jobId already counted is admitted again without counting (retries,
 * recoveries). No transaction locks: a burst of one user's jobs on several workers cannot
 * deadlock on the document (the emulator resolves such deadlocks only by a 20 s timeout).
 */
export function createFirestoreUserQuota(db: Firestore, opts: UserQuotaOptions): UserQuota {
  const usage = db.collection(USAGE_COLLECTION);
  const now = opts.now ?? Date.now;
  const dailyRef = (t: QuotaTicket) => usage.doc(usageDocId.daily(t.userId, utcDay(t.requestedAt)));
  /**
   * A user's limits, their override read at most once per OVERRIDE_TTL_MS: a burst of one
   * user's jobs shares one read (each was a billed read before the paid call). `fresh` when
   * this call read it; a failed read is not kept.
   */
  const overrides = new Map<string, { readAt: number; limits: Promise<UserLimits> }>();
  const limitsOf = async (
    userId: string,
    read: { fresh?: boolean } = {},
  ): Promise<{ limits: UserLimits; fresh: boolean }> => {
    const at = now();
    const kept = overrides.get(userId);
    if (kept && !read.fresh && at - kept.readAt < OVERRIDE_TTL_MS) {
      return { limits: await kept.limits, fresh: false };
    }
    if (overrides.size >= OVERRIDE_CACHE_USERS) {
      for (const [id, entry] of overrides) {
        if (at - entry.readAt >= OVERRIDE_TTL_MS) overrides.delete(id);
      }
    }
    const entry = {
      readAt: at,
      limits: usage
        .doc(usageDocId.limits(userId))
        .get()
        .then((snap) => resolveLimits(opts.limits, parseOverride(snap.data()))),
    };
    overrides.set(userId, entry);
    try {
      return { limits: await entry.limits, fresh: true };
    } catch (err) {
      if (overrides.get(userId) === entry) overrides.delete(userId);
      throw err;
    }
  };

  async function compareAndSet<T>(
    ref: DocumentReference,
    decide: (snap: DocumentSnapshot) => Promise<Decision<T>> | Decision<T>,
    /** The first round's read, when it is already under way. */
    first?: Promise<DocumentSnapshot>,
  ): Promise<T> {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const snap = await (round === 0 && first ? first : ref.get());
      const decision = await decide(snap);
      if (!decision.write || !decision.data) return decision.result;
      try {
        if (decision.write === 'create' || !snap.exists) {
          await ref.create(decision.data);
        } else if (snap.updateTime) {
          await ref.update(decision.data, { lastUpdateTime: snap.updateTime });
        }
        return decision.result;
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        // An answer lost (the write may have landed): the next round's read says.
        if (answerLost(code)) continue;
        // A lost compare-and-set: someone wrote the document since we read it.
        if (code !== GRPC.ALREADY_EXISTS && code !== GRPC.FAILED_PRECONDITION) throw err;
        // Lost the race: a short random pause spreads the next round of the racers.
        await delay(Math.floor(Math.random() * 5 * (round + 1)));
      }
    }
    throw new UsageContentionError(ref.path);
  }

  /** The day's compare-and-set for one job, against `dailyJobs` (0: no limit, nothing written). */
  function admitWithin(
    ticket: QuotaTicket,
    dailyJobs: number,
    day?: Promise<DocumentSnapshot>,
  ): Promise<Admission> {
    // No limit, nothing to decide: the day document is not written for the job (a heavy
    // user's map of counted jobIds would grow without bound, read whole by every job).
    if (dailyJobs === 0) return Promise.resolve({ kind: 'admitted', counted: false });
    return compareAndSet(
      dailyRef(ticket),
      (snap): Decision<Admission> => {
        const day = snap.data() as Partial<DailyUsage> | undefined;
        if (day?.jobIds?.[ticket.jobId]) return { result: { kind: 'admitted', counted: true } };
        const counted = day?.jobs ?? 0;
        if (!withinDailyLimit(counted, dailyJobs)) {
          return {
            result: {
              kind: 'refused',
              limit: dailyJobs,
              resetsAt: nextUtcMidnight(ticket.requestedAt),
            },
          };
        }
        const updatedAt = Timestamp.fromMillis(now());
        return {
          result: { kind: 'admitted', counted: true },
          ...(snap.exists
            ? {
                write: 'update' as const,
                data: {
                  jobs: counted + 1,
                  [`jobIds.${ticket.jobId}`]: true,
                  updatedAt,
                },
              }
            : {
                write: 'create' as const,
                data: {
                  userId: ticket.userId,
                  day: utcDay(ticket.requestedAt),
                  jobs: 1,
                  jobIds: { [ticket.jobId]: true },
                  credits: 0,
                  updatedAt,
                },
              }),
        };
      },
      day,
    );
  }

  return {
    slotsEnabled: opts.limits.maxActive > 0,

    async admit(ticket): Promise<Admission> {
      // With a configured limit, the day document is read alongside the override: two round
      // trips before the write, not three. Without one, only an override can impose a limit.
      const day = opts.limits.dailyJobs > 0 ? dailyRef(ticket).get() : undefined;
      day?.catch(() => undefined); // awaited by compareAndSet; this only marks it handled meanwhile
      const kept = await limitsOf(ticket.userId);
      const admission = await admitWithin(ticket, kept.limits.dailyJobs, day);
      if (admission.kind !== 'refused' || kept.fresh) return admission;
      // Refused on an override read a moment ago: read it again, so that a limit an operator
      // has just raised applies to the user's very next click.
      const { limits } = await limitsOf(ticket.userId, { fresh: true });
      return admitWithin(ticket, limits.dailyJobs);
    },

    settlement: (ticket, spent) =>
      // A counted job that paid nothing this attempt (a recovery) has nothing to add.
      spent.credits === 0 && spent.counted
        ? undefined
        : {
            userId: ticket.userId,
            requestedAt: ticket.requestedAt,
            credits: spent.credits,
            countJob: !spent.counted,
          },

    async refund(ticket) {
      const ref = dailyRef(ticket);
      await compareAndSet(ref, (snap): Decision<undefined> => {
        const day = snap.data() as Partial<DailyUsage> | undefined;
        if (!day?.jobIds?.[ticket.jobId]) return { result: undefined };
        return {
          result: undefined,
          write: 'update',
          data: {
            jobs: Math.max(0, (day.jobs ?? 1) - 1),
            [`jobIds.${ticket.jobId}`]: FieldValue.delete(),
            updatedAt: Timestamp.fromMillis(now()),
          },
        };
      });
    },

    async acquireSlot(userId, characterId): Promise<SlotResult> {
      const { maxActive } = (await limitsOf(userId)).limits;
      if (maxActive === 0) return { kind: 'acquired', holder: false };
      let taken: number | undefined; // the slot this call wrote, should its answer be lost
      return compareAndSet(
        usage.doc(usageDocId.active(userId)),
        async (snap): Promise<Decision<SlotResult>> => {
          const slots = { ...((snap.data() as Partial<ActiveSlots> | undefined)?.slots ?? {}) };
          // One job per character (the claim sees to it): a request for a character that
          // holds a slot already is covered by it, and must not free it if its claim is skipped.
          if (slots[characterId] !== undefined) {
            return { result: { kind: 'acquired', holder: slots[characterId] === taken } };
          }
          const at = now();
          // Slots past their grace count only while their job holds a live lease: a worker
          // that crashed leaks nothing, whether or not it got as far as its claim.
          const old = Object.keys(slots).filter((id) => (slots[id] ?? 0) + opts.slotGraceMs <= at);
          if (Object.keys(slots).length >= maxActive && old.length > 0) {
            const live = await opts.liveJobs(old, at);
            for (const id of old) if (!live.has(id)) delete slots[id];
          }
          if (Object.keys(slots).length >= maxActive) {
            return { result: { kind: 'busy', limit: maxActive } };
          }
          slots[characterId] = at;
          taken = at;
          return {
            result: { kind: 'acquired', holder: true },
            // The whole map: stale entries dropped above go with this write.
            write: snap.exists ? 'update' : 'create',
            data: snap.exists ? { slots } : { userId, slots },
          };
        },
      );
    },

    async releaseSlot(userId, characterId) {
      await usage
        .doc(usageDocId.active(userId))
        .set({ slots: { [characterId]: FieldValue.delete() } }, { merge: true });
    },
  };
}
