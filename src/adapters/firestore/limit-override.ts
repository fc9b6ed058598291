import { FieldValue, Timestamp, type Firestore } from 'firebase-admin/firestore';
import {
  parseOverride,
  resolveLimits,
  usageDocId,
  utcDay,
  type LimitOverride,
  type UserLimits,
} from '../../jobs/user-limits.js';
import { USAGE_COLLECTION } from './usage-docs.js';

/**
 * A user's limits override (`showcaseUsage/limits-{userId}`) as an operator reads and sets it:
 * `showcase-worker limit` and the console's Spend panel both go through here, so they write
 * the same document the same way and show the same thing. Values are validated before
 * (user-limits.ts: parseLimitSetting, userIdProblem).
 */

/** What to change: a number replaces the configured limit, `default` drops the override. */
export interface LimitChange {
  dailyJobs?: number | 'default';
  maxActive?: number | 'default';
}

/** One user's limits now: what applies, from where, and today's count. */
export interface UserLimitsView {
  userId: string;
  /** The UTC day of `today`. */
  day: string;
  configured: UserLimits;
  override: LimitOverride;
  /** What applies (0 = no limit). */
  limits: UserLimits;
  today: { jobs: number; credits: number };
}

/**
 * Sets the override's named fields (merge: the other one stays), in a transaction that reads
 * it first: returns the override before and after, for the operator's answer and log.
 */
export async function writeLimitOverride(
  db: Firestore,
  userId: string,
  change: LimitChange,
  now: number,
): Promise<{ before: LimitOverride; after: LimitOverride }> {
  const ref = db.collection(USAGE_COLLECTION).doc(usageDocId.limits(userId));
  return db.runTransaction(async (tx) => {
    const before = parseOverride((await tx.get(ref)).data());
    const field = (v: number | 'default') => (v === 'default' ? FieldValue.delete() : v);
    tx.set(
      ref,
      {
        userId,
        ...(change.dailyJobs === undefined ? {} : { dailyJobs: field(change.dailyJobs) }),
        ...(change.maxActive === undefined ? {} : { maxActive: field(change.maxActive) }),
        updatedAt: Timestamp.fromMillis(now),
      },
      { merge: true },
    );
    const after: LimitOverride = { ...before };
    for (const key of ['dailyJobs', 'maxActive'] as const) {
      const v = change[key];
      if (v === 'default') delete after[key];
      else if (v !== undefined) after[key] = parseOverride({ [key]: v })[key] ?? v;
    }
    return { before, after };
  });
}

/** The user's override, the limits that apply with `configured`, and today's jobs and credits. */
export async function readUserLimits(
  db: Firestore,
  userId: string,
  configured: UserLimits,
  now: number,
): Promise<UserLimitsView> {
  const usage = db.collection(USAGE_COLLECTION);
  const day = utcDay(now);
  const [override, today] = await Promise.all([
    usage.doc(usageDocId.limits(userId)).get(),
    usage.doc(usageDocId.daily(userId, day)).get(),
  ]);
  const parsed = parseOverride(override.data());
  const counted = today.data() as { jobs?: unknown; credits?: unknown } | undefined;
  const n = (v: unknown) => (typeof v === 'number' ? v : 0);
  return {
    userId,
    day,
    configured,
    override: parsed,
    limits: resolveLimits(configured, parsed),
    today: { jobs: n(counted?.jobs), credits: n(counted?.credits) },
  };
}
