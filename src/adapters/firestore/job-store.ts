import { randomUUID } from 'node:crypto';
import {
  Timestamp,
  type CollectionReference,
  type Firestore,
  type UpdateData,
  type DocumentData,
  type DocumentReference,
  type DocumentSnapshot,
  type Transaction,
} from 'firebase-admin/firestore';
import type { JobError } from '../../jobs/errors.js';
import {
  LeaseLostError,
  type ClaimResult,
  type DaySettlement,
  type JobRequest,
  type JobResult,
  type JobStore,
  type Lease,
  type OwnedWrite,
  WriteOutcomeUnknownError,
} from '../../jobs/ports.js';
import { isInProgress, type InProgressStatus } from '../../jobs/status.js';
import { countTrip, type RoundTripCounter } from '../../jobs/round-trips.js';
import { jobTrips } from '../round-trip-scope.js';
import { decideClaim } from '../../jobs/claim.js';
import {
  claimFields,
  errorField,
  exhaustedFields,
  F,
  finishedFields,
  isClaimable,
  previousJobOf,
  usageIncrements,
  viewOf,
  type CharacterView,
  type JobRecord,
} from './job-fields.js';
import { answerLost, answerWithin, GRPC, NoAnswerError } from './lost-answer.js';
import { settlementWrite } from './usage-docs.js';

export interface JobStoreOptions {
  collection: string;
  owner: string;
  leaseMs: number;
  maxAttempts: number;
  now?: () => number;
  /**
   * Whether a worker has a fresh heartbeat (presence.ts `createPresenceReader`: one read,
   * counted by `onRead`): a running job whose owner has none is claimable at once, whatever
   * its lease says (the lease stays the backstop). Absent: leases only.
   */
  ownerAlive?: (owner: string, onRead: (reads: number) => void) => Promise<boolean>;
  /**
   * How long an owned write may go unanswered before it is treated as a lost answer (read
   * back by its `writeId`, written again if it did not land). Absent: the SDK's 60 s.
   */
  answerMs?: number;
  /** Counts the documents read and written for a job (transaction retries included). */
  onOps?: (characterId: string, reads: number, writes: number) => void;
}

