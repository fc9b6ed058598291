import { FieldPath, FieldValue, Timestamp, type Firestore } from 'firebase-admin/firestore';
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
import { viewOf } from './job-fields.js';

/** The collection of per-user usage, closed to clients by firestore.rules. */
export const USAGE_COLLECTION = 'showcaseUsage';

export interface UserQuotaOptions {
  limits: UserLimits;
  /** The character collection: a slot stays taken while its job holds a live lease there. */
  characters: string;
  /** A slot younger than this counts even before its job's claim is visible (one lease). */
  slotGraceMs: number;
  now?: () => number;
}

/** `showcaseUsage/day-{YYYY-MM-DD}-{userId}`: one user's jobs and credits on one UTC day. */
export interface DailyUsage {
  userId: string;
  day: string;
  /** Jobs counted against the limit (admitted, not refunded). */
  jobs: number;
  /** The jobIds counted, so a job is counted once whoever admits it and however often. */
  jobIds: Record<string, true>;
  /** ClipDrop credits spent on this user's jobs. */
  credits?: number;
  updatedAt: Timestamp;
}

/** `showcaseUsage/active-{userId}`: characters whose jobs hold one of the user's slots. */
interface ActiveSlots {
  userId: string;
  /** characterId → when the slot was taken (ms epoch). */
  slots: Record<string, number>;
}

/**
 * Per-user limits in Firestore. Every decision is a transaction over the user's documents, so
 * replicas racing for the last place of the day admit exactly the limit; a jobId already
 * counted is admitted again without counting (retries, recoveries).
 */
export function createFirestoreUserQuota(db: Firestore, opts: UserQuotaOptions): UserQuota {
  const usage = db.collection(USAGE_COLLECTION);
  const characters = db.collection(opts.characters);
  const now = opts.now ?? Date.now;
  const dailyRef = (t: QuotaTicket) => usage.doc(usageDocId.daily(t.userId, utcDay(t.requestedAt)));
  const limitsRef = (userId: string) => usage.doc(usageDocId.limits(userId));

  return {
    slotsEnabled: opts.limits.maxActive > 0,

    async admit(ticket): Promise<Admission> {
      const ref = dailyRef(ticket);
      return db.runTransaction(async (tx): Promise<Admission> => {
        const [daySnap, limitsSnap] = await tx.getAll(ref, limitsRef(ticket.userId));
        const day = daySnap?.data() as Partial<DailyUsage> | undefined;
        if (day?.jobIds?.[ticket.jobId]) return { kind: 'admitted' };
        const { dailyJobs } = resolveLimits(opts.limits, parseOverride(limitsSnap?.data()));
        const counted = day?.jobs ?? 0;
        if (!withinDailyLimit(counted, dailyJobs)) {
          return {
            kind: 'refused',
            limit: dailyJobs,
            resetsAt: nextUtcMidnight(ticket.requestedAt),
          };
        }
        tx.set(
          ref,
          {
            userId: ticket.userId,
            day: utcDay(ticket.requestedAt),
            jobs: FieldValue.increment(1),
            jobIds: { [ticket.jobId]: true },
            updatedAt: Timestamp.fromMillis(now()),
          },
          { merge: true },
        );
        return { kind: 'admitted' };
      });
    },

    async settle(ticket, spent) {
      const ref = dailyRef(ticket);
      if (spent.paid) {
        if (spent.credits === 0) return;
        await ref.set(
          { credits: FieldValue.increment(spent.credits), updatedAt: Timestamp.fromMillis(now()) },
          { merge: true },
        );
        return;
      }
      await db.runTransaction(async (tx) => {
        const snap = await tx.get(ref);
        const day = snap.data() as Partial<DailyUsage> | undefined;
        if (!day?.jobIds?.[ticket.jobId]) return;
        tx.update(
          ref,
          'jobs',
          FieldValue.increment(-1),
          new FieldPath('jobIds', ticket.jobId),
          FieldValue.delete(),
          'updatedAt',
          Timestamp.fromMillis(now()),
        );
      });
    },

    async acquireSlot(userId, characterId): Promise<SlotResult> {
      const ref = usage.doc(usageDocId.active(userId));
      return db.runTransaction(async (tx): Promise<SlotResult> => {
        const [slotSnap, limitsSnap] = await tx.getAll(ref, limitsRef(userId));
        const { maxActive } = resolveLimits(opts.limits, parseOverride(limitsSnap?.data()));
        if (maxActive === 0) return { kind: 'acquired', holder: false };
        const slots = { ...((slotSnap?.data() as Partial<ActiveSlots> | undefined)?.slots ?? {}) };
        // One job per character (the claim sees to it): a request for a character that holds
        // a slot already is covered by it, and must not free it when its own claim is skipped.
        if (slots[characterId] !== undefined) return { kind: 'acquired', holder: false };
        const at = now();
        // Slots past their grace count only while their job holds a live lease: a worker that
        // crashed leaks nothing, whether or not it got as far as its claim.
        const old = Object.keys(slots).filter((id) => (slots[id] ?? 0) + opts.slotGraceMs <= at);
        if (Object.keys(slots).length >= maxActive && old.length > 0) {
          const docs = await tx.getAll(...old.map((id) => characters.doc(id)));
          for (const doc of docs) {
            const { job } = viewOf(doc.data());
            const live = job?.state === 'running' && (job.leaseExpiresAt?.toMillis() ?? 0) > at;
            if (!live) delete slots[doc.id];
          }
        }
        if (Object.keys(slots).length >= maxActive) return { kind: 'busy', limit: maxActive };
        slots[characterId] = at;
        tx.set(ref, { userId, slots });
        return { kind: 'acquired', holder: true };
      });
    },

    async releaseSlot(userId, characterId) {
      await usage
        .doc(usageDocId.active(userId))
        .set({ slots: { [characterId]: FieldValue.delete() } }, { merge: true });
    },
  };
}
