import type {
  DocumentData,
  DocumentReference,
  DocumentSnapshot,
  Firestore,
  Timestamp,
  Transaction,
  UpdateData,
} from 'firebase-admin/firestore';
import { LeaseLostError } from '../../jobs/ports.js';
import { countTrip, type RoundTripCounter } from '../../jobs/round-trips.js';
import { answerLost, answerWithin, GRPC, NoAnswerError } from './lost-answer.js';

/**
 * The job store's two kinds of Firestore request (job-store.ts), each counted as the job's
 * round trips: a conditional update (with a document written in the same batch), and a
 * transaction.
 */

/** A document written in the same commit as the character's update. */
export interface Alongside {
  ref: DocumentReference;
  data: DocumentData;
  /** merge: a blind merge (increments); create: it must not exist; a version: unchanged since. */
  precondition?: 'merge' | 'create' | Timestamp;
}

export interface StoreRpc {
  /**
   * One update with a `lastUpdateTime` precondition: the new version's update time (the
   * commit's, which a document alongside shares), or undefined when either document changed
   * (or exists, for a create) or the answer was lost (UNKNOWN, CANCELLED or none within
   * `answerMs`: the write may have landed, so the caller reads the document; its `writeId`
   * says).
   */
  conditionalUpdate: (
    trips: RoundTripCounter | undefined,
    ref: DocumentReference,
    data: UpdateData<DocumentData>,
    version: Timestamp,
    alongside?: Alongside,
  ) => Promise<Timestamp | undefined>;
  /**
   * A transaction, its requests counted: Firestore 7 folds the begin into the first read, so
   * each attempt is its reads plus one commit (or rollback).
   */
  transaction: <T>(
    trips: RoundTripCounter | undefined,
    body: (
      tx: Transaction,
      read: (ref: DocumentReference, ...more: DocumentReference[]) => Promise<DocumentSnapshot[]>,
    ) => Promise<T>,
  ) => Promise<T>;
}

export function createStoreRpc(
  db: Firestore,
  opts: { answerMs?: number; ops: (id: string, reads: number, writes: number) => void },
): StoreRpc {
  return {
    conditionalUpdate: async (trips, ref, data, version, alongside) => {
      const commit = () => {
        if (!alongside) return ref.update(data, { lastUpdateTime: version });
        const batch = db.batch().update(ref, data, { lastUpdateTime: version });
        const { precondition = 'merge' } = alongside;
        if (precondition === 'merge') batch.set(alongside.ref, alongside.data, { merge: true });
        else if (precondition === 'create') batch.create(alongside.ref, alongside.data);
        else batch.update(alongside.ref, alongside.data, { lastUpdateTime: precondition });
        return batch.commit().then(([result]) => result!);
      };
      try {
        const result = await countTrip(trips, () => answerWithin(commit(), opts.answerMs));
        opts.ops(ref.id, 0, alongside ? 2 : 1);
        return result.writeTime;
      } catch (err) {
        if (err instanceof NoAnswerError) return undefined;
        const code = (err as { code?: unknown }).code;
        if (code === GRPC.FAILED_PRECONDITION || answerLost(code)) return undefined;
        // The document alongside exists already (a create) or is gone (an update).
        if (alongside && alongside.precondition !== 'merge' && code === GRPC.ALREADY_EXISTS) {
          return undefined;
        }
        if (code === GRPC.NOT_FOUND) {
          if (typeof alongside?.precondition === 'object') return undefined;
          throw new LeaseLostError(ref.id);
        }
        throw err;
      }
    },

    transaction: async (trips, body) => {
      let commit: (() => void) | undefined;
      try {
        return await db.runTransaction(async (tx) => {
          commit?.();
          const result = await body(tx, async (ref, ...more) => {
            const snaps = await countTrip(trips, () => tx.getAll(ref, ...more));
            // Counted for the job, whose counts are kept by its character's id.
            opts.ops(ref.id, snaps.length, 0);
            return snaps;
          });
          commit = trips?.begin();
          return result;
        });
      } finally {
        commit?.();
      }
    },
  };
}
