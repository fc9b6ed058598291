import type { CollectionReference, DocumentData, Firestore } from 'firebase-admin/firestore';
import { setIntakeFlag } from '../adapters/firestore/intake-flag.js';
import {
  readUserLimits,
  writeLimitOverride,
  type LimitChange,
  type UserLimitsView,
} from '../adapters/firestore/limit-override.js';
import type { SourcePolicy } from '../adapters/http/url-policy.js';
import { clickProcess, type ClickResult } from '../cli/click.js';
import { parseLimitSetting, userIdProblem, type UserLimits } from '../jobs/user-limits.js';

/** What an action did, for its answer and its log line. */
export type ActionOutcome = RetryOutcome | IntakeOutcome | LimitOutcome;

export interface RetryOutcome {
  action: 'retry';
  id: string;
  /** The click's verdict, as `showcase-worker enqueue` names it. */
  result: ClickResult['kind'];
  /** What changed: the status before and after, and the failure's code. */
  changed?: { from: string; to: string; code: string };
  reason?: string;
}

/**
 * Retry one failed job: the operator's click, exactly as `showcase-worker retry-failed` and
 * `enqueue` make it (src/cli/click.ts: one transaction; marked as the operator's, so the
 * owner's limits do not count it; not made when the worker would refuse the source). Only a
 * job that is still `failed` is clicked: one retried or re-clicked meanwhile is left alone.
 */
export async function retryOne(
  characters: CollectionReference<DocumentData>,
  id: string,
  sources: SourcePolicy,
): Promise<RetryOutcome> {
  let code = 'UNKNOWN';
  const result = await clickProcess(characters, id, {
    sources,
    stillWanted: (visuals) => {
      const status = visuals.showcaseProcessingStatus;
      if (status !== 'failed')
        return `now ${typeof status === 'string' ? status : 'not requested'}`;
      const c = visuals.showcaseProcessingError?.code;
      code = typeof c === 'string' ? c : 'UNKNOWN';
      return undefined;
    },
  });
  if (result.kind === 'clicked') {
    return {
      action: 'retry',
      id,
      result: result.kind,
      changed: { from: result.previous ?? 'failed', to: 'removing-background', code },
    };
  }
  const reason =
    result.kind === 'in-progress'
      ? `in progress (${result.status})`
      : result.kind === 'changed' || result.kind === 'forbidden'
        ? result.reason
        : result.kind;
  return { action: 'retry', id, result: result.kind, reason };
}

/** Pause or Resume: what the fleet's intake flag was, and is now. */
export interface IntakeOutcome {
  action: 'pause' | 'resume';
  changed: { from: 'paused' | 'open'; to: 'paused' | 'open' };
  note: string;
}

/**
 * Pause or resume the whole fleet's intake: the flag `showcase-worker intake pause|resume`
 * sets (adapters/firestore/intake-flag.ts), which every worker follows within seconds.
 */
export async function setIntake(
  db: Firestore,
  fleetCollection: string,
  paused: boolean,
  by: string,
  note: string,
): Promise<IntakeOutcome> {
  const { from, to } = await setIntakeFlag(db, fleetCollection, { paused, by, note });
  const word = (p: boolean): 'paused' | 'open' => (p ? 'paused' : 'open');
  return {
    action: paused ? 'pause' : 'resume',
    changed: { from: word(from.paused), to: word(to.paused) },
    note: to.note,
  };
}

/** A limit as the answer names it: a number (0 = no limit) or `default` (no override). */
type LimitValue = number | 'default';

/** Set limits: what the override was and is for each limit given, and the limits now. */
export interface LimitOutcome {
  action: 'limit';
  userId: string;
  changed: Partial<Record<keyof UserLimits, { from: LimitValue; to: LimitValue }>>;
  view: UserLimitsView;
}

const LIMIT_FIELDS = [
  ['daily', 'dailyJobs', 'daily jobs'],
  ['active', 'maxActive', 'jobs at once'],
] as const;

/**
 * Reads the Spend panel's Set limits form (or a script's): the user, and each limit given (an
 * empty field leaves it as it is), under the rule `showcase-worker limit` applies to --daily
 * and --active (user-limits.ts), or what is wrong with it.
 */
export function limitRequest(
  form: ReadonlyMap<string, string>,
): { userId: string; change: LimitChange } | { problem: string } {
  const userId = (form.get('user') ?? '').trim();
  const bad = userIdProblem(userId);
  if (bad) return { problem: bad };
  const change: LimitChange = {};
  for (const [field, key, label] of LIMIT_FIELDS) {
    const text = (form.get(field) ?? '').trim();
    if (text === '') continue;
    const parsed = parseLimitSetting(text, key, label);
    if ('problem' in parsed) return { problem: parsed.problem };
    change[key] = parsed.value;
  }
  if (change.dailyJobs === undefined && change.maxActive === undefined) {
    return {
      problem: 'give daily jobs or jobs at once: a whole number (0 = no limit) or "default"',
    };
  }
  return { userId, change };
}

/**
 * Sets a user's override as `showcase-worker limit <userId> --daily … --active …` does (the
 * same module writes it: adapters/firestore/limit-override.ts), then reads the limits back.
 */
export async function setLimits(
  db: Firestore,
  userId: string,
  change: LimitChange,
  configured: UserLimits,
  now: number,
): Promise<LimitOutcome> {
  const { before, after } = await writeLimitOverride(db, userId, change, now);
  const changed: LimitOutcome['changed'] = {};
  for (const [, key] of LIMIT_FIELDS) {
    if (change[key] !== undefined) {
      changed[key] = { from: before[key] ?? 'default', to: after[key] ?? 'default' };
    }
  }
  return {
    action: 'limit',
    userId,
    changed,
    view: await readUserLimits(db, userId, configured, now),
  };
}
