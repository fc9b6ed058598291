import { randomUUID } from 'node:crypto';
import {
  Timestamp,
  type CollectionReference,
  type Firestore,
  type UpdateData,
  type DocumentData,
  type DocumentReference,
  type DocumentSnapshot,
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
import { decideClaim, type ClaimDecision } from '../../jobs/claim.js';
import { withinRequestLimit, type EarlyDownloads } from '../../jobs/request-limit.js';
import { asksForAnotherPicture } from '../../jobs/source-binding.js';
import {
  claimFields,
  errorField,
  exhaustedFields,
  F,
  finishedFields,
  isClaimable,
  previousJobOf,
  refusedFields,
  recordFields,
  viewOf,
  type CharacterView,
} from './job-fields.js';
import {
  countedOf as countedBy,
  countInTransaction,
  createRequestCounts,
  refusalOf,
  type Counted,
  type CountWrite,
} from './request-counts.js';
import { createStoreRpc } from './store-rpc.js';
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
  /**
   * USER_DAILY_REQUEST_LIMIT (0 or absent: none): a user's new clicks per UTC day, counted
   * in the claim's own commit (request-counts.ts); over it the claim ends the job failed.
   */
  dailyRequestLimit?: number;
}

/** A claim written here, by its `writeId`: what it stands for, and the request it counted. */
interface Tried {
  result: ClaimResult;
  counted?: Counted | undefined;
}

/**
 * Job ownership on the character document itself. Every write is conditioned on the lease
 * still being ours (the version of our last write, else a read or a transaction that checks
 * it), so a worker that lost its job (paused, partitioned, slow) can never overwrite the work
 * of the worker that took it over. Each write carries its `writeId` (the caller's: the same
 * on a retry of a write that may have landed), so a write whose answer was lost is recognised
 * by the read that follows instead of being made twice.
 */
