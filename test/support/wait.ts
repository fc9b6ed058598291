import type { DocumentData, Firestore } from 'firebase-admin/firestore';

/**
 * Resolves with the first snapshot of a document that satisfies `predicate`, watching it
 * with onSnapshot (no polling); rejects after `timeoutMs` with the last data seen.
 */
export function waitForDoc(
  db: Firestore,
  path: string,
  predicate: (data: DocumentData | undefined) => boolean,
  timeoutMs = 30_000,
): Promise<DocumentData | undefined> {
  return new Promise((resolve, reject) => {
    let last: DocumentData | undefined;
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`timed out waiting for ${path}; last seen: ${JSON.stringify(last)}`));
    }, timeoutMs);
    const unsubscribe = db.doc(path).onSnapshot(
      (snap) => {
        last = snap.data();
        if (predicate(last)) {
          clearTimeout(timer);
          unsubscribe();
          resolve(last);
        }
      },
      (err) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
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
