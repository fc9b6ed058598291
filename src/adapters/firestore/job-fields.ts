import {
  FieldValue,
  Timestamp,
  type DocumentData,
  type Firestore,
  type UpdateData,
} from 'firebase-admin/firestore';
import type { ClaimDecision, PreviousJob } from '../../jobs/claim.js';
import { ERROR_CODES } from '../../jobs/errors.js';
import type { Usage } from '../../jobs/ports.js';
import type { WriteNotes } from '../../jobs/job-times.js';
import type { BoundSource } from '../../jobs/source-binding.js';
import { isInProgress, type InProgressStatus, type JobStatus } from '../../jobs/status.js';

/**
 * The document fields the worker reads and writes (CONTRACT §1). Bookkeeping lives in one
 * map, `visuals.showcaseJob`, which the app ignores.
 */
export const F = {
  status: 'visuals.showcaseProcessingStatus',
  error: 'visuals.showcaseProcessingError',
  imageUrl: 'visuals.showcaseImageUrl',
  /** The app's picture (CONTRACT §1), which a job reads only at its claim (source-binding.ts). */
  source: 'visuals.imageUrl',
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
  /**
   * This attempt's stages (each carried by a write the job makes anyway): `startedAt` on
   * Firestore's clock as the worker knew it, `ms` on its monotonic clock (jobs/job-times.ts).
   */
  stages?: Partial<Record<string, { startedAt?: Timestamp; ms?: number }>>;
  /** The final write's: Google requests of the attempt that ended the job, itself included. */
  roundTrips?: { sequential: number; total: number };
  /** Who made the click this job serves; kept across recoveries. */
  requestedBy?: 'operator' | 'user';
  /**
   * Set to 'operator' by the operator CLI with its click (clients cannot write showcaseJob):
   * the next claim turns it into `requestedBy` and drops it.
   */
  click?: 'operator';
  /** Set with `click`: the `imageUrl` the CLI checked, which the claim binds the job to. */
  clickedUrl?: string;
  /**
   * The picture the job processes, recorded by its claim (the URL) and its first write after
   * reading it (`sha256`): every later attempt processes it (src/jobs/source-binding.ts).
   */
  source?: BoundSource;
  /**
   * A fresh id on each of the worker's writes: when a write's answer is lost (gRPC UNKNOWN,
   * which a commit that landed can get), the document read next says whether it landed.
   */
  writeId?: string;
}

export interface CharacterView {
  status: JobStatus | undefined;
  job: JobRecord | undefined;
  /** `visuals.imageUrl` when a string. */
  imageUrl: string | undefined;
  /** `meta.userId` when a string (not yet validated). */
  userId: string | undefined;
}

