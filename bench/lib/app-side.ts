/**
 * The CharaForge app's side of a benchmark: it creates characters, clicks Process, and
 * watches each character with onSnapshot, as the web app shows progress. Every
 * timing is measured here, never taken from the process under test.
 *
 * Times are the emulator's commit times (`writeTime` of the click, `updateTime` of the
 * document version a snapshot carries), so a busy bench process does not inflate them;
 * when the app's listener saw each version (local clock) is kept too.
 */
import { randomUUID } from 'node:crypto';
import { deleteApp, initializeApp, type App } from 'firebase-admin/app';
import {
  getFirestore,
  type DocumentData,
  type Firestore,
  type Timestamp,
} from 'firebase-admin/firestore';
import { clickSurely } from '../../test/support/app-write.js';

export const COLLECTION = 'characters';

export interface JobTimes {
  id: string;
  /** Commit time of the click (ms epoch, emulator clock). */
  clickAt?: number;
  /** Local time the click was sent. */
  clickSentAt?: number;
  /** updateTime of the first version with `visuals.showcaseJob`: the first worker write. */
  firstWriteAt?: number;
  /** Local time the app's listener received that version. */
  firstWriteSeenAt?: number;
  /** `showcaseJob.claimedAt` as the worker wrote it (worker clock), when present. */
  claimedAt?: number;
  /** updateTime of the first version with status complete. */
  completeAt?: number;
  completeSeenAt?: number;
  failedAt?: number;
  errorCode?: string;
  /** Every status the app saw, in order. */
  statuses: string[];
}

const millis = (t: Timestamp): number => t.seconds * 1000 + t.nanoseconds / 1e6;

export class AppSide {
  readonly projectId: string;
  readonly db: Firestore;
  readonly jobs = new Map<string, JobTimes>();
  private readonly app: App;
  private readonly unsubscribes: (() => void)[] = [];
  private waiters = new Set<() => void>();

  constructor(emulatorHost: string, projectId: string) {
    this.projectId = projectId;
    this.app = initializeApp({ projectId }, `bench-app-${projectId}-${randomUUID().slice(0, 6)}`);
    this.db = getFirestore(this.app);
    this.db.settings({ host: emulatorHost, ssl: false, universeDomain: 'googleapis.com' }); // no metadata-server probe
  }

  /** Characters as the app creates them before anyone clicks (no status yet), then watched. */
  async createCharacters(
    ids: string[],
    imageUrl: (id: string, userId: string) => string,
    // One owner per project, so runs side by side never write the same output path.
    userId = `u-${this.projectId}`,
  ): Promise<void> {
    for (let i = 0; i < ids.length; i += 400) {
      const batch = this.db.batch();
      for (const id of ids.slice(i, i + 400)) {
        batch.set(this.db.collection(COLLECTION).doc(id), {
          core: { name: `Bench ${id}` },
          meta: { userId },
          visuals: { imageUrl: imageUrl(id, userId) },
        });
        this.jobs.set(id, { id, statuses: [] });
      }
      await batch.commit();
    }
    await this.watchEach(ids);
  }

  /**
   * One listener per character, as the app's page has (each person watches their own
   * character); resolves once every listener has its first snapshot. (One listener on the
   * whole collection would be simpler, but the emulator then spends about three times the
   * worker's CPU fanning changes out to it, and delivers them seconds late.)
   */
  private async watchEach(ids: string[]): Promise<void> {
    const unsubscribes = this.unsubscribes;
    await Promise.all(
      ids.map(
        (id) =>
          new Promise<void>((resolve, reject) => {
            let first = true;
            unsubscribes.push(
              this.db
                .collection(COLLECTION)
                .doc(id)
                .onSnapshot(
                  (snap) => {
                    if (snap.exists && snap.updateTime) {
                      this.record(id, snap.data() ?? {}, millis(snap.updateTime), Date.now());
                    }
                    if (first) {
                      first = false;
                      resolve();
                    }
                    for (const wake of this.waiters) wake();
                  },
                  (err) => reject(err),
                ),
            );
          }),
      ),
    );
  }

