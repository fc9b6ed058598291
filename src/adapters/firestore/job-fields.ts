import { Timestamp, type Firestore } from 'firebase-admin/firestore';
import { isInProgress, type JobStatus } from '../../jobs/status.js';

/**
 * The document fields the worker reads and writes (CONTRACT §1). Bookkeeping lives in one
 * map, `visuals.showcaseJob`, which the app ignores.
 */
export const F = {
  status: 'visuals.showcaseProcessingStatus',
  error: 'visuals.showcaseProcessingError',
  imageUrl: 'visuals.showcaseImageUrl',
  processed: 'visuals.isShowcaseProcessed',
  job: 'visuals.showcaseJob',
  writeId: 'visuals.showcaseJob.writeId',
} as const;

/** `visuals.showcaseJob`: who holds the job, until when, and how it went. */
export interface JobRecord {
  jobId: string;
  /** running: held by `owner` until `leaseExpiresAt`; released: given back at shutdown. */
  state: 'running' | 'released' | 'complete' | 'failed';
  owner: string | null;
  leaseExpiresAt: Timestamp | null;
  attempts: number;
  requestedAt: Timestamp;
  claimedAt: Timestamp;
  finishedAt?: Timestamp;
  stage?: string;
  durationMs?: number;
  /** ClipDrop calls and credits over every attempt of this request. */
  calls?: { removeBackground: number; upscale: number };
  credits?: number;
  /** Who made the click this job serves; kept across recoveries. */
  requestedBy?: 'operator' | 'user';
  /**
   * Set to 'operator' by the operator CLI with its click (clients cannot write showcaseJob):
   * the next claim turns it into `requestedBy` and drops it.
   */
  click?: 'operator';
  /**
   * A fresh id on each of the worker's writes: when a write's answer is lost (gRPC UNKNOWN,
   * which a commit that landed can get), the document read next says whether it landed.
   */
  writeId?: string;
}

export interface CharacterView {
  status: JobStatus | undefined;
  job: JobRecord | undefined;
}

export function viewOf(data: unknown): CharacterView {
  const visuals = (data as { visuals?: Record<string, unknown> } | undefined)?.visuals;
  const status = visuals?.showcaseProcessingStatus;
  const job = visuals?.showcaseJob;
  return {
    status:
      isInProgress(status) || status === 'complete' || status === 'failed' ? status : undefined,
    job: job && typeof job === 'object' ? (job as JobRecord) : undefined,
  };
}

/** Whether a document is requested work that no live lease holds. */
export function isClaimable(view: CharacterView, nowMs: number, self?: string): boolean {
  if (!isInProgress(view.status)) return false;
  const job = view.job;
  if (!job || job.state !== 'running') return true;
  if (self !== undefined && job.owner === self) return false;
  return !job.leaseExpiresAt || job.leaseExpiresAt.toMillis() <= nowMs;
}

/**
 * Who clicked for the request a document holds: a job already running (or released) keeps
 * its `requestedBy`; a new request is the operator's when the CLI marked its click.
 */
export function requestedByOf(job: JobRecord | undefined): 'operator' | 'user' {
  if (job && (job.state === 'running' || job.state === 'released')) {
    return job.requestedBy ?? 'user';
  }
  return job?.click === 'operator' ? 'operator' : 'user';
}

/** Whether a document's job holds a lease that is still live at `nowMs`. */
export function holdsLiveLease(data: unknown, nowMs: number): boolean {
  const { job } = viewOf(data);
  return job?.state === 'running' && (job.leaseExpiresAt?.toMillis() ?? 0) > nowMs;
}

/**
 * Which of these characters' jobs hold a live lease at `nowMs`, by one batched read: for the
 * per-user slots (user-quota.ts), which must not read character documents themselves.
 */
export function createLiveJobsReader(
  db: Firestore,
  collection: string,
): (characterIds: readonly string[], nowMs: number) => Promise<Set<string>> {
  const col = db.collection(collection);
  return async (characterIds, nowMs) => {
    if (characterIds.length === 0) return new Set();
    const docs = await db.getAll(...characterIds.map((id) => col.doc(id)));
    return new Set(docs.filter((doc) => holdsLiveLease(doc.data(), nowMs)).map((doc) => doc.id));
  };
}
