import {
  Timestamp,
  type DocumentData,
  type DocumentReference,
  type DocumentSnapshot,
  type Firestore,
  type Transaction,
} from 'firebase-admin/firestore';
import type { ClaimDecision } from '../../jobs/claim.js';
import { isPathSegment } from '../../jobs/document.js';
import {
  countsRequest,
  requestLimitMessage,
  startsEarly,
  withinRequestLimit,
} from '../../jobs/request-limit.js';
import { nextUtcMidnight, usageDocId, utcDay } from '../../jobs/user-limits.js';
import { USAGE_COLLECTION } from './usage-docs.js';

/**
 * USER_DAILY_REQUEST_LIMIT's documents, `showcaseUsage/requests-{day}-{userId}`
 * (`{userId, day, requests, updatedAt}`), written only by claims, in the claim's own commit
 * (job-store.ts), and what this worker knows of them.
 *
 * A claim's fast path is one update, with no read: it can count the request only against a
 * version of the user's document it already knows (a compare-and-set in the same batch as the
 * claim), or create it when it knows none. So each worker keeps the count and version it last
 * committed or read per user and day, and claims one user's requests one at a time: a burst
 * of one user's clicks commits each claim on the version the previous one left, with no
 * contention. A version that moved (another worker counted) fails the batch, and the claim's
 * read-and-transaction path counts it instead; the version is then read again, off the job's
 * path, before that user's next claim here.
 */

/** The count as last committed or read here, and that version's update time. */
export interface KnownCount {
  requests: number;
  /** Absent after a transaction (whose commit time the SDK does not return) until read again. */
  version?: Timestamp;
}

/** The document write a counted claim commits with the claim. */
export interface CountWrite {
  ref: DocumentReference;
  data: DocumentData;
  /** `create`: no document known; else an update conditioned on this version. */
  precondition: 'create' | Timestamp;
  requests: number;
}

/** Past this many users and days kept, the days other than `day` are forgotten. */
const KEEP = 10_000;

export interface RequestCounts {
  readonly limit: number;
  ref(userId: string, day: string): DocumentReference;
  known(userId: string, day: string): KnownCount | undefined;
  /** Whether a click of this user, on this day, may start its download before its claim answers. */
  startsEarly(userId: string, day: string): boolean;
  /** The write that counts one more request on what is known (undefined: the version is not). */
  countWrite(userId: string, day: string, now: number): CountWrite | undefined;
  /** The transaction's write: `counted` as read in it, plus one. */
  transactionWrite(userId: string, day: string, counted: number, now: number): DocumentData;
  learn(userId: string, day: string, count: KnownCount): void;
  forget(userId: string, day: string): void;
  /** Reads the document again (off the job's path): the next claim of this user waits for it. */
  refresh(userId: string, day: string): void;
  /** Runs one claim of this user's after the previous ones (and their refreshes). */
  serial<T>(userId: string, claim: () => Promise<T>): Promise<T>;
}

export function requestsOf(snap: DocumentSnapshot | undefined): number {
  const requests: unknown = snap?.data()?.requests;
  return typeof requests === 'number' && Number.isFinite(requests) ? requests : 0;
}