  private record(id: string, data: DocumentData, updatedAt: number, seenAt: number): void {
    const job = this.jobs.get(id);
    if (!job || job.clickAt === undefined) return;
    // Versions older than the click belong to the character's creation.
    if (updatedAt < job.clickAt) return;
    const visuals = (data.visuals ?? {}) as Record<string, unknown>;
    const status =
      typeof visuals.showcaseProcessingStatus === 'string' ? visuals.showcaseProcessingStatus : '';
    if (status && job.statuses[job.statuses.length - 1] !== status) job.statuses.push(status);
    const record = visuals.showcaseJob as { claimedAt?: Timestamp } | undefined;
    if (record && job.firstWriteAt === undefined && updatedAt > job.clickAt) {
      job.firstWriteAt = updatedAt;
      job.firstWriteSeenAt = seenAt;
      if (record.claimedAt && typeof record.claimedAt.toMillis === 'function') {
        job.claimedAt = millis(record.claimedAt);
      }
    }
    if (status === 'complete' && job.completeAt === undefined) {
      job.completeAt = updatedAt;
      job.completeSeenAt = seenAt;
    }
    if (status === 'failed' && job.failedAt === undefined) {
      job.failedAt = updatedAt;
      const error = visuals.showcaseProcessingError as { code?: unknown } | undefined;
      job.errorCode = typeof error?.code === 'string' ? error.code : 'unknown';
    }
  }

  /** What the app writes on Process; resolves with the commit time. */
  async click(id: string): Promise<number> {
    const job = this.jobs.get(id) ?? { id, statuses: [] };
    this.jobs.set(id, job);
    job.clickSentAt = Date.now();
    // Anything seen before the commit time is known is matched against it afterwards.
    job.clickAt = Number.NEGATIVE_INFINITY;
    const ref = this.db.collection(COLLECTION).doc(id);
    const result = await clickSurely(ref, (clickId) =>
      ref.update({
        'visuals.showcaseProcessingStatus': 'removing-background',
        'visuals.clickId': clickId,
      }),
    );
    // An answer the emulator lost: the send time stands in for the commit time.
    job.clickAt = result ? millis(result.writeTime) : job.clickSentAt;
    if (job.firstWriteAt !== undefined && job.firstWriteAt <= job.clickAt) {
      job.firstWriteAt = job.firstWriteSeenAt = job.claimedAt = undefined;
    }
    return job.clickAt;
  }

  private finished(id: string): boolean {
    const job = this.jobs.get(id);
    return job?.completeAt !== undefined || job?.failedAt !== undefined;
  }

  /** Resolves when every id is complete or failed, or at the deadline (returns the rest). */
  async waitFinished(ids: string[], timeoutMs: number): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const open = ids.filter((id) => !this.finished(id));
      if (open.length === 0 || Date.now() >= deadline) return open;
      await this.nextChange(deadline);
    }
  }

  /**
   * A short queue (closed loop): clicks `ids` in order, keeping at most `outstanding` clicked
   * and not finished, as many users clicking about as fast as they are served would. Resolves
   * once every id is clicked, or at the deadline.
   */
  async clickKeeping(ids: string[], outstanding: number, deadline: number): Promise<void> {
    const open = new Set<string>();
    let next = 0;
    while (next < ids.length && Date.now() < deadline) {
      for (const id of open) if (this.finished(id)) open.delete(id);
      const sends: Promise<number>[] = [];
      while (open.size < outstanding && next < ids.length) {
        const id = ids[next++]!;
        open.add(id);
        sends.push(this.click(id));
      }
      await Promise.all(sends);
      await this.nextChange(deadline);
    }
  }

  /** The next snapshot any character's listener receives (at most 1 s, or the deadline). */
  private nextChange(deadline: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = () => {
        this.waiters.delete(wake);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(wake, Math.min(1_000, Math.max(0, deadline - Date.now())));
      this.waiters.add(wake);
    });
  }

  async close(): Promise<void> {
    for (const unsubscribe of this.unsubscribes.splice(0)) unsubscribe();
    await deleteApp(this.app);
  }
}
