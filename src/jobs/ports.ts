import type { CallTicket } from './call-window.js';
import type { Observable } from 'rxjs';
import type { JobError } from './errors.js';
import type { PresenceRecord, PresenceSeen } from './fleet.js';
import type { WriteNotes } from './job-times.js';
import type { RoundTripCounter } from './round-trips.js';
import type { BoundSource } from './source-binding.js';
import type { InProgressStatus, JobStatus } from './status.js';

/**
 * The pipeline's view of the outside world. Adapters implement these; the pipeline and its
 * tests never see an SDK. (The fleet's words, presence, coverage and grant, are in fleet.ts.)
 *
 * Glossary of the job unit (src/pipeline/run-job.ts and its collaborators):
 * - request: a character document seen in an in-progress status (a click, a stuck job).
 * - job: one request from its claim to its final write; `jobId` changes with each new click.
 * - claim: taking a request with a lease; a recovery claims the same job again (`attempt` + 1).
 * - lease: the proof, renewed while the job runs, that this worker owns it; every write carries it.
 * - writer: the job's writes in order (status-sink.ts); the final one is complete or failed.
 * - fence: whether a job claimed at a given time is surely still ours (no heartbeat gap since);
 *   a lapse is the moment coverage runs out, and every running job is presumed taken over.
 * - slot: one of an owner's USER_MAX_ACTIVE running jobs, taken before the claim.
 * - ticket: the job as the daily limit sees it (owner, jobId, the day of the click).
 * - admission: the ticket counted against its owner's day, before the first paid call.
 * - settlement: what a job that paid adds to its owner's day, in the commit of its final write.
 * - refund: a counted job that made no paid call no longer counts, after its final write.
 * - checkpoint: a paid stage's output kept until the job completes, so a recovery pays nothing.
 * - round trip: a Google request the job waited for (jobs/round-trips.ts).
 */

/** A character document seen in an in-progress state: maybe work to do. */
export interface JobRequest {
  characterId: string;
  /** Where it was seen: the live listener, the periodic sweep, or a dead worker's jobs. */
  origin: 'listener' | 'sweep' | 'takeover';
  /** When this process saw it, on its wall clock: for logs only, no decision may read it. */
  seenAt: number;
  /** Held by a worker that is no longer alive: served before other waiting requests. */
  takeover?: boolean;
  /** Set at its slot: its owner has no other job here (a new user's); its calls go first. */
  ownersFirst?: boolean;
  /** The document's `meta.userId` as seen in the snapshot: the round-robin queue it waits in. */
  ownerId?: string;
  /** Who clicked, as seen in the snapshot: operator clicks take no per-user slot. */
  requestedBy?: 'operator' | 'user';
  /**
   * The document as the listener saw it, and that version's update time: a fresh click is
   * claimed by one write conditioned on that version, with no read (the transaction is the
   * fallback when the document changed since). Absent for the sweep.
   */
  document?: unknown;
  updateTime?: SnapshotTime;
  /** A released job's releaser (leaving, or lapsed): dealt among the others (dealing.ts). */
  releasedBy?: string;
  /** Dealt to a live worker and passed here after waiting: its download waits for the claim. */
  handedOver?: boolean;
  /** Tried and deferred before: another worker may hold it by now, so it claims, then downloads. */
  deferred?: boolean;
}

/** A Firestore update time, exact (microseconds matter to a precondition). */
export interface SnapshotTime {
  seconds: number;
  nanoseconds: number;
}

/** Proof that this worker owns a job until `expiresAt`; every write of the job carries it. */
export interface Lease {
  characterId: string;
  /** Identifies the request being processed; changes with each new click. */
  jobId: string;
  owner: string;
  /** 1 for the first claim of a request; higher when recovered after a crash or lost lease. */
  attempt: number;
  /** The same request claimed again (after a crash, a lost lease or a release). */
  recovered: boolean;
  /** The document's status when claimed: writes of lower-ranked stages are skipped. */
  statusAtClaim: JobStatus;
  expiresAt: number;
  /** When the app's click was first seen by a worker (ms epoch), for pickup latency. */
  requestedAt: number;
  /** Who clicked: the operator CLI (not counted against the user's limits) or the app. */
  requestedBy?: 'operator' | 'user';
  /** Credits earlier attempts spent (on the document; only a final write adds to the day). */
  creditsBefore?: number;
  /** The picture every attempt of the job processes (source-binding.ts). */
  source?: BoundSource;
}