export function viewOf(data: unknown): CharacterView {
  const doc = data as { visuals?: Record<string, unknown>; meta?: unknown } | undefined;
  const visuals = doc?.visuals;
  const status = visuals?.showcaseProcessingStatus;
  const job = visuals?.showcaseJob;
  const userId = (doc?.meta as { userId?: unknown } | undefined)?.userId;
  return {
    status:
      isInProgress(status) || status === 'complete' || status === 'failed' ? status : undefined,
    job: job && typeof job === 'object' ? (job as JobRecord) : undefined,
    imageUrl: typeof visuals?.imageUrl === 'string' ? visuals.imageUrl : undefined,
    userId: typeof userId === 'string' ? userId : undefined,
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

/** The previous job as the claim decision reads it (src/jobs/claim.ts), times in ms. */
export function previousJobOf(job: JobRecord | undefined): PreviousJob | undefined {
  if (!job) return undefined;
  return {
    jobId: job.jobId,
    state: job.state,
    attempts: job.attempts,
    requestedAt: millisOf(job.requestedAt),
    requestedBy: job.requestedBy,
    click: job.click,
    calls: job.calls,
    credits: job.credits,
    source: boundSourceOf(job.source),
    clickedUrl: typeof job.clickedUrl === 'string' ? job.clickedUrl : undefined,
  };
}

/** A recorded source, when it is one (a record from before sources were recorded has none). */
function boundSourceOf(value: unknown): BoundSource | undefined {
  const source = value as { url?: unknown; sha256?: unknown } | null | undefined;
  if (typeof source?.url !== 'string') return undefined;
  return typeof source.sha256 === 'string'
    ? { url: source.url, sha256: source.sha256 }
    : { url: source.url };
}

/** A stored time in ms: any Timestamp-like value (another copy of the SDK's class too). */
function millisOf(value: unknown): number | undefined {
  const toMillis = (value as { toMillis?: unknown } | null | undefined)?.toMillis;
  return typeof toMillis === 'function' ? (toMillis.call(value) as number) : undefined;
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

/** A claim's write: the job record; a new click also clears the previous request's error. */
export function claimFields(
  { job, lease }: ClaimDecision & { kind: 'claim' },
  writeId: string,
): UpdateData<DocumentData> {
  const record: JobRecord = {
    ...job,
    leaseExpiresAt: Timestamp.fromMillis(job.leaseExpiresAt),
    requestedAt: Timestamp.fromMillis(job.requestedAt),
    claimedAt: Timestamp.fromMillis(job.claimedAt),
    writeId,
  };
  return { [F.job]: record, ...(lease.recovered ? {} : { [F.error]: FieldValue.delete() }) };
}

/**
 * A new click over USER_DAILY_REQUEST_LIMIT, ended by its claim: `failed` with
 * USER_QUOTA_EXCEEDED, its job record that of a request that never ran (held by nobody).
 */
export function refusedFields(
  { job }: ClaimDecision & { kind: 'claim' },
  message: string,
  writeId: string,
): UpdateData<DocumentData> {
  const at = Timestamp.fromMillis(job.claimedAt);
  const record: JobRecord = {
    jobId: job.jobId,
    state: 'failed',
    owner: null,
    leaseExpiresAt: null,
    attempts: job.attempts,
    requestedAt: Timestamp.fromMillis(job.requestedAt),
    claimedAt: at,
    finishedAt: at,
    stage: job.stage,
    durationMs: job.claimedAt - job.requestedAt,
    requestedBy: job.requestedBy,
    ...(job.source ? { source: job.source } : {}),
    writeId,
  };
  return {
    [F.status]: 'failed',
    [F.error]: errorField('USER_QUOTA_EXCEEDED', message, job.stage, at),
    [F.job]: record,
  };
}

/** A job past its attempts ends failed (ATTEMPTS_EXHAUSTED), held by nobody. */
export function exhaustedFields(
  stage: InProgressStatus,
  nowMs: number,
  writeId: string,
): UpdateData<DocumentData> {
  const at = Timestamp.fromMillis(nowMs);
  const { message } = ERROR_CODES.ATTEMPTS_EXHAUSTED;
  return {
    [F.status]: 'failed',
    [F.error]: errorField('ATTEMPTS_EXHAUSTED', message, stage, at),
    [`${F.job}.state`]: 'failed',
    [`${F.job}.owner`]: null,
    [`${F.job}.leaseExpiresAt`]: null,
    [`${F.job}.finishedAt`]: at,
    [F.writeId]: writeId,
  };
}

/** A job's final state: held by nobody, and how long its request took. */
export function finishedFields(
  requestedAtMs: number,
  state: 'complete' | 'failed',
  nowMs: number,
): UpdateData<DocumentData> {
  return {
    [`${F.job}.state`]: state,
    [`${F.job}.owner`]: null,
    [`${F.job}.leaseExpiresAt`]: null,
    [`${F.job}.finishedAt`]: Timestamp.fromMillis(nowMs),
    [`${F.job}.durationMs`]: nowMs - requestedAtMs,
  };
}

/** Calls and credits accumulate over every attempt of a request (reset by a new click). */
export function usageIncrements(usage: Usage): UpdateData<DocumentData> {
  if (usage.credits === 0 && usage.calls.removeBackground === 0 && usage.calls.upscale === 0) {
    return {};
  }
  return {
    [`${F.job}.calls.removeBackground`]: FieldValue.increment(usage.calls.removeBackground),
    [`${F.job}.calls.upscale`]: FieldValue.increment(usage.calls.upscale),
    [`${F.job}.credits`]: FieldValue.increment(usage.credits),
  };
}

/**
 * What a write carries for the record beside its own fields: usage increments, stage times,
 * the final write's round trips. Field by field, so stages written earlier stay.
 */
export function recordFields(
  usage: Usage,
  notes: WriteNotes | undefined,
): UpdateData<DocumentData> {
  const fields: UpdateData<DocumentData> = { ...usageIncrements(usage) };
  for (const [stage, time] of Object.entries(notes?.stages ?? {})) {
    if (time?.startedAt !== undefined) {
      fields[`${F.job}.stages.${stage}.startedAt`] = Timestamp.fromMillis(
        Math.round(time.startedAt),
      );
    }
    if (time?.ms !== undefined) fields[`${F.job}.stages.${stage}.ms`] = Math.round(time.ms);
  }
  if (notes?.roundTrips) fields[`${F.job}.roundTrips`] = { ...notes.roundTrips };
  return fields;
}

/** `visuals.showcaseProcessingError`. */
export function errorField(code: string, message: string, stage: string, at: Timestamp) {
  return { code, message, stage, at };
}