export function createFirestoreJobStore(
  db: Firestore,
  opts: JobStoreOptions,
): JobStore & EarlyDownloads {
  const col: CollectionReference<DocumentData> = db.collection(opts.collection);
  const now = opts.now ?? Date.now;
  const leaseUntil = () => Timestamp.fromMillis(now() + opts.leaseMs);
  const ops = (id: string, reads: number, writes: number) => opts.onOps?.(id, reads, writes);
  const { conditionalUpdate, transaction } = createStoreRpc(db, { answerMs: opts.answerMs, ops });
  const limit = opts.dailyRequestLimit ?? 0;
  const counts = limit > 0 ? createRequestCounts(db, limit) : undefined;

  const countedOf = (decision: ClaimDecision, view: CharacterView) =>
    countedBy(counts, decision, view.userId);

  /**
   * Jobs whose document asks for another picture than theirs (source-binding.ts): their
   * writes leave the status alone, so the document is a new click once they end.
   */
  const otherPicture = new Set<string>();
  const noteOtherPicture = (lease: Lease, view: CharacterView) => {
    if (asksForAnotherPicture(view.status, view.imageUrl, lease.source)) {
      otherPicture.add(versionKey(lease));
    }
  };

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
    view: CharacterView,
    status: InProgressStatus,
    updateTime: Timestamp | undefined,
  ) =>
    decideClaim(previousJobOf(view.job), status, {
      characterId,
      owner: opts.owner,
      nowMs: now(),
      leaseMs: opts.leaseMs,
      maxAttempts: opts.maxAttempts,
      documentUpdatedAtMs: updateTime?.toMillis(),
      imageUrl: view.imageUrl,
      newJobId: randomUUID,
    });

  /**
   * The update time of our last write to each job's document (`characterId/jobId`): while the
   * document is still at that version, nobody else has written it since, so it is still ours
   * and the next owned write is one `update` with that precondition, no read.
   */
  const versions = new Map<string, Timestamp>();
  const versionKey = (lease: Lease) => `${lease.characterId}/${lease.jobId}`;
  const forgetJob = (key: string) => {
    versions.delete(key);
    otherPicture.delete(key);
  };

  async function owned(
    lease: Lease,
    { id: writeId, usage, notes }: OwnedWrite,
    fields: UpdateData<DocumentData>,
    terminal = false,
    settlement?: DaySettlement,
  ): Promise<Lease> {
    const ref = col.doc(lease.characterId);
    // Built once: its increments must land once, with this write (same writeId).
    const alongside = settlement && settlementWrite(db, settlement, now());
    const trips = jobTrips();
    const key = versionKey(lease);
    // The first read of the source is recorded with the write that follows it.
    const hash = lease.source?.sha256;
    const update = {
      ...fields,
      ...recordFields(usage, notes),
      ...(hash ? { [`${F.job}.source.sha256`]: hash } : {}),
    };
    // While the document asks for another picture, its status is the app's click: kept.
    const writeOf = (): UpdateData<DocumentData> => {
      const write: UpdateData<DocumentData> = { ...update, [F.writeId]: writeId };
      if (otherPicture.has(key)) delete write[F.status];
      return write;
    };
    const withExpiry = (): Lease => {
      const expires: unknown = update[`${F.job}.leaseExpiresAt`];
      return expires instanceof Timestamp ? { ...lease, expiresAt: expires.toMillis() } : lease;
    };
    const wrote = (at: Timestamp): Lease => {
      if (terminal) forgetJob(key);
      else versions.set(key, at);
      return withExpiry();
    };
    // Once sent, an error that escapes may follow a write that landed (its answer lost, then
    // the read-back failed): the caller must send it again as it is (WriteOutcomeUnknownError).
    let sent = false;
    const send = (version: Timestamp) => {
      sent = true;
      return conditionalUpdate(trips, ref, writeOf(), version, alongside);
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
        noteOtherPicture(lease, viewOf(snap.data()));
        const at = snap.updateTime && (await send(snap.updateTime));
        if (at) return wrote(at);
      }
      // Still contended: the transaction retries until it gets a consistent view.
      sent = true;
      await transaction(trips, async (tx, read) => {
        const [snap] = await read(ref);
        // The SDK runs this again after a commit whose answer was lost.
        if (snap && writeIdOf(snap) === writeId) return;
        assertOwned(snap?.data(), lease, opts.owner);
        noteOtherPicture(lease, viewOf(snap?.data()));
        tx.update(ref, writeOf());
        if (alongside) tx.set(alongside.ref, alongside.data, { merge: true });
      });
      ops(ref.id, 0, alongside ? 2 : 1);
      if (terminal) forgetJob(key);
      else versions.delete(key);
      return withExpiry();
    } catch (err) {
      if (err instanceof LeaseLostError) {
        forgetJob(key);
        throw err;
      }
      throw sent ? new WriteOutcomeUnknownError(ref.id, err) : err;
    }
  }

  /**
   * A fresh click seen by the listener: claimed by one update conditioned on the version the
   * listener saw, so nobody (app, other worker) wrote in between; a counted request is counted
   * in the same batch, on the version of its owner's day this worker knows (request-counts.ts),
   * or refused there when that count is at the limit. Undefined when that does not apply (no
   * snapshot, a recovery, a document changed, the answer lost): the read and the transaction
   * decide then. `tried` learns the claim it writes, by its `writeId`.
   */
  async function claimFresh(
    request: JobRequest,
    ref: DocumentReference,
    trips: RoundTripCounter | undefined,
    tried: Map<string, Tried>,
  ): Promise<ClaimResult | undefined> {
    if (request.document === undefined || request.updateTime === undefined) return undefined;
    const view = viewOf(request.document);
    if (!isInProgress(view.status) || !isClaimable(view, now())) return undefined;
    const seen = new Timestamp(request.updateTime.seconds, request.updateTime.nanoseconds);
    const decision = decide(request.characterId, view, view.status, seen);
    // A recovery is decided by the read and the transaction.
    if (decision.kind !== 'claim' || decision.lease.recovered) return undefined;
    const { lease } = decision;
    const writeId = randomUUID();
    const counted = countedOf(decision, view);
    let result: ClaimResult = { kind: 'claimed', document: request.document, lease };
    let fields = claimFields(decision, writeId);
    let count: CountWrite | undefined;
    if (counted && counts) {
      const known = counts.known(counted.userId, counted.day);
      if (known && !withinRequestLimit(known.requests, counts.limit)) {
        // A day's count only grows: refused on what is known, its document left as it is.
        const refused = refusalOf(counts.limit, decision);
        result = refused;
        fields = refusedFields(decision, refused.message, writeId);
      } else {
        count = counts.countWrite(counted.userId, counted.day, now());
        if (!count) return undefined; // its version unknown: the transaction counts it
      }
    }
    tried.set(writeId, { result, counted });
    let written: Timestamp | undefined;
    try {
      written = await conditionalUpdate(trips, ref, fields, seen, count);
    } catch (err) {
      if (err instanceof LeaseLostError) return undefined; // deleted: the transaction says so
      throw err;
    }
    if (!written) return undefined;
    if (count && counted) {
      counts?.learn(counted.userId, counted.day, { requests: count.requests, version: written });
    }
    if (result.kind === 'claimed') {
      versions.set(versionKey(lease), written);
      noteOtherPicture(lease, view);
    }
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

  async function claimNow(request: JobRequest): Promise<ClaimResult> {
    const ref = col.doc(request.characterId);
    const trips = jobTrips();
    // The claims written here by writeId: one the document shows landed, its answer lost.
    const tried = new Map<string, Tried>();
    const landed = (snap: DocumentSnapshot | undefined): ClaimResult | undefined => {
      const entry = tried.get((snap && writeIdOf(snap)) ?? '');
      if (!entry || !snap) return undefined;
      // Counted, but by how much is not known here: read again by the next claim.
      if (entry.counted) counts?.forget(entry.counted.userId, entry.counted.day);
      if (entry.result.kind === 'claimed' && snap.updateTime) {
        versions.set(versionKey(entry.result.lease), snap.updateTime);
        noteOtherPicture(entry.result.lease, viewOf(snap.data()));
      }
      return entry.result;
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
    // The owner's day a counted claim reads along with the document, as the read suggests.
    const guess = countedOf(
      decide(request.characterId, early.view, early.view.status, seen.updateTime),
      early.view,
    );
    const guessed = guess && counts?.ref(guess.userId, guess.day);
    let learned: (() => void) | undefined;
    const result = await transaction(trips, async (tx, read): Promise<ClaimResult> => {
      learned = undefined;
      const [snap, daySnap] = await read(ref, ...(guessed ? [guessed] : []));
      // The SDK runs this again after a commit whose answer was lost.
      const again = landed(snap);
      if (again || !snap) return again ?? { kind: 'skipped', reason: 'missing' };
      // A dead owner just seen is not read again.
      const decided = await verdict(snap, request.characterId, early.deadOwner);
      if (decided.refused) return decided.refused;
      const { view } = decided;
      const decision = decide(request.characterId, view, view.status, snap.updateTime);
      const writeId = randomUUID();
      if (decision.kind === 'exhausted') {
        tried.set(writeId, { result: decision });
        tx.update(ref, exhaustedFields(view.status, now(), writeId));
        return decision;
      }
      const counted = countedOf(decision, view);
      if (counted && counts) {
        const count = await countInTransaction(counts, tx, counted, daySnap, read, now());
        learned = count.learned;
        if (!count.within) {
          const refused = refusalOf(counts.limit, decision);
          tried.set(writeId, { result: refused });
          tx.update(ref, refusedFields(decision, refused.message, writeId));
          return refused;
        }
      }
      const claimed: ClaimResult = {
        kind: 'claimed',
        document: snap.data(),
        lease: decision.lease,
      };
      tried.set(writeId, { result: claimed, counted });
      tx.update(ref, claimFields(decision, writeId));
      return claimed;
    });
    learned?.();
    if (result.kind !== 'skipped') ops(request.characterId, 0, 1);
    if (result.kind === 'claimed') noteOtherPicture(result.lease, viewOf(result.document));
    return result;
  }

  return {
    /** A counted owner's claims run one at a time here (request-counts.ts). */
    claim: (request: JobRequest): Promise<ClaimResult> =>
      counts && request.ownerId !== undefined && request.requestedBy !== 'operator'
        ? counts.serial(request.ownerId, () => claimNow(request))
        : claimNow(request),

    earlySource(request: JobRequest): string | undefined {
      if (request.document === undefined || request.updateTime === undefined) return undefined;
      const view = viewOf(request.document);
      if (!isInProgress(view.status)) return undefined;
      const seen = new Timestamp(request.updateTime.seconds, request.updateTime.nanoseconds);
      const decision = decide(request.characterId, view, view.status, seen);
      if (decision.kind !== 'claim') return undefined;
      const counted = countedOf(decision, view);
      // Not when its claim would refuse it: a refused request downloads nothing.
      if (counted && !counts?.startsEarly(counted.userId, counted.day)) return undefined;
      return decision.job.source?.url;
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