export function createRequestCounts(db: Firestore, limit: number): RequestCounts {
  const usage = db.collection(USAGE_COLLECTION);
  const counts = new Map<string, KnownCount>();
  const keyOf = (userId: string, day: string) => `${day}/${userId}`;
  /** Per user: the tail of their claims here, and how many are in flight. */
  const chains = new Map<string, { tail: Promise<unknown>; inFlight: number }>();
  /** Per user: a refresh under way, which their next claim waits for. */
  const refreshes = new Map<string, Promise<void>>();

  const api: RequestCounts = {
    limit,
    ref: (userId, day) => usage.doc(usageDocId.requests(userId, day)),
    known: (userId, day) => counts.get(keyOf(userId, day)),
    startsEarly: (userId, day) =>
      startsEarly(api.known(userId, day)?.requests, chains.get(userId)?.inFlight ?? 0, limit),
    countWrite(userId, day, now) {
      const known = api.known(userId, day);
      if (known && !known.version) return undefined;
      const requests = (known?.requests ?? 0) + 1;
      const updatedAt = Timestamp.fromMillis(now);
      return {
        ref: api.ref(userId, day),
        data: known ? { requests, updatedAt } : { userId, day, requests, updatedAt },
        precondition: known?.version ?? 'create',
        requests,
      };
    },
    transactionWrite: (userId, day, counted, now) => ({
      userId,
      day,
      requests: counted + 1,
      updatedAt: Timestamp.fromMillis(now),
    }),
    learn(userId, day, count) {
      if (counts.size >= KEEP) {
        for (const key of counts.keys()) if (!key.startsWith(`${day}/`)) counts.delete(key);
      }
      counts.set(keyOf(userId, day), count);
    },
    forget: (userId, day) => void counts.delete(keyOf(userId, day)),
    refresh(userId, day) {
      const read = api
        .ref(userId, day)
        .get()
        .then(
          (snap) => {
            const version = snap.exists ? snap.updateTime : undefined;
            if (version) api.learn(userId, day, { requests: requestsOf(snap), version });
            else api.forget(userId, day);
          },
          () => api.forget(userId, day), // the next claim creates, or falls back and reads
        );
      refreshes.set(userId, read);
      void read.then(() => {
        if (refreshes.get(userId) === read) refreshes.delete(userId);
      });
    },
    serial<T>(userId: string, claim: () => Promise<T>): Promise<T> {
      const chain = chains.get(userId) ?? { tail: Promise.resolve(), inFlight: 0 };
      chains.set(userId, chain);
      chain.inFlight += 1;
      const run = chain.tail.then(claim, claim);
      const tail = run
        .then(
          () => refreshes.get(userId),
          () => refreshes.get(userId),
        )
        .finally(() => {
          chain.inFlight -= 1;
          if (chain.inFlight === 0 && chains.get(userId) === chain) chains.delete(userId);
        });
      chain.tail = tail;
      return run;
    },
  };
  return api;
}

/** A counted request: its owner and the UTC day of its click. */
export interface Counted {
  userId: string;
  day: string;
}

/** The request a claim decision counts, if any: a new click by a user, with a limit set. */
export function countedOf(
  counts: RequestCounts | undefined,
  decision: ClaimDecision,
  userId: string | undefined,
): Counted | undefined {
  if (!counts || decision.kind !== 'claim') return undefined;
  if (!countsRequest(decision.lease, counts.limit) || !isPathSegment(userId)) return undefined;
  return { userId, day: utcDay(decision.job.requestedAt) };
}

/** A claim over the limit: the result its `failed` write stands for. */
export function refusalOf(
  limit: number,
  decision: ClaimDecision & { kind: 'claim' },
): { kind: 'refused'; limit: number; message: string } {
  const message = requestLimitMessage(limit, nextUtcMidnight(decision.job.requestedAt));
  return { kind: 'refused', limit, message };
}

/**
 * A counted request in the claim's transaction: its owner's day read there (`read` unless the
 * transaction's first read already has it: `day`), and either counted in the same commit, or
 * over the limit. `learned` tells this worker's counts once the commit landed.
 */
export async function countInTransaction(
  counts: RequestCounts,
  tx: Transaction,
  counted: Counted,
  day: DocumentSnapshot | undefined,
  read: (ref: DocumentReference) => Promise<DocumentSnapshot[]>,
  now: number,
): Promise<{ within: boolean; learned: () => void }> {
  const ref = counts.ref(counted.userId, counted.day);
  const snap = day?.ref.path === ref.path ? day : (await read(ref))[0];
  const requests = requestsOf(snap);
  const { userId, day: utc } = counted;
  if (!withinRequestLimit(requests, counts.limit)) {
    const version = snap?.exists ? snap.updateTime : undefined;
    return {
      within: false,
      learned: () => counts.learn(userId, utc, { requests, ...(version ? { version } : {}) }),
    };
  }
  tx.set(ref, counts.transactionWrite(userId, utc, requests, now));
  return {
    within: true,
    learned: () => {
      counts.learn(userId, utc, { requests: requests + 1 });
      // The commit's time (the version) is not returned: read before their next claim here.
      counts.refresh(userId, utc);
    },
  };
}