/**
 * Job ownership on the character document itself. Every write is conditioned on the lease
 * still being ours (the version of our last write, else a read or a transaction that checks
 * it), so a worker that lost its job (paused, partitioned, slow) can never overwrite the work
 * of the worker that took it over. Each write carries its `writeId` (the caller's: the same
 * on a retry of a write that may have landed), so a write whose answer was lost is recognised
 * by the read that follows instead of being made twice.
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
    if (!opts.ownerAlive) return false;
    return !(await opts.ownerAlive(owner, (reads) => ops(characterId, reads, 0)));
  }

  /** The claim of a requested document (src/jobs/claim.ts), as of the version read. */
  const decide = (
    characterId: string,
    job: JobRecord | undefined,
    status: InProgressStatus,
    updateTime: Timestamp | undefined,
  ) =>
    decideClaim(previousJobOf(job), status, {
      characterId,
      owner: opts.owner,
      nowMs: now(),
      leaseMs: opts.leaseMs,
      maxAttempts: opts.maxAttempts,
      documentUpdatedAtMs: updateTime?.toMillis(),
      newJobId: randomUUID,
    });

  /**
   * The update time of our last write to each job's document (`characterId/jobId`): while the
   * document is still at that version, nobody else has written it since, so it is still ours
   * and the next owned write is one `update` with that precondition, no read.
   */
  const versions = new Map<string, Timestamp>();
  const versionKey = (lease: Lease) => `${lease.characterId}/${lease.jobId}`;

  async function owned(
    lease: Lease,
    { id: writeId, usage }: OwnedWrite,
    fields: UpdateData<DocumentData>,
    terminal = false,
    settlement?: DaySettlement,
  ): Promise<Lease> {
    const ref = col.doc(lease.characterId);
    // Built once: its increments must land once, with this write (same writeId).
    const alongside = settlement && settlementWrite(db, settlement, now());
    const trips = jobTrips();
    const key = versionKey(lease);
    const update = { ...fields, ...usageIncrements(usage) };
    const write = { ...update, [F.writeId]: writeId };
    const withExpiry = (): Lease => {
      const expires: unknown = update[`${F.job}.leaseExpiresAt`];
      return expires instanceof Timestamp ? { ...lease, expiresAt: expires.toMillis() } : lease;
    };
    const wrote = (at: Timestamp): Lease => {
      if (terminal) versions.delete(key);
      else versions.set(key, at);
      return withExpiry();
    };
    // Once sent, an error that escapes may follow a write that landed (its answer lost, then
    // the read-back failed): the caller must send it again as it is (WriteOutcomeUnknownError).
    let sent = false;
    const send = (version: Timestamp) => {
      sent = true;
      return conditionalUpdate(trips, ref, write, version, alongside);
    };
    try {
      const known = versions.get(key);
      const fast = known && (await send(known));
      if (fast) return wrote(fast);
      // Someone else wrote the document since (the app, a re-click, another worker): read it,
      // check the job is still ours, and write conditioned on the version just read.
      for (let attempt = 0; attempt < 3; attempt += 1) {
        const snap = await countTrip(trips, () => ref.get());
        ops(ref.id, 1, 0);
        // An answer lost on the way back (the write landed): done, not written twice.
        if (snap.updateTime && writeIdOf(snap) === writeId) return wrote(snap.updateTime);
        assertOwned(snap.data(), lease, opts.owner);
        const at = snap.updateTime && (await send(snap.updateTime));
        if (at) return wrote(at);
      }
      // Still contended: the transaction retries until it gets a consistent view.
      sent = true;
      await transaction(trips, async (tx, read) => {
        const snap = await read(ref);
        // The SDK runs this again after a commit whose answer was lost.
        if (writeIdOf(snap) === writeId) return;
        assertOwned(snap.data(), lease, opts.owner);
        tx.update(ref, write);
        if (alongside) tx.set(alongside.ref, alongside.data, { merge: true });
      });
      ops(ref.id, 0, alongside ? 2 : 1);
      versions.delete(key);
      return withExpiry();
    } catch (err) {
      if (err instanceof LeaseLostError) {
        versions.delete(key);
        throw err;
      }
      throw sent ? new WriteOutcomeUnknownError(ref.id, err) : err;
    }
  }

  /**
   * One update with a `lastUpdateTime` precondition: the new version's update time, or
   * undefined when the document changed since `version` or the answer was lost (UNKNOWN,
   * CANCELLED or none within `answerMs`: the write may have landed, so the caller reads the
   * document; its `writeId` says).
   */
  async function conditionalUpdate(
    trips: RoundTripCounter | undefined,
    ref: DocumentReference,
    data: UpdateData<DocumentData>,
    version: Timestamp,
    alongside?: { ref: DocumentReference; data: DocumentData },
  ): Promise<Timestamp | undefined> {
    const commit = () =>
      alongside
        ? db
            .batch()
            .update(ref, data, { lastUpdateTime: version })
            .set(alongside.ref, alongside.data, { merge: true })
            .commit()
            .then(([result]) => result!)
        : ref.update(data, { lastUpdateTime: version });
    try {
      const result = await countTrip(trips, () => answerWithin(commit(), opts.answerMs));
      ops(ref.id, 0, alongside ? 2 : 1);
      return result.writeTime;
    } catch (err) {
      if (err instanceof NoAnswerError) return undefined;
      const code = (err as { code?: unknown }).code;
      if (code === GRPC.FAILED_PRECONDITION || answerLost(code)) return undefined;
      if (code === GRPC.NOT_FOUND) throw new LeaseLostError(ref.id);
      throw err;
    }
  }

  /**
   * A transaction, its requests counted: Firestore 7 folds the begin into the first read, so
   * each attempt is its reads plus one commit (or rollback).
   */
  async function transaction<T>(
    trips: RoundTripCounter | undefined,
    body: (
      tx: Transaction,
      read: (ref: DocumentReference) => Promise<DocumentSnapshot>,
    ) => Promise<T>,
  ): Promise<T> {
    let commit: (() => void) | undefined;
    try {
      return await db.runTransaction(async (tx) => {
        commit?.();
        const result = await body(tx, async (ref) => {
          const snap = await countTrip(trips, () => tx.get(ref));
          ops(ref.id, 1, 0);
          return snap;
        });
        commit = trips?.begin();
        return result;
      });
    } finally {
      commit?.();
    }
  }

  /**
   * A fresh click seen by the listener: claimed by one update conditioned on the version the
   * listener saw, so nobody (app, other worker) wrote in between. Undefined when that does not
   * apply (no snapshot, a recovery, the document changed, the answer lost): the read and the
   * transaction decide then. `tried` learns the claim it writes, by its `writeId`.
   */
  async function claimFresh(
    request: JobRequest,
    ref: DocumentReference,
    trips: RoundTripCounter | undefined,
    tried: Map<string, ClaimResult>,
  ): Promise<ClaimResult | undefined> {
    if (request.document === undefined || request.updateTime === undefined) return undefined;
    const view = viewOf(request.document);
    if (!isInProgress(view.status) || !isClaimable(view, now())) return undefined;
    const seen = new Timestamp(request.updateTime.seconds, request.updateTime.nanoseconds);
    const decision = decide(request.characterId, view.job, view.status, seen);
    // A recovery is decided by the read and the transaction.
    if (decision.kind !== 'claim' || decision.lease.recovered) return undefined;
    const { lease } = decision;
    const writeId = randomUUID();
    const result: ClaimResult = { kind: 'claimed', document: request.document, lease };
    tried.set(writeId, result);
    let written: Timestamp | undefined;
    try {
      written = await conditionalUpdate(trips, ref, claimFields(decision, writeId), seen);
    } catch (err) {
      if (err instanceof LeaseLostError) return undefined; // deleted: the transaction says so
      throw err;
    }
    if (!written) return undefined;
    versions.set(versionKey(lease), written);
    return result;
  }

  /**
   * Whether a document can be claimed now: refused (skipped, and why), or claimable with its
   * view and, when it is held by a worker seen dead, that owner. `deadOwner`: an owner already
   * seen without a fresh heartbeat, not read again.
   */
  async function verdict(
    snap: DocumentSnapshot,
    characterId: string,
    deadOwner?: string,
  ): Promise<
    | { refused: ClaimResult & { kind: 'skipped' } }
    | {
        refused?: undefined;
        view: CharacterView & { status: InProgressStatus };
        deadOwner?: string;
      }
  > {
    if (!snap.exists) return { refused: { kind: 'skipped', reason: 'missing' } };
    const view = viewOf(snap.data());
    const { status } = view;
    if (!status || status === 'complete' || status === 'failed') {
      return { refused: { kind: 'skipped', reason: 'not-requested' } };
    }
    // The lease is judged at the read's time: Firestore's clock, exact.
    if (isClaimable(view, snap.readTime.toMillis())) return { view: { ...view, status } };
    const owner = view.job?.owner;
    if (!owner || owner === opts.owner) return { refused: { kind: 'skipped', reason: 'held' } };
    if (owner === deadOwner || (await ownerIsDead(characterId, owner))) {
      return { view: { ...view, status }, deadOwner: owner };
    }
    return { refused: { kind: 'skipped', reason: 'held' } };
  }

  return {
    async claim(request: JobRequest): Promise<ClaimResult> {
      const ref = col.doc(request.characterId);
      const trips = jobTrips();
      // The claims written here by writeId: one the document shows landed, its answer lost.
      const tried = new Map<string, ClaimResult>();
      const landed = (snap: DocumentSnapshot): ClaimResult | undefined => {
        const result = tried.get(writeIdOf(snap) ?? '');
        if (result?.kind === 'claimed' && snap.updateTime) {
          versions.set(versionKey(result.lease), snap.updateTime);
        }
        return result;
      };
      const fast = await claimFresh(request, ref, trips, tried);
      if (fast) return fast;
      // Read before locking: most claims that get here lost a race to a live worker, and a
      // transaction that only reads still holds the document's lock (the server SDKs lock
      // pessimistically): for tens of seconds when this process dies mid-transaction, which
      // stalled the winner's next write on that document.
      const seen = await countTrip(trips, () => ref.get());
      ops(request.characterId, 1, 0);
      const mine = landed(seen);
      if (mine) return mine;
      const early = await verdict(seen, request.characterId);
      if (early.refused) return early.refused;
      const result = await transaction(trips, async (tx, read): Promise<ClaimResult> => {
        const snap = await read(ref);
        // The SDK runs this again after a commit whose answer was lost.
        const again = landed(snap);
        if (again) return again;
        // A dead owner just seen is not read again.
        const decided = await verdict(snap, request.characterId, early.deadOwner);
        if (decided.refused) return decided.refused;
        const { view } = decided;
        const decision = decide(request.characterId, view.job, view.status, snap.updateTime);
        const writeId = randomUUID();
        if (decision.kind === 'exhausted') {
          tried.set(writeId, decision);
          tx.update(ref, exhaustedFields(view.status, now(), writeId));
          return decision;
        }
        const claimed: ClaimResult = {
          kind: 'claimed',
          document: snap.data(),
          lease: decision.lease,
        };
        tried.set(writeId, claimed);
        tx.update(ref, claimFields(decision, writeId));
        return claimed;
      });
      if (result.kind !== 'skipped') ops(request.characterId, 0, 1);
      return result;
    },

    renew: (lease, write: OwnedWrite) =>
      owned(lease, write, { [`${F.job}.leaseExpiresAt`]: leaseUntil() }),

    writeStage: (lease, status: InProgressStatus, write: OwnedWrite) =>
      owned(lease, write, {
        [F.status]: status,
        [`${F.job}.stage`]: status,
        [`${F.job}.leaseExpiresAt`]: leaseUntil(),
      }),

    async complete(lease, result: JobResult, write: OwnedWrite, settlement?: DaySettlement) {
      await owned(
        lease,
        write,
        {
          [F.status]: 'complete',
          [F.imageUrl]: result.url,
          [F.processed]: true,
          ...finishedFields(lease.requestedAt, 'complete', now()),
        },
        true,
        settlement,
      );
    },

    async fail(
      lease,
      error: JobError,
      stage: InProgressStatus,
      write: OwnedWrite,
      settlement?: DaySettlement,
    ) {
      await owned(
        lease,
        write,
        {
          [F.status]: 'failed',
          [F.error]: errorField(error.code, error.message, stage, Timestamp.fromMillis(now())),
          ...finishedFields(lease.requestedAt, 'failed', now()),
        },
        true,
        settlement,
      );
    },

    async release(lease, write: OwnedWrite) {
      await owned(
        lease,
        write,
        {
          [`${F.job}.state`]: 'released',
          [`${F.job}.owner`]: null,
          [`${F.job}.leaseExpiresAt`]: null,
        },
        true,
      );
    },
  };
}

function writeIdOf(snap: DocumentSnapshot): string | undefined {
  return viewOf(snap.data()).job?.writeId;
}

/** Another worker's job now (or none): the caller lost it and must not write. */
function assertOwned(data: unknown, lease: Lease, owner: string): void {
  const { job } = viewOf(data);
  if (!job || job.state !== 'running' || job.owner !== owner || job.jobId !== lease.jobId) {
    throw new LeaseLostError(lease.characterId);
  }
}
