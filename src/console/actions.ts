import type { CollectionReference, DocumentData, Firestore } from 'firebase-admin/firestore';
import { setIntakeFlag } from '../adapters/firestore/intake-flag.js';
import type { SourcePolicy } from '../adapters/http/url-policy.js';
import { clickProcess, type ClickResult } from '../cli/click.js';

/** What an action did, for its answer and its log line. */
export type ActionOutcome = RetryOutcome | IntakeOutcome;

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
