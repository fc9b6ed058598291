import type { DocumentData, Firestore } from 'firebase-admin/firestore';

/**
 * Resolves with the first snapshot of a document that satisfies `predicate`, watching it
 * with onSnapshot (no polling); rejects after `timeoutMs` with the last data seen.
 *
 * The watch stays open once satisfied, until `closeWatches` (`stack.close()` calls it): the
 * emulator answers UNKNOWN to a commit in a project whose listen stream was just closed (it
 * applied the write all the same), so closing here failed the test's next write now and then.
 */
export function waitForDoc(
  db: Firestore,
  path: string,
  predicate: (data: DocumentData | undefined) => boolean,
  timeoutMs = 30_000,
): Promise<DocumentData | undefined> {
  return new Promise((resolve, reject) => {
    let last: DocumentData | undefined;
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      unsubscribe();
      reject(new Error(`timed out waiting for ${path}; last seen: ${JSON.stringify(last)}`));
    }, timeoutMs);
    const unsubscribe = keep(
      db,
      db.doc(path).onSnapshot(
        (snap) => {
          if (settled) return;
          last = snap.data();
          if (predicate(last)) {
            settled = true;
            clearTimeout(timer);
            resolve(last);
          }
        },
        (err) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          reject(err);
        },
      ),
    );
  });
}

const kept = new Map<Firestore, Set<() => void>>();

function keep(db: Firestore, unsubscribe: () => void): () => void {
  const watches = kept.get(db) ?? new Set();
  kept.set(db, watches);
  watches.add(unsubscribe);
  return () => {
    watches.delete(unsubscribe);
    unsubscribe();
  };
}

/** Closes the watches `waitForDoc` kept open on `db` (before it is terminated). */
export function closeWatches(db: Firestore): void {
  for (const unsubscribe of kept.get(db) ?? []) unsubscribe();
  kept.delete(db);
}

/** Polls a synchronous condition on the event loop until it holds (for in-process state). */
export async function until(condition: () => boolean, timeoutMs = 30_000, what = 'condition') {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function statusOf(data: DocumentData | undefined): string | undefined {
  return (data?.visuals as { showcaseProcessingStatus?: string } | undefined)
    ?.showcaseProcessingStatus;
}
