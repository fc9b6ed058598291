import type { Lease } from './ports.js';
import { sourceToBind, type BoundSource } from './source-binding.js';
import type { InProgressStatus } from './status.js';

/**
 * The claim decision: given the job a requested document holds (if any), whether claiming it
 * is a new click or the same request recovered, how many attempts that makes, and the job and
 * lease it writes. Pure: the job store reads the document, calls this, and writes the result
 * (both on its fast path and in its transaction). Times are ms epoch.
 */

/** The previous job on the document (`visuals.showcaseJob`), as the claim reads it. */
export interface PreviousJob {
  jobId: string;
  /** Absent when the record holds only an operator's click mark. */
  state?: 'running' | 'released' | 'complete' | 'failed';
  attempts: number;
  /** Absent on records no claim wrote (an operator's click mark). */
  requestedAt?: number;
  requestedBy?: 'operator' | 'user';
  click?: 'operator';
  calls?: { removeBackground: number; upscale: number };
  credits?: number;
  /** The picture the job is bound to (source-binding.ts). */
  source?: BoundSource;
  /** With an operator's click mark: the `imageUrl` the CLI checked. */
  clickedUrl?: string;
}

/** The job a claim writes (`visuals.showcaseJob` less its `writeId`). */
export interface ClaimedJob {
  jobId: string;
  state: 'running';
  owner: string;
  leaseExpiresAt: number;
  attempts: number;
  requestedAt: number;
  claimedAt: number;
  stage: InProgressStatus;
  requestedBy: 'operator' | 'user';
  calls?: { removeBackground: number; upscale: number };
  credits?: number;
  source?: BoundSource;
}

export interface ClaimContext {
  characterId: string;
  owner: string;
  nowMs: number;
  leaseMs: number;
  maxAttempts: number;
  /** The update time of the document version read: when a new click was made. */
  documentUpdatedAtMs: number | undefined;
  /** `visuals.imageUrl` in the version read: the picture a new user click binds its job to. */
  imageUrl?: string | undefined;
  newJobId: () => string;
}

export type ClaimDecision =
  /** Past `maxAttempts`: the job ends failed (ATTEMPTS_EXHAUSTED) after `attempts` made. */
  | { kind: 'exhausted'; attempts: number }
  /** `lease.recovered` false: a new click, whose write also clears the previous error. */
  | { kind: 'claim'; job: ClaimedJob; lease: Lease };

/**
 * A running job (its lease expired or its owner dead, else the document is not claimable) or
 * a released one is the same request; anything else (none, complete, failed, a click mark
 * alone) under an in-progress status is a new click.
 */
export function isRecovery(previous: Pick<PreviousJob, 'state'> | undefined): boolean {
  return previous?.state === 'running' || previous?.state === 'released';
}

/**
 * Who clicked for the request: a recovered job keeps its `requestedBy`; a new click is the
 * operator's when the CLI marked it.
 */
export function requestedByOf(
  previous: Pick<PreviousJob, 'state' | 'requestedBy' | 'click'> | undefined,
): 'operator' | 'user' {
  if (isRecovery(previous)) return previous?.requestedBy ?? 'user';
  return previous?.click === 'operator' ? 'operator' : 'user';
}

export function decideClaim(
  previous: PreviousJob | undefined,
  status: InProgressStatus,
  ctx: ClaimContext,
): ClaimDecision {
  const recovered = isRecovery(previous) ? previous : undefined;
  // A release at shutdown gives the job back without using up an attempt.
  const attempts = !recovered
    ? 1
    : recovered.state === 'released'
      ? recovered.attempts
      : recovered.attempts + 1;
  if (attempts > ctx.maxAttempts) return { kind: 'exhausted', attempts: attempts - 1 };
  const newClickAt = ctx.documentUpdatedAtMs ?? ctx.nowMs;
  const source = sourceToBind({
    recovered: recovered?.source,
    clickedUrl: !recovered && previous?.click === 'operator' ? previous.clickedUrl : undefined,
    imageUrl: ctx.imageUrl,
  });
  const job: ClaimedJob = {
    jobId: recovered ? recovered.jobId : ctx.newJobId(),
    state: 'running',
    owner: ctx.owner,
    leaseExpiresAt: ctx.nowMs + ctx.leaseMs,
    attempts,
    // A recovery keeps the click's time: its day is the one its owner's quota counted.
    requestedAt: recovered ? clickTimeOf(recovered, ctx.characterId) : newClickAt,
    claimedAt: ctx.nowMs,
    stage: status,
    requestedBy: requestedByOf(previous),
    // A recovered request keeps the bill of its earlier attempts.
    ...(recovered?.calls ? { calls: recovered.calls } : {}),
    ...(recovered?.credits !== undefined ? { credits: recovered.credits } : {}),
    // Every attempt of the job processes this picture, whatever the document says later.
    ...(source ? { source } : {}),
  };
  return { kind: 'claim', job, lease: leaseOf(ctx.characterId, job, recovered !== undefined) };
}

/**
 * A running or released job's click time. One without it was not written by a claim: it is
 * refused (the claim fails) rather than dated anew, which could count it in a second day.
 */
function clickTimeOf(job: PreviousJob, characterId: string): number {
  if (job.requestedAt === undefined) {
    throw new Error(`${characterId}: a ${job.state} job without requestedAt`);
  }
  return job.requestedAt;
}

/** The lease a claimed job gives its worker. */
export function leaseOf(characterId: string, job: ClaimedJob, recovered: boolean): Lease {
  return {
    characterId,
    jobId: job.jobId,
    owner: job.owner,
    attempt: job.attempts,
    recovered,
    statusAtClaim: job.stage,
    expiresAt: job.leaseExpiresAt,
    requestedAt: job.requestedAt,
    requestedBy: job.requestedBy,
    ...(job.credits ? { creditsBefore: job.credits } : {}),
    ...(job.source ? { source: job.source } : {}),
  };
}