export type ClaimResult =
  | { kind: 'claimed'; lease: Lease; document: unknown }
  | { kind: 'skipped'; reason: 'not-requested' | 'held' | 'missing' }
  | { kind: 'exhausted'; attempts: number }
  /** Over USER_DAILY_REQUEST_LIMIT: written `failed` by the claim itself (request-limit.ts). */
  | { kind: 'refused'; limit: number; message: string };

export interface JobResult {
  url: string;
  path: string;
  width: number;
  height: number;
  bytes: number;
}

export interface JobStore {
  /** Transactionally takes the job if it is requested and not held by a live lease. */
  claim(request: JobRequest): Promise<ClaimResult>;
  /** Extends the lease; rejects with LeaseLostError when another worker owns it now. */
  renew(lease: Lease, write: OwnedWrite): Promise<Lease>;
  /** Writes the stage status and extends the lease (rejects with LeaseLostError). */
  writeStage(lease: Lease, status: InProgressStatus, write: OwnedWrite): Promise<Lease>;
  complete(
    lease: Lease,
    result: JobResult,
    write: OwnedWrite,
    settlement?: DaySettlement,
  ): Promise<void>;
  fail(
    lease: Lease,
    error: JobError,
    stage: InProgressStatus,
    write: OwnedWrite,
    settlement?: DaySettlement,
  ): Promise<void>;
  /** Gives the job back (shutdown) so another worker can claim it at once. */
  release(lease: Lease, write: OwnedWrite): Promise<void>;
}

/**
 * One owned write, as the status sink makes it. A write that failed in a way that may have
 * landed (its answer lost, then the read-back failed too) is sent again with the same `id`,
 * so the store's read-back recognises it instead of writing it twice.
 */
export interface OwnedWrite {
  /** Stored as `showcaseJob.writeId`. */
  id: string;
  /** Calls and credits since the previous write, added to the job's totals (crash-proof bill). */
  usage: Usage;
  /** Stage times and the final write's round trips, carried for the console (job-times.ts). */
  notes?: WriteNotes;
}

/**
 * What a job that paid adds to its owner's day (`UserQuota.settlement`). Its final write
 * carries it in the same commit: it lands when the job ends and only then, once, whatever a
 * crash or a lost answer does.
 */
export interface DaySettlement {
  userId: string;
  /** The job counts in the UTC day of its click. */
  requestedAt: number;
  credits: number;
  /** Add the job itself too: its admission did not count it (no daily limit applied). */
  countJob: boolean;
}

/** One job as the per-user limits see it. */
export interface QuotaTicket {
  userId: string;
  characterId: string;
  /** Counted once per jobId: retries, recoveries and replicas never count a job twice. */
  jobId: string;
  /** The job counts in the UTC day of its click (stable across recoveries). */
  requestedAt: number;
}

export type Admission =
  /**
   * `counted`: the day's count holds the job from now on (its owner has a daily limit). False
   * when no limit applies: nothing is read or written then, and the final write of a job that
   * paid counts it (`settlement`).
   */
  | { kind: 'admitted'; counted: boolean }
  /** Over the daily limit: `limit` jobs already counted today; the count resets at `resetsAt`. */
  | { kind: 'refused'; limit: number; resetsAt: number };

export type SlotResult =
  /**
   * `holder`: this call took the slot and must give it back. False when the character already
   * had one (another worker's request for the same click): it stays the first taker's.
   */
  { kind: 'acquired'; holder: boolean } | { kind: 'busy'; limit: number };

