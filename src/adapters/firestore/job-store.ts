import { randomUUID } from 'node:crypto';
import {
  FieldValue,
  Timestamp,
  type CollectionReference,
  type Firestore,
  type UpdateData,
  type DocumentData,
} from 'firebase-admin/firestore';
import type { JobError } from '../../jobs/errors.js';
import {
  LeaseLostError,
  type ClaimResult,
  type JobRequest,
  type JobResult,
  type JobStore,
  type Lease,
  type Usage,
} from '../../jobs/ports.js';
import { ERROR_CODES } from '../../jobs/errors.js';
import type { InProgressStatus } from '../../jobs/status.js';
import { F, isClaimable, viewOf, type JobRecord } from './job-fields.js';
import { isAlive, skewMarginMs } from '../../jobs/fleet.js';

export interface JobStoreOptions {
  collection: string;
  owner: string;
  leaseMs: number;
  maxAttempts: number;
  now?: () => number;
  /**
   * Workers' heartbeats: a running job whose owner has none fresh is claimable at once,
   * whatever its lease says (the lease stays the backstop). Absent: leases only.
   */
  presence?: { collection: string; timeoutMs: number };
  /** Counts the documents read and written for a job (transaction retries included). */
  onOps?: (characterId: string, reads: number, writes: number) => void;
}

/**
 * Job ownership on the character document itself. Every write is a transaction that first
 * checks the lease is still ours, so a worker that lost its job (paused, partitioned, slow)
 * can never overwrite the work of the worker that took it over.
 */
