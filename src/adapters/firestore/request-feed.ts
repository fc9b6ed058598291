import { Observable } from 'rxjs';
import type { Firestore, Query } from 'firebase-admin/firestore';
import type { JobRequest, RequestFeed } from '../../jobs/ports.js';
import { IN_PROGRESS } from '../../jobs/status.js';
import { F, isClaimable, viewOf } from './job-fields.js';

export interface RequestFeedOptions {
  collection: string;
  owner: string;
  now?: () => number;
  /** Called on every snapshot: the listener is alive (readiness, watchdog). */
  onSnapshot?: () => void;
  /**
   * Whether a worker has a fresh heartbeat (the fleet as last read): the sweep also proposes
   * running jobs of dead owners. The claim checks the owner's heartbeat again.
   */
  ownerAlive?: (owner: string) => boolean;
  /** Counts the documents the sweep reads. */
  onRead?: (documents: number) => void;
}

/**
 * Requests from Firestore: a listener on in-progress documents, and the same query run on
 * demand for the sweep. Documents held by a live lease are dropped here, so the worker's own
 * status writes (and other replicas') do not turn into claim transactions.
 */
export function createFirestoreRequestFeed(
  db: Firestore,
  opts: RequestFeedOptions,
): RequestFeed & {
  listenBatches(): Observable<JobRequest[]>;
} {
  const now = opts.now ?? Date.now;
  const query: Query = db.collection(opts.collection).where(F.status, 'in', [...IN_PROGRESS]);

  function listenBatches(): Observable<JobRequest[]> {
    return new Observable<JobRequest[]>((subscriber) => {
      const unsubscribe = query.onSnapshot(
        (snapshot) => {
          opts.onSnapshot?.();
          const at = now();
          const batch: JobRequest[] = [];
          for (const change of snapshot.docChanges()) {
            if (change.type === 'removed') continue;
            if (!isClaimable(viewOf(change.doc.data()), at, opts.owner)) continue;
            batch.push({ characterId: change.doc.id, origin: 'listener', seenAt: at });
          }
          subscriber.next(batch);
        },
        (err) => subscriber.error(err),
      );
      return () => unsubscribe();
    });
  }

  return {
    listenBatches,
    listen: () =>
      new Observable<JobRequest>((subscriber) =>
        listenBatches().subscribe({
          next: (batch) => batch.forEach((r) => subscriber.next(r)),
          error: (err: unknown) => subscriber.error(err),
          complete: () => subscriber.complete(),
        }),
      ),
    async findUnowned(at: number): Promise<JobRequest[]> {
      const snapshot = await query.get();
      opts.onRead?.(Math.max(1, snapshot.size));
      const orphaned = (view: ReturnType<typeof viewOf>) =>
        view.job?.state === 'running' &&
        typeof view.job.owner === 'string' &&
        opts.ownerAlive !== undefined &&
        !opts.ownerAlive(view.job.owner);
      return snapshot.docs
        .map((doc) => ({ id: doc.id, view: viewOf(doc.data()) }))
        .filter(({ view }) => isClaimable(view, at) || orphaned(view))
        .map(({ id, view }) => ({
          characterId: id,
          origin: 'sweep' as const,
          seenAt: at,
          // A running job found by the sweep lost its worker (dead, or its lease ran out).
          ...(view.job?.state === 'running' ? { takeover: true } : {}),
        }));
    },
  };
}
