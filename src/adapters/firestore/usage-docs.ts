import {
  FieldValue,
  Timestamp,
  type DocumentData,
  type DocumentReference,
  type Firestore,
} from 'firebase-admin/firestore';
import type { DaySettlement } from '../../jobs/ports.js';
import { usageDocId, utcDay } from '../../jobs/user-limits.js';

/**
 * The `showcaseUsage` layout, in one place: user-quota.ts decides on these documents, and
 * the job store commits a paid job's settlement into them with the job's final write.
 */

/** The collection of per-user usage, closed to clients by firestore.rules. */
export const USAGE_COLLECTION = 'showcaseUsage';

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
export interface ActiveSlots {
  userId: string;
  /** characterId → when the slot was taken (ms epoch). */
  slots: Record<string, number>;
}

/**
 * A paid job's settlement as a merge into its owner's day document: increments, so any number
 * of jobs settle at once without reading it. The job store commits it with the job's final
 * write, whose `writeId` read tells whether it landed after a lost answer.
 */
export function settlementWrite(
  db: Firestore,
  settlement: DaySettlement,
  now: number,
): { ref: DocumentReference; data: DocumentData } {
  const day = utcDay(settlement.requestedAt);
  return {
    ref: db.collection(USAGE_COLLECTION).doc(usageDocId.daily(settlement.userId, day)),
    data: {
      userId: settlement.userId,
      day,
      credits: FieldValue.increment(settlement.credits),
      ...(settlement.countJob ? { jobs: FieldValue.increment(1) } : {}),
      updatedAt: Timestamp.fromMillis(now),
    },
  };
}