/**
 * Per-user limits, counted exactly across replicas (USER_DAILY_JOB_LIMIT, USER_MAX_ACTIVE).
 * A job is admitted before its first paid call and refunded when it ends without one.
 */
export interface UserQuota {
  /** Whether USER_MAX_ACTIVE (or an override) can apply: slots are only taken then. */
  readonly slotsEnabled: boolean;
  /** Counts the job against its owner's day, once per jobId, or refuses it. */
  admit(ticket: QuotaTicket): Promise<Admission>;
  /**
   * A job that paid adds its credits (and, when its admission did not count it, itself) to its
   * owner's day: what its final write carries. Undefined when there is nothing to add.
   */
  settlement(
    ticket: QuotaTicket,
    spent: { credits: number; counted: boolean },
  ): DaySettlement | undefined;
  /** After the final write of a counted job that made no paid call: it no longer counts. */
  refund(ticket: QuotaTicket): Promise<void>;
  /** Takes one of the owner's running slots for this character, or says all are in use. */
  acquireSlot(userId: string, characterId: string): Promise<SlotResult>;
  /** Gives the character's slot back (idempotent). */
  releaseSlot(userId: string, characterId: string): Promise<void>;
}

/** Requests as they happen (listener) and as they are found by a periodic query (sweep). */
export interface RequestFeed {
  /** Hot changes; errors when the listener breaks (the pipeline resubscribes). */
  listen(): Observable<JobRequest>;
  /**
   * The listener's documents that stopped being claimable (claimed by a live lease, or no
   * longer a click or a released job), by character id: what the dealing stage holds for
   * another worker is forgotten. From the same snapshots as `listen`, in order with its
   * requests, no extra read; may repeat, and names documents never requested.
   */
  readonly taken$: Observable<string>;
  /**
   * In-progress documents whose lease is missing or expired (at the query's read time), or
   * whose owner is not alive. `seenAt` stamps the requests.
   */
  findUnowned(seenAt: number): Promise<JobRequest[]>;
}

export interface SourceFetcher {
  /**
   * The original image's bytes, from `gs://` or an allowed `https://` URL. `ownerId` is the
   * document's `meta.userId`: a `gs://` object must be theirs (SOURCE_GS_PATHS).
   */
  fetch(imageUrl: string, ownerId: string, signal: AbortSignal): Promise<Buffer>;
}

/** An image ClipDrop made, and the credits it cost. */
export interface PaidImage {
  image: Buffer;
  credits: number;
}

export interface ImageService {
  removeBackground(image: Buffer, signal: AbortSignal, opts?: PaidCallOptions): Promise<PaidImage>;
  upscale(
    image: Buffer,
    size: Size,
    signal: AbortSignal,
    opts?: PaidCallOptions,
  ): Promise<PaidImage>;
}

export interface PaidCallOptions {
  /** Queued ahead of others for the limiter, and may use its reserve (call-window.ts). */
  priority?: CallPriority;
  /** The job's admission (call-window.ts): its calls are counted there until sent. */
  ticket?: CallTicket;
}

/** Calls that go first, highest first: a dead worker's job, then a new user's first job. */
export type CallPriority = 'takeover' | 'new-user';

/** Paid stages whose output is kept until the job completes. */
export type Checkpoint = 'cutout' | 'upscaled';

/**
 * Images kept in the bucket so that nothing is paid for twice: each paid stage's output
 * until its job completes (crash recovery), and finished results by content (re-clicks).
 */
export interface WorkCache {
  findResult(key: string, ownerId: string, signal: AbortSignal): Promise<Buffer | undefined>;
  saveResult(key: string, ownerId: string, png: Buffer, signal: AbortSignal): Promise<void>;
  findCheckpoint(
    characterId: string,
    key: string,
    stage: Checkpoint,
    signal: AbortSignal,
  ): Promise<Buffer | undefined>;
  saveCheckpoint(
    characterId: string,
    key: string,
    stage: Checkpoint,
    data: Buffer,
    signal: AbortSignal,
  ): Promise<void>;
  clearCheckpoints(characterId: string, key: string): Promise<void>;
}

