import { FieldValue, type DocumentSnapshot, type Firestore } from 'firebase-admin/firestore';
import { parseBudget, type BudgetDoc, type BudgetStore } from '../../jobs/budget.js';
import type { ServerClock } from '../../jobs/clock.js';
import { answerLost, GRPC } from './lost-answer.js';

export interface BudgetDocOptions {
  /** The fleet collection (`showcaseFleet`); the budget is its document `budget`. */
  collection: string;
  onOps?: (reads: number, writes: number) => void;
  /** Told Firestore's time of every read (src/jobs/clock.ts). */
  clock?: Pick<ServerClock, 'observe'>;
}

/**
 * `showcaseFleet/budget`: `{ day, spent, blocks: { [workerId]: credits }, limit? }`
 * (src/jobs/budget.ts). The day is the read's time's UTC day, on Firestore's clock: a document
 * of another day reads as a new day's, with nothing spent. Written by compare-and-set on its
 * update time, as the quota ledger is (a transaction cut off mid-way would hold its lock).
 */
export function createBudgetDoc(db: Firestore, opts: BudgetDocOptions): BudgetStore {
  const ref = db.collection(opts.collection).doc('budget');

  async function read(): Promise<{ snap: DocumentSnapshot; doc: BudgetDoc; at: number }> {
    const snap = await ref.get();
    opts.onOps?.(1, 0);
    const at = snap.readTime.toMillis();
    opts.clock?.observe(at);
    return { snap, doc: parseBudget(snap.data(), at), at };
  }

  return {
    async read() {
      const { doc, at } = await read();
      return { doc, at };
    },
    async update(change) {
      for (let attempt = 1; ; attempt++) {
        const { snap, doc, at } = await read();
        const next = change(doc, at);
        if (!next) return { doc, at, result: undefined };
        const data = {
          day: next.doc.day,
          spent: next.doc.spent,
          blocks: next.doc.blocks,
          // The operator's budget is the CLI's to write: kept as it is.
          limit: next.doc.limit ?? FieldValue.delete(),
        };
        try {
          if (snap.exists && snap.updateTime) {
            await ref.update(data, { lastUpdateTime: snap.updateTime });
          } else {
            const { limit, ...fresh } = data;
            await ref.create(next.doc.limit === undefined ? fresh : { ...fresh, limit });
          }
          opts.onOps?.(0, 1);
          return { doc: next.doc, at, result: next.result };
        } catch (err) {
          if (attempt >= TRIES || !lostRace(err)) throw err;
        }
      }
    },
  };
}

/**
 * The operator's budget (`showcase-worker budget set`): replaces every worker's
 * CLIPDROP_DAILY_CREDIT_BUDGET until cleared (undefined). Merged, so the day's figures stay.
 */
export async function setBudgetLimit(
  db: Firestore,
  collection: string,
  limit: number | undefined,
): Promise<void> {
  await db
    .collection(collection)
    .doc('budget')
    .set({ limit: limit ?? FieldValue.delete() }, { merge: true });
}

/** Enough for every worker of a large fleet to lose one race each. */
const TRIES = 10;

function lostRace(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return code === GRPC.FAILED_PRECONDITION || code === GRPC.ALREADY_EXISTS || answerLost(code);
}
