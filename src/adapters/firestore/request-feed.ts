import { Observable, Subject } from 'rxjs';
import type { Firestore, Query } from 'firebase-admin/firestore';
import type { HeldJob, JobRequest, RequestFeed, TakeoverFeed } from '../../jobs/ports.js';
import { IN_PROGRESS, isInProgress } from '../../jobs/status.js';
import { requestedByOf } from '../../jobs/claim.js';
import { F, isClaimable, viewOf } from './job-fields.js';

export interface RequestFeedOptions {
  collection: string;
  owner: string;
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
 * Requests from Firestore: a listener on clicks and released jobs, the sweep's query on every
 * in-progress document, and the takeover query on a dead worker's jobs. Documents held by a
 * live lease are dropped here, so the worker's own claims (and other replicas') do not turn
 * into claim transactions; the listener reports them on `taken$` instead (the dealing stage
 * forgets a click another worker took).
 */
export function createFirestoreRequestFeed(
  db: Firestore,
  opts: RequestFeedOptions,
): RequestFeed &
  TakeoverFeed & {
    listenBatches(): Observable<JobRequest[]>;
  } {
  const query: Query = db.collection(opts.collection).where(F.status, 'in', [...IN_PROGRESS]);
  /**
   * What the listener watches: clicks (the app writes only `removing-background`), and jobs
   * given back at shutdown. Not the later stages: every status write of every running job
   * would come back as a whole document (about three a job), which cost the worker and
   * Firestore more than the rest of the job's bookkeeping. A later-stage job no live worker
   * holds is found by the sweep (expired lease) or by the takeover query (dead owner), which
   * the listener could not see anyway (neither is a document change). Two equality filters:
   * no composite index.
   */
  const taken = new Subject<string>();
  const watched: Query[] = [
    db.collection(opts.collection).where(F.status, '==', 'removing-background'),
    db.collection(opts.collection).where(`${F.job}.state`, '==', 'released'),
  ];

  /**
   * What each query holds claimable now: a document that none does any more is reported taken
   * (the two queries' snapshots come apart, and a document may be in both). Kept across
   * resubscriptions: what left a query while the listener was down is reported at its first
   * snapshot.
   */
  const claimable = watched.map(() => new Set<string>());
  const leave = (i: number, id: string, gone: string[]) => {
    claimable[i]?.delete(id);
    if (!claimable.some((held) => held.has(id))) gone.push(id);
  };

  function listenBatches(): Observable<JobRequest[]> {
    return new Observable<JobRequest[]>((subscriber) => {
      const fresh = watched.map(() => true);
      const unsubscribes = watched.map((q, i) =>
        q.onSnapshot(
          (snapshot) => {
            opts.onSnapshot?.();
            // Leases are judged on Firestore's clock: the snapshot's time.
            const at = snapshot.readTime.toMillis();
            const batch: JobRequest[] = [];
            const gone: string[] = [];
            if (fresh[i]) {
              // A (re)subscription's first snapshot is the whole result: what is not in it left.
              fresh[i] = false;
              const present = new Set(snapshot.docs.map((doc) => doc.id));
              for (const id of [...(claimable[i] ?? [])]) if (!present.has(id)) leave(i, id, gone);
            }
            for (const change of snapshot.docChanges()) {
              const id = change.doc.id;
              const data = change.type === 'removed' ? undefined : change.doc.data();
              const view = data === undefined ? undefined : viewOf(data);
              if (view === undefined || !isClaimable(view, at, opts.owner)) {
                leave(i, id, gone);
                continue;
              }
              claimable[i]?.add(id);
              const { seconds, nanoseconds } = change.doc.updateTime;
              batch.push({
                characterId: id,
                origin: 'listener',
                seenAt: Date.now(),
                ...factsOf(data),
                ...(view.job?.state === 'released' && typeof view.job.owner === 'string'
                  ? { releasedBy: view.job.owner }
                  : {}),
                document: data,
                updateTime: { seconds, nanoseconds },
              });
            }
            // In the snapshot's order, before its requests (they name other documents).
            gone.forEach((id) => taken.next(id));
            subscriber.next(batch);
          },
          (err) => subscriber.error(err),
        ),
      );
      return () => unsubscribes.forEach((unsubscribe) => unsubscribe());
    });
  }

  return {
    listenBatches,
    taken$: taken.asObservable(),
    listen: () =>
      new Observable<JobRequest>((subscriber) =>
        listenBatches().subscribe({
          next: (batch) => batch.forEach((r) => subscriber.next(r)),
          error: (err: unknown) => subscriber.error(err),
          complete: () => subscriber.complete(),
        }),
      ),
    async findUnowned(seenAt: number): Promise<JobRequest[]> {
      const snapshot = await query.get();
      opts.onRead?.(Math.max(1, snapshot.size));
      const at = snapshot.readTime.toMillis();
      const orphaned = (view: ReturnType<typeof viewOf>) =>
        view.job?.state === 'running' &&
        typeof view.job.owner === 'string' &&
        opts.ownerAlive !== undefined &&
        !opts.ownerAlive(view.job.owner);
      return snapshot.docs
        .map((doc) => ({ id: doc.id, data: doc.data(), view: viewOf(doc.data()) }))
        .filter(({ view }) => isClaimable(view, at) || orphaned(view))
        .map(({ id, data, view }) => ({
          characterId: id,
          origin: 'sweep' as const,
          seenAt,
          // A running job found by the sweep lost its worker (dead, or its lease ran out).
          ...(view.job?.state === 'running' ? { takeover: true } : {}),
          ...factsOf(data),
        }));
    },
    async findHeldBy(owners: readonly string[], seenAt: number): Promise<HeldJob[]> {
      // Equality filters only: served by single-field indexes, no composite index to deploy.
      const snapshots = await Promise.all(
        [...new Set(owners)].map((owner) =>
          db
            .collection(opts.collection)
            .where(`${F.job}.owner`, '==', owner)
            .where(`${F.job}.state`, '==', 'running')
            .get(),
        ),
      );
      const docs = snapshots.flatMap((snapshot) => {
        opts.onRead?.(Math.max(1, snapshot.size));
        return snapshot.docs;
      });
      return docs.flatMap((doc) => {
        const status = viewOf(doc.data()).status;
        if (!isInProgress(status)) return [];
        const request: JobRequest = {
          characterId: doc.id,
          origin: 'takeover',
          seenAt,
          takeover: true,
          ...factsOf(doc.data()),
          // The source download starts alongside the claim (a transaction: not fresh).
          document: doc.data(),
        };
        return [{ request, status }];
      });
    },
  };
}

/**
 * What the snapshot tells about the request before it is claimed: its owner (`meta.userId`,
 * when usable as a document id: the claim validates it fully) and who clicked.
 */
function factsOf(data: unknown): Pick<JobRequest, 'ownerId' | 'requestedBy'> {
  const userId = (data as { meta?: { userId?: unknown } } | undefined)?.meta?.userId;
  const usable =
    typeof userId === 'string' &&
    userId.length > 0 &&
    userId.length <= 128 &&
    userId !== '.' &&
    userId !== '..' &&
    !/[/\\]/.test(userId);
  return { ...(usable ? { ownerId: userId } : {}), requestedBy: requestedByOf(viewOf(data).job) };
}