/** ClipDrop calls a job made and the credits they cost. */
export interface Usage {
  calls: { removeBackground: number; upscale: number };
  credits: number;
}

export interface ResultStore {
  /** Stores a PNG and returns a URL a browser can load. */
  savePng(path: string, png: Buffer, signal: AbortSignal): Promise<string>;
}

export interface Size {
  width: number;
  height: number;
}

export class LeaseLostError extends Error {
  override readonly name: string = 'LeaseLostError';
  constructor(
    readonly characterId: string,
    message = `lease on ${characterId} is held by another worker`,
  ) {
    super(message);
  }
}

/**
 * An owned write that was sent and not confirmed: its answer was lost and the read that would
 * tell failed too, so it may have landed. The status sink sends it again as it was (same
 * `writeId`), and the store recognises it if it did. Keeps the cause's `code`, so it is
 * classified (transient or not) as the cause is.
 */
export class WriteOutcomeUnknownError extends Error {
  override readonly name: string = 'WriteOutcomeUnknownError';
  readonly code: unknown;
  constructor(
    readonly characterId: string,
    cause: unknown,
  ) {
    super(`a write to ${characterId} may have landed: ${String(cause)}`, { cause });
    this.code = (cause as { code?: unknown } | null)?.code;
  }
}

/**
 * This worker's heartbeats had a gap another worker could have taken for its death: every job
 * claimed before it is presumed taken over, and stops before any paid call or write.
 */
export class PresenceLapsedError extends LeaseLostError {
  override readonly name = 'PresenceLapsedError';
  constructor(characterId: string) {
    super(characterId, `presence lapsed since ${characterId} was claimed`);
  }
}

/**
 * What this worker knows locally about its own heartbeats (no Firestore round trip): whether a
 * job claimed at `claimedAt` is still surely its own, and a signal when coverage runs out.
 */
export interface Fence {
  holds(claimedAt: number): boolean;
  /** Emits when the heartbeat coverage runs out: every running job is presumed lost. */
  readonly lapses$: Observable<void>;
}

/** Firestore documents read and written on behalf of one job (claim to final write). */
export interface FirestoreOps {
  reads: number;
  writes: number;
}

/** The logging the pipeline needs; winston's Logger satisfies it. */
export interface Log {
  error(message: string, fields?: Record<string, unknown>): unknown;
  warn(message: string, fields?: Record<string, unknown>): unknown;
  info(message: string, fields?: Record<string, unknown>): unknown;
  debug(message: string, fields?: Record<string, unknown>): unknown;
  child(fields: Record<string, unknown>): Log;
}

/** Image work done locally (sharp), behind a port so the pipeline can run on fakes. */
export interface ImageSteps {
  /** Validates the source and makes it acceptable to background removal. */
  prepareSource(input: Buffer): Promise<{ data: Buffer; size: Size }>;
  /**
   * Makes the cut-out acceptable to the upscaler, opaque (so it answers a JPEG, far lighter to
   * decode than a transparent WebP); returns the size sent.
   */
  prepareForUpscale(input: Buffer): Promise<{ data: Buffer; size: Size }>;
  /** The cut-out's alpha, compact: what the job keeps of the cut-out for finalizePng. */
  alphaMask(cutout: Buffer): Promise<Buffer>;
  /** Re-encodes the final image as a PNG with alpha: `mask` (alphaMask), scaled to fit. */
  finalizePng(input: Buffer, mask?: Buffer): Promise<{ data: Buffer; size: Size }>;
}

/** How a job ended, for logs, metrics and tests. */
export interface JobOutcome {
  characterId: string;
  /** deferred: not claimed because its owner is at USER_MAX_ACTIVE; requested again later. */
  kind: 'complete' | 'failed' | 'skipped' | 'lost' | 'exhausted' | 'released' | 'deferred';
  code?: string;
  durationMs: number;
  /** Firestore reads and writes the job cost this worker (when the adapter counts them). */
  firestore?: FirestoreOps;
  /** Google requests of a claimed job up to its last write (jobs/round-trips.ts). */
  roundTrips?: { sequential: number; total: number };
}

