import {
  FieldValue,
  Timestamp,
  type DocumentSnapshot,
  type Firestore,
} from 'firebase-admin/firestore';
import { describe } from '../../jobs/errors.js';
import {
  cleanNote,
  INTAKE_FLAG_DOC,
  parseIntakeFlag,
  type IntakeFlag,
} from '../../jobs/intake-flag.js';
import type { Log } from '../../jobs/ports.js';

/** The flag of a snapshot: `at` from the document's field, else its update time. */
export function flagOf(snap: DocumentSnapshot): IntakeFlag {
  const data = snap.data();
  const at = data?.at instanceof Timestamp ? data.at : snap.updateTime;
  return parseIntakeFlag(data, at?.toMillis() ?? 0);
}

export interface IntakeFlagWatch {
  /** Attaches the listener; resolves at its first answer (or first failure): intake may start. */
  start(): Promise<void>;
  stop(): void;
}

/**
 * A worker's listener on `showcaseFleet/intake` (jobs/intake-flag.ts). A listener, not a read
 * in the fleet loop: it costs one read when attached and one per change of the flag, where a
 * read each beat would cost 720 to 1,200 reads an hour per worker. A failed listener is
 * attached again after `retryMs`; meanwhile the last flag it gave stays in force.
 */
export function watchIntakeFlag(
  db: Firestore,
  opts: {
    collection: string;
    onFlag: (flag: IntakeFlag) => void;
    log: Log;
    onOps?: (reads: number, writes: number) => void;
    retryMs?: number;
  },
): IntakeFlagWatch {
  const ref = db.collection(opts.collection).doc(INTAKE_FLAG_DOC);
  const retryMs = opts.retryMs ?? 5_000;
  let unsubscribe: (() => void) | undefined;
  let retry: NodeJS.Timeout | undefined;
  let stopped = false;
  let first: (() => void) | undefined;

  function attach(): void {
    if (stopped) return;
    unsubscribe = ref.onSnapshot(
      (snap) => {
        opts.onOps?.(1, 0);
        opts.onFlag(flagOf(snap));
        first?.();
      },
      (err) => {
        opts.log.warn('intake.flag.listen_failed', { detail: describe(err), retryMs });
        first?.();
        retry = setTimeout(attach, retryMs);
        retry.unref();
      },
    );
  }

  return {
    start() {
      return new Promise<void>((resolve) => {
        first = () => {
          first = undefined;
          resolve();
        };
        attach();
      });
    },
    stop() {
      stopped = true;
      clearTimeout(retry);
      unsubscribe?.();
      first?.();
    },
  };
}

export async function readIntakeFlag(db: Firestore, collection: string): Promise<IntakeFlag> {
  return flagOf(await db.collection(collection).doc(INTAKE_FLAG_DOC).get());
}

/** What an operator's Pause or Resume changed. */
export interface IntakeChange {
  from: IntakeFlag;
  to: IntakeFlag;
}

/**
 * Pauses or resumes the fleet's intake (`showcase-worker intake`, the console): one
 * transaction, so the answer says what the flag was before. Setting it to what it is
 * rewrites who and when (the latest word counts), and changes nothing for the workers.
 */
export async function setIntakeFlag(
  db: Firestore,
  collection: string,
  want: { paused: boolean; by: string; note?: string },
): Promise<IntakeChange> {
  const ref = db.collection(collection).doc(INTAKE_FLAG_DOC);
  const note = cleanNote(want.note);
  const from = await db.runTransaction(async (tx) => {
    const snap = await tx.get(ref);
    tx.set(ref, { paused: want.paused, by: want.by, note, at: FieldValue.serverTimestamp() });
    return flagOf(snap);
  });
  return { from, to: await readIntakeFlag(db, collection) };
}
