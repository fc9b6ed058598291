/**
 * Per-user limits (USER_DAILY_JOB_LIMIT, USER_MAX_ACTIVE) as pure policy: the UTC day a job
 * counts in, when a day's count resets, which limit applies to a user, and what the user is
 * told. The counting itself is the `UserQuota` port's (adapters/firestore/user-quota.ts).
 */

/** The limits that apply to one user; 0 = no limit. */
export interface UserLimits {
  /** Jobs per UTC day that reach a paid call. */
  dailyJobs: number;
  /** Jobs running at once across the fleet. */
  maxActive: number;
}

/** A per-user override: each limit it names replaces the configured one for that user. */
export type LimitOverride = Partial<UserLimits>;

const DAY_MS = 86_400_000;

/** The UTC day (YYYY-MM-DD) of an instant: a job counts in the day its click was first seen. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** The next UTC midnight after `ms`: when the day's count resets. */
export function nextUtcMidnight(ms: number): number {
  return (Math.floor(ms / DAY_MS) + 1) * DAY_MS;
}

/**
 * The highest daily limit that counts jobs. A user's day document lists every jobId it counted
 * (about 40 bytes each, so a job is never counted twice): 10,000 keeps it under half of
 * Firestore's 1 MiB a document. More than that a day is no limit at all (0).
 */
export const MAX_DAILY_LIMIT = 10_000;

/** The configured limits, with what an override names replacing them. */
export function resolveLimits(configured: UserLimits, override: LimitOverride = {}): UserLimits {
  return {
    dailyJobs: override.dailyJobs ?? configured.dailyJobs,
    maxActive: override.maxActive ?? configured.maxActive,
  };
}

/**
 * Reads an override document (`showcaseUsage/limits-{userId}`, written by an operator):
 * `dailyJobs` and `maxActive`, each a whole number ≥ 0 (0 = no limit). A `dailyJobs` above
 * MAX_DAILY_LIMIT reads as no limit, which is what so many a day means (one written before the
 * cap keeps working). Anything else in it is ignored, so a typo loosens nothing it did not
 * name correctly.
 */
export function parseOverride(data: unknown): LimitOverride {
  if (!data || typeof data !== 'object') return {};
  const record = data as Record<string, unknown>;
  const override: LimitOverride = {};
  for (const key of ['dailyJobs', 'maxActive'] as const) {
    const value = record[key];
    if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) {
      override[key] = key === 'dailyJobs' && value > MAX_DAILY_LIMIT ? 0 : value;
    }
  }
  return override;
}

/** Whether one more job fits in today's count. */
export function withinDailyLimit(counted: number, limit: number): boolean {
  return limit === 0 || counted < limit;
}

/** What the app may show a user refused by the daily limit: the limit and when it resets. */
export function dailyLimitMessage(limit: number, resetsAt: number): string {
  const at = new Date(resetsAt).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const jobs = limit === 1 ? '1 showcase job' : `${limit} showcase jobs`;
  return `You have reached your limit of ${jobs} per day. It resets at ${at} (midnight UTC).`;
}

/** Firestore document ids in `showcaseUsage` (userIds are validated path segments). */
export const usageDocId = {
  daily: (userId: string, day: string) => `day-${day}-${userId}`,
  /** USER_DAILY_REQUEST_LIMIT's count: written by claims only (request-limit.ts). */
  requests: (userId: string, day: string) => `requests-${day}-${userId}`,
  active: (userId: string) => `active-${userId}`,
  limits: (userId: string) => `limits-${userId}`,
} as const;

/**
 * One limit as an operator sets it (`showcase-worker limit`, the console's Spend panel): a
 * whole number from 0 (no limit) to the limit's maximum, or `default` to drop the override.
 * `label` names the field in the message (`--daily`, `daily jobs`).
 */
export function parseLimitSetting(
  text: string,
  key: keyof UserLimits,
  label: string,
): { value: number | 'default' } | { problem: string } {
  if (text === 'default') return { value: 'default' };
  if (!/^\d+$/.test(text)) {
    return {
      problem: `${label} must be a whole number (0 = no limit) or "default", not "${text}"`,
    };
  }
  const n = Number(text);
  const max = key === 'dailyJobs' ? MAX_DAILY_LIMIT : Number.MAX_SAFE_INTEGER;
  if (n > max) return { problem: `${label} must be at most ${max}; for more, 0 (no limit)` };
  return { value: n };
}

/** Why `userId` cannot name a user's documents (a path segment of at most 128), if it cannot. */
export function userIdProblem(userId: string): string | undefined {
  const bad =
    userId === '' ||
    userId.includes('/') ||
    userId === '.' ||
    userId === '..' ||
    userId.length > 128;
  return bad ? `"${userId}" is not a valid user id` : undefined;
}