/**
 * Lets adapters count the Google requests of the job on whose behalf a call runs: the
 * pipeline runs each of a job's calls inside `run`, the adapters report to the counter.
 */
export interface RoundTripScope {
  run<T>(trips: RoundTripCounter, call: () => Promise<T>): Promise<T>;
  /** What the job's outcome reports: nothing where no adapter counts. */
  report(trips: RoundTripCounter): JobOutcome['roundTrips'];
}

/**
 * What the pipeline reports as it works, for metrics. Every member is optional to call
 * sites: `noTelemetry` does nothing.
 */
export interface Telemetry {
  jobClaimed(pickupMs: number): void;
  stageFinished(stage: InProgressStatus, durationMs: number): void;
  jobFinished(outcome: JobOutcome): void;
  listenerResubscribed(): void;
  /** A job held back by a per-user limit: refused (daily) or deferred (active). */
  userLimitHit?(limit: 'daily' | 'active' | 'requests'): void;
}

export const noTelemetry: Telemetry = {
  jobClaimed: () => undefined,
  stageFinished: () => undefined,
  jobFinished: () => undefined,
  listenerResubscribed: () => undefined,
};

/*
 * The fleet's run-time loop (pipeline/fleet-loop.ts) sees the fleet's adapters through these:
 * presence, the quota ledger and the sweep lease (adapters/firestore/), the takeover query
 * (the request feed) and the ClipDrop rate limiter.
 */

/** The fleet as this worker last read it. */
export interface FleetView {
  /** The read's time (Firestore's clock), against which `alive` was judged. */
  at: number;
  workers: PresenceRecord[];
  alive: ReadonlySet<string>;
}

/** This worker's heartbeat, and its reads of the fleet's heartbeats. */
export interface FleetPresence {
  /** The first beat acknowledged and the fleet read once: intake may start. */
  start(): Promise<void>;
  /** Stops beating and deletes this worker's document (a clean stop needs no timeout). */
  stop(): Promise<void>;
  readonly fence: Pick<Fence, 'lapses$'>;
  /** A fresh view after every read of the fleet. */
  readonly views$: Observable<FleetView>;
  /** Beat now; `urgent`: a larger reservation is needed (at most one such beat per 250 ms). */
  nudge(urgent?: boolean): void;
  /** Deletes a dead worker's document once nothing refers to it. */
  forget(workerId: string): Promise<void>;
}

/** The fleet's quota ledger: each worker's grant of the key's requests per window. */
export interface QuotaLedger {
  /**
   * Applies the ledger's rule for this worker (src/jobs/fleet.ts `rebalance`) as a
   * compare-and-set, from the presence documents just read. Returns the limit this worker may use
   * now and its fair share; writes only when the ledger changes.
   */
  settle(
    presence: ReadonlyMap<string, PresenceSeen>,
    used: number,
  ): Promise<{ limit: number; target: number }>;
  /** Clean stop: its `used` requests (all it sent in the window) drain, the rest is free at once. */
  leave(used: number): Promise<void>;
}

/** The lease that makes one worker of the fleet run the sweep. */
export interface SweepLeader {
  /** Takes, keeps or observes the lease; true while leading. `alive`: the fleet just read. */
  tick(alive: (id: string) => boolean): Promise<boolean>;
  /** Whether this worker leads now (its last acknowledged lease, less the margin). */
  leading(): boolean;
  /** Clean stop: gives the lease up so another worker leads at its next tick. */
  resign(): Promise<void>;
}

/** A job a dead worker was running, and the status it was in (the paid calls it has left). */
export interface HeldJob {
  request: JobRequest;
  status: InProgressStatus;
}

/** The query for the jobs of workers seen dead. */
export interface TakeoverFeed {
  /** The in-progress jobs these (dead) workers were running; one small query each. */
  findHeldBy(owners: readonly string[], seenAt: number): Promise<HeldJob[]>;
}