export function createFirestoreJobStore(db: Firestore, opts: JobStoreOptions): JobStore {
  const col: CollectionReference<DocumentData> = db.collection(opts.collection);
  const now = opts.now ?? Date.now;
  const leaseUntil = () => Timestamp.fromMillis(now() + opts.leaseMs);
  const ops = (id: string, reads: number, writes: number) => opts.onOps?.(id, reads, writes);

  /**
   * Whether a job's owner has no fresh heartbeat. Read outside the transaction on purpose: an
   * owner seen dead has seen its own coverage run out (src/jobs/fleet.ts `holds`), so it stops
   * the job before any paid call or write even if it beats again later.
   */
  async function ownerIsDead(characterId: string, owner: string): Promise<boolean> {
    if (!opts.presence) return false;
    const snap = await db.collection(opts.presence.collection).doc(owner).get();
    ops(characterId, 1, 0);
    const expiresAt: unknown = snap.data()?.expiresAt;
    const seen = expiresAt instanceof Timestamp ? { expiresAt: expiresAt.toMillis() } : undefined;
    return !isAlive(seen, now(), skewMarginMs(opts.presence.timeoutMs));
  }

  async function owned(
    lease: Lease,
    update: (record: JobRecord) => UpdateData<DocumentData>,
  ): Promise<Lease> {
    const ref = col.doc(lease.characterId);
    const result = await db.runTransaction(async (tx) => {
      const snap = await tx.get(ref);
      ops(lease.characterId, 1, 0);
      const { job } = viewOf(snap.data());
      if (
        !job ||
        job.state !== 'running' ||
        job.owner !== opts.owner ||
        job.jobId !== lease.jobId
      ) {
        throw new LeaseLostError(lease.characterId);
      }
      const data = update(job);
      tx.update(ref, data);
      const expires: unknown = data[`${F.job}.leaseExpiresAt`];
      return expires instanceof Timestamp ? { ...lease, expiresAt: expires.toMillis() } : lease;
    });
    ops(lease.characterId, 0, 1);
    return result;
  }

  return {
    async claim(request: JobRequest): Promise<ClaimResult> {
      const ref = col.doc(request.characterId);
      const result = await db.runTransaction(async (tx): Promise<ClaimResult> => {
        const snap = await tx.get(ref);
        ops(request.characterId, 1, 0);
        if (!snap.exists) return { kind: 'skipped', reason: 'missing' };
        const data = snap.data();
        const view = viewOf(data);
        if (!view.status || view.status === 'complete' || view.status === 'failed') {
          return { kind: 'skipped', reason: 'not-requested' };
        }
        if (!isClaimable(view, now())) {
          const owner = view.job?.owner;
          if (!owner || owner === opts.owner || !(await ownerIsDead(request.characterId, owner))) {
            return { kind: 'skipped', reason: 'held' };
          }
        }

        const previous = view.job;
        // A job not running (or never seen) under an in-progress status is a new click;
        // a running one with an expired lease is the same request, recovered.
        const isNewRequest =
          !previous || (previous.state !== 'running' && previous.state !== 'released');
        const attempts = isNewRequest
          ? 1
          : previous.state === 'released'
            ? previous.attempts
            : previous.attempts + 1;
        const at = Timestamp.fromMillis(now());
        if (attempts > opts.maxAttempts) {
          tx.update(ref, {
            [F.status]: 'failed',
            [F.error]: errorField(
              'ATTEMPTS_EXHAUSTED',
              ERROR_CODES.ATTEMPTS_EXHAUSTED.message,
              view.status,
              at,
            ),
            [`${F.job}.state`]: 'failed',
            [`${F.job}.owner`]: null,
            [`${F.job}.leaseExpiresAt`]: null,
            [`${F.job}.finishedAt`]: at,
          });
          return { kind: 'exhausted', attempts: attempts - 1 };
        }
        const requestedAt =
          isNewRequest || !previous ? (snap.updateTime ?? at) : previous.requestedAt;
        const record: JobRecord = {
          jobId: isNewRequest || !previous ? randomUUID() : previous.jobId,
          state: 'running',
          owner: opts.owner,
          leaseExpiresAt: leaseUntil(),
          attempts,
          requestedAt,
          claimedAt: at,
          stage: view.status,
          // A recovered request keeps the bill of its earlier attempts.
          ...(!isNewRequest && previous?.calls ? { calls: previous.calls } : {}),
          ...(!isNewRequest && previous?.credits !== undefined
            ? { credits: previous.credits }
            : {}),
        };
        tx.update(ref, {
          [F.job]: record,
          ...(isNewRequest ? { [F.error]: FieldValue.delete() } : {}),
        });
        return {
          kind: 'claimed',
          document: data,
          lease: {
            characterId: request.characterId,
            jobId: record.jobId,
            owner: opts.owner,
            attempt: attempts,
            recovered: !isNewRequest,
            statusAtClaim: view.status,
            expiresAt: record.leaseExpiresAt?.toMillis() ?? 0,
            requestedAt: requestedAt.toMillis(),
          },
        };
      });
      if (result.kind !== 'skipped') ops(request.characterId, 0, 1);
      return result;
    },

    renew: (lease, usage: Usage) =>
      owned(lease, () => ({
        [`${F.job}.leaseExpiresAt`]: leaseUntil(),
        ...usageIncrements(usage),
      })),

    writeStage: (lease, status: InProgressStatus, usage: Usage) =>
      owned(lease, () => ({
        [F.status]: status,
        [`${F.job}.stage`]: status,
        [`${F.job}.leaseExpiresAt`]: leaseUntil(),
        ...usageIncrements(usage),
      })),

    async complete(lease, result: JobResult, usage: Usage) {
      await owned(lease, (job) => ({
        [F.status]: 'complete',
        [F.imageUrl]: result.url,
        [F.processed]: true,
        ...finished(job, 'complete', now()),
        ...usageIncrements(usage),
      }));
    },

    async fail(lease, error: JobError, stage: InProgressStatus, usage: Usage) {
      await owned(lease, (job) => ({
        [F.status]: 'failed',
        [F.error]: errorField(error.code, error.message, stage, Timestamp.fromMillis(now())),
        ...finished(job, 'failed', now()),
        ...usageIncrements(usage),
      }));
    },

    async release(lease, usage: Usage) {
      await owned(lease, () => ({
        [`${F.job}.state`]: 'released',
        [`${F.job}.owner`]: null,
        [`${F.job}.leaseExpiresAt`]: null,
        ...usageIncrements(usage),
      }));
    },
  };
}

/** Calls and credits accumulate over every attempt of a request (reset by a new click). */
function usageIncrements(usage: Usage): UpdateData<DocumentData> {
  if (usage.credits === 0 && usage.calls.removeBackground === 0 && usage.calls.upscale === 0) {
    return {};
  }
  return {
    [`${F.job}.calls.removeBackground`]: FieldValue.increment(usage.calls.removeBackground),
    [`${F.job}.calls.upscale`]: FieldValue.increment(usage.calls.upscale),
    [`${F.job}.credits`]: FieldValue.increment(usage.credits),
  };
}

function finished(
  job: JobRecord,
  state: 'complete' | 'failed',
  nowMs: number,
): UpdateData<DocumentData> {
  return {
    [`${F.job}.state`]: state,
    [`${F.job}.owner`]: null,
    [`${F.job}.leaseExpiresAt`]: null,
    [`${F.job}.finishedAt`]: Timestamp.fromMillis(nowMs),
    [`${F.job}.durationMs`]: nowMs - job.requestedAt.toMillis(),
  };
}

function errorField(code: string, message: string, stage: string, at: Timestamp) {
  return { code, message, stage, at };
}
