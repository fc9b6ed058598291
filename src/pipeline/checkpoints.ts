import { catchError, concatMap, defer, finalize, map, of, ReplaySubject, take } from 'rxjs';
import type { Observable } from 'rxjs';
import { describe } from '../jobs/errors.js';
import type { Checkpoint, WorkCache } from '../jobs/ports.js';
import type { ClaimedScope } from './job-scope.js';

/** A paid stage's output and its checkpoint upload, which the next stage waits for. */
export interface Stored {
  data: Buffer;
  saved$: Observable<void>;
}

/**
 * One job's checkpoints: each paid stage's output kept in the bucket until the job completes,
 * so that a job recovered after a crash resumes from it instead of paying again (docs/cost.md).
 */
export class JobCheckpoints {
  private usedOne = false;

  constructor(
    private readonly cache: WorkCache,
    private readonly characterId: string,
    /** Only a recovered job can have checkpoints to find. */
    private readonly recovered: boolean,
    private readonly scope: ClaimedScope,
  ) {}

  /** Whether a checkpoint stood in for a paid call: the job counts as having paid. */
  get used(): boolean {
    return this.usedOne;
  }

  /**
   * A paid stage's output: from its checkpoint when this job was recovered and had already
   * paid for it, else from `produce$`, with its checkpoint upload started (`saved$`, hot):
   * the next stage runs alongside it and waits for it before moving on in turn.
   */
  paidOrCheckpointed(
    stage: Checkpoint,
    key: string,
    produce$: () => Observable<Buffer>,
  ): Observable<Stored> {
    const saved$ = this.recovered
      ? this.scope.call(`find-checkpoint:${stage}`, (signal) =>
          this.cache.findCheckpoint(this.characterId, key, stage, signal),
        )
      : of(undefined);
    return saved$.pipe(
      concatMap((saved) => {
        if (saved) {
          this.usedOne = true;
          this.scope.event('job.checkpoint_used', { checkpoint: stage });
          return of({ data: saved, saved$: of(undefined) });
        }
        return produce$().pipe(map((data) => ({ data, saved$: this.save(stage, key, data) })));
      }),
    );
  }

  /** Checkpoints are only for recovery: once the job is complete they are clutter. */
  clear(key: string): Observable<void> {
    return defer(() => this.cache.clearCheckpoints(this.characterId, key)).pipe(
      catchError((err: unknown) => {
        // Harmless leftovers: logged, never a reason to fail a completed job.
        this.scope.event('job.checkpoint_cleanup_failed', { detail: describe(err) }, 'warn');
        return of(undefined);
      }),
    );
  }

  /**
   * Starts storing a checkpoint (hot); the observable returned ends once it is stored, and
   * unsubscribing from it (the job's end, any way) stops an upload nobody will wait for. Its
   * closures hold the upload, not the bytes: those are freed once the upload is done.
   */
  private save(stage: Checkpoint, key: string, data: Buffer): Observable<void> {
    const done = new ReplaySubject<void>(1);
    const upload = this.upload$(stage, key, data).subscribe(done);
    return done.pipe(
      take(1),
      finalize(() => upload.unsubscribe()),
    );
  }

  private upload$(stage: Checkpoint, key: string, data: Buffer): Observable<void> {
    return this.scope.call(`save-checkpoint:${stage}`, (signal) =>
      this.cache.saveCheckpoint(this.characterId, key, stage, data, signal),
    );
  }
}
