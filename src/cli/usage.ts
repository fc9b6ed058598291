import type { Firestore } from 'firebase-admin/firestore';
import { USAGE_COLLECTION } from '../adapters/firestore/usage-docs.js';
import { utcDay } from '../jobs/user-limits.js';

/** One user's counted jobs and spent credits on one UTC day (showcaseUsage). */
export interface UserDay {
  userId: string;
  jobs: number;
  credits: number;
}

/**
 * Today's (UTC) heaviest users, by jobs counted against the daily limit, then credits. One
 * equality query on `day` (a single-field index, automatic), sorted here: a day holds one
 * small document per active user.
 */
export async function topUsersToday(db: Firestore, now: number, limit = 5): Promise<UserDay[]> {
  const snap = await db.collection(USAGE_COLLECTION).where('day', '==', utcDay(now)).get();
  const users = snap.docs.map((doc): UserDay => {
    const data = doc.data() as { userId?: unknown; jobs?: unknown; credits?: unknown };
    return {
      userId: typeof data.userId === 'string' ? data.userId : doc.id,
      jobs: typeof data.jobs === 'number' ? data.jobs : 0,
      credits: typeof data.credits === 'number' ? data.credits : 0,
    };
  });
  return users
    .sort((a, b) => b.jobs - a.jobs || b.credits - a.credits || a.userId.localeCompare(b.userId))
    .slice(0, limit);
}

export function formatTopUsers(users: UserDay[], now: number): string[] {
  const head = `top users today (${utcDay(now)} UTC), by jobs counted and credits:`;
  if (users.length === 0) return [`${head} none yet`];
  return [
    head,
    ...users.map(
      (u) =>
        `  ${u.userId.padEnd(28)} ${String(u.jobs).padStart(6)} jobs ${String(u.credits).padStart(8)} credits`,
    ),
  ];
}
