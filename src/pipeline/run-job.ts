import {
  catchError,
  concatMap,
  defer,
  EMPTY,
  forkJoin,
  map,
  tap,
  merge,
  of,
  take,
  type Observable,
  type SchedulerLike,
} from 'rxjs';
import { parseJobDocument, showcasePath, type JobSpec } from '../jobs/document.js';
import { classify, describe } from '../jobs/errors.js';
import { upscaleTarget } from '../image/limits.js';
import {
  LeaseLostError,
  noTelemetry,
  PresenceLapsedError,
  type Fence,
  type FirestoreOps,
  type ImageService,
  type ImageSteps,
  type JobOutcome,
  type JobRequest,
  type JobStore,
  type Log,
  type ResultStore,
  type SourceFetcher,
  type Telemetry,
  type WorkCache,
  type Checkpoint,
  type PaidImage,
} from '../jobs/ports.js';
import type { InProgressStatus } from '../jobs/status.js';
import { fromAbortable } from './abortable.js';
import { renewLease } from './lease.js';
import { pngOf, workKey } from './work-key.js';
import { retryTransient, type RetryPolicy } from './retry.js';
import type { JobWriter, StatusSink } from './status-sink.js';

export interface JobRunnerDeps {
  store: JobStore;
  sink: StatusSink;
  fetcher: SourceFetcher;
  images: ImageService;
  results: ResultStore;
  /** Checkpoints of paid stages and finished results, so nothing is paid for twice. */
  cache: WorkCache;
  /** Reuse an earlier identical job's result (same source bytes and settings). */
  resultCache: boolean;
  steps: ImageSteps;
  log: Log;
  retry: RetryPolicy;
  upscaleFactor: number;
  /** How often a running job's lease is extended (a third of the lease). */
  renewEveryMs: number;
  telemetry?: Telemetry;
  /**
   * The worker's own heartbeat record: a job claimed before a gap in it stops before any paid
   * call or write (another worker may hold it now). Absent: no presence (single worker tests).
   */
  fence?: Fence;
  /** Firestore reads and writes made for a job since the last call (counted by the adapter). */
  firestoreOps?: (characterId: string) => FirestoreOps;
  /** Called with each claimed job's writer while it runs, and with undefined when it ends. */
  track?: (characterId: string, writer: JobWriter | undefined) => void;
  scheduler?: SchedulerLike;
  now?: () => number;
}

/**
 * One request, from claim to the final write, as a cold Observable that emits exactly one
 * outcome and never errors: a failing job cannot break the stream of other jobs.
 */
export function createJobRunner(
  deps: JobRunnerDeps,
): (request: JobRequest) => Observable<JobOutcome> {
  const now = deps.now ?? Date.now;

  return (request) => {
    const started = now();
    const outcome = (kind: JobOutcome['kind'], code?: string): JobOutcome => {
      const ops = deps.firestoreOps?.(request.characterId);
      return {
        characterId: request.characterId,
        kind,
        ...(code === undefined ? {} : { code }),
        durationMs: now() - started,
        ...(ops ? { firestore: ops } : {}),
      };
    };
    const log = deps.log.child({ characterId: request.characterId });
    const telemetry = deps.telemetry ?? noTelemetry;

    const claim$ = fromAbortable(() => deps.store.claim(request)).pipe(
      retryTransient(
        deps.retry,
        (error, retry, delayMs) =>
          log.warn('job.retry_scheduled', { call: 'claim', code: error.code, retry, delayMs }),
        deps.scheduler,
      ),
    );

    return claim$.pipe(
      concatMap((claim) => {
        if (claim.kind === 'skipped') {
          log.debug('job.skipped', { reason: claim.reason, origin: request.origin });
          return of(outcome('skipped', claim.reason));
        }
        if (claim.kind === 'exhausted') {
          log.error('job.failed', { code: 'ATTEMPTS_EXHAUSTED', attempts: claim.attempts });
          return of(outcome('exhausted', 'ATTEMPTS_EXHAUSTED'));
        }
        const writer = deps.sink.open(claim.lease);
        const jobLog = log.child({ jobId: claim.lease.jobId, attempt: claim.lease.attempt });
        const pickupMs = now() - claim.lease.requestedAt;
        jobLog.info('job.claimed', { origin: request.origin, pickupMs });
        telemetry.jobClaimed(pickupMs);
        deps.track?.(request.characterId, writer);
        const run = new JobRun(deps, writer, jobLog, started, now, telemetry);
        const fence = deps.fence;
        // Coverage running out mid-job ends it at once: in-flight calls are aborted.
        const lapse$: Observable<never> = fence
          ? fence.lapses$.pipe(
              map(() => {
                throw new PresenceLapsedError(request.characterId);
              }),
            )
          : EMPTY;
        const renew$ = renewLease(
          () =>
            fromAbortable(() => run.fenced(() => writer.renew())).pipe(
              retryTransient(
                deps.retry,
                (error, retry, delayMs) =>
                  jobLog.warn('job.retry_scheduled', {
                    call: 'renew',
                    code: error.code,
                    retry,
                    delayMs,
                  }),
                deps.scheduler,
              ),
            ),
          deps.renewEveryMs,
          deps.scheduler,
        );
        return merge(run.process(claim.document), renew$, lapse$).pipe(
          take(1),
          map((): JobOutcome => outcome('complete')),
          catchError((err: unknown) => run.settleFailure(err, outcome)),
          concatMap((result) => {
            deps.track?.(request.characterId, undefined);
            return of(result);
          }),
        );
      }),
      catchError((err: unknown) => {
        // Only the claim can fail here: nothing was paid for and nothing written.
        const error = classify(err);
        log.error('job.claim_failed', { code: error.code, detail: error.detail ?? describe(err) });
        return of(outcome('skipped', error.code));
      }),
      tap((result) => telemetry.jobFinished(result)),
    );
  };
}

/** The stages of one claimed job. */
class JobRun {
  private stage: InProgressStatus = 'removing-background';

  constructor(
    private readonly deps: JobRunnerDeps,
    private readonly writer: JobWriter,
    private readonly log: Log,
    private readonly started: number,
    private readonly now: () => number,
    private readonly telemetry: Telemetry,
  ) {}

  process(document: unknown): Observable<void> {
    return defer(() => {
      const spec = parseJobDocument(this.writer.lease.characterId, document);
      return this.removeBackground(spec).pipe(
        concatMap((step) =>
          step.kind === 'cached'
            ? this.finalize(spec, step.png, step.key, true)
            : this.upscale(step.cutout, step.key).pipe(
                concatMap((upscaled) => this.finalize(spec, upscaled, step.key, false)),
              ),
        ),
      );
    });
  }

  /**
   * Stage 1: fetch the source and check it; reuse an earlier identical job's result, or a
   * cut-out this job already paid for before a crash; else cut the background out.
   */
  private removeBackground(
    spec: JobSpec,
  ): Observable<
    { kind: 'cached'; png: Buffer; key: string } | { kind: 'cutout'; cutout: Buffer; key: string }
  > {
    const work$ = this.call('fetch-source', (signal) =>
      this.deps.fetcher.fetch(spec.imageUrl, signal),
    ).pipe(
      concatMap((raw) => {
        const key = workKey(raw, this.deps.upscaleFactor);
        const cached$ = this.deps.resultCache
          ? this.call('find-result', (signal) => this.deps.cache.findResult(key, signal))
          : of(undefined);
        return cached$.pipe(
          concatMap((png) => {
            if (png) {
              this.event('job.cache_hit', { key });
              return of({ kind: 'cached' as const, png, key });
            }
            return this.paidOrCheckpointed('cutout', key, () =>
              defer(() => this.deps.steps.prepareSource(raw)).pipe(
                concatMap((source) => {
                  this.event('job.source_ready', { ...source.size });
                  return this.paid('remove-background', (signal) =>
                    this.deps.images.removeBackground(source.data, signal),
                  );
                }),
              ),
            ).pipe(map((cutout) => ({ kind: 'cutout' as const, cutout, key })));
          }),
        );
      }),
    );
    return this.enter('removing-background', work$);
  }

  /** Stage 2: upscale by the configured factor, within ClipDrop's 4096 px per side. */
  private upscale(cutout: Buffer, key: string): Observable<Buffer> {
    const work$ = this.paidOrCheckpointed('upscaled', key, () =>
      defer(() => this.deps.steps.prepareForUpscale(cutout)).pipe(
        concatMap((input) => {
          const target = upscaleTarget(input.size, this.deps.upscaleFactor);
          if (target.width <= input.size.width && target.height <= input.size.height) {
            // Already as large as ClipDrop can make it: a call would buy nothing.
            this.event('job.upscale_skipped', { ...input.size });
            return of(input.data);
          }
          return this.paid('upscale', (signal) =>
            this.deps.images.upscale(input.data, target, signal),
          );
        }),
      ),
    );
    return this.enter('upscaling', work$);
  }

  /** Stage 3: encode a real PNG, store it (and in the result cache), and write the result. */
  private finalize(
    spec: JobSpec,
    image: Buffer,
    key: string,
    fromCache: boolean,
  ): Observable<void> {
    const path = showcasePath(spec);
    const work$ = defer(() =>
      fromCache ? Promise.resolve(pngOf(image)) : this.deps.steps.finalizePng(image),
    ).pipe(
      concatMap((png) =>
        this.call('upload', (signal) => this.deps.results.savePng(path, png.data, signal)).pipe(
          concatMap((url) =>
            this.deps.resultCache && !fromCache
              ? this.call('save-result', (signal) =>
                  this.deps.cache.saveResult(key, png.data, signal),
                ).pipe(map(() => url))
              : of(url),
          ),
          map((url) => ({
            url,
            path,
            width: png.size.width,
            height: png.size.height,
            bytes: png.data.length,
          })),
        ),
      ),
    );
    return this.enter('finalizing', work$).pipe(
      concatMap((result) =>
        this.call('complete', () => this.writer.complete(result)).pipe(map(() => result)),
      ),
      map((result) => {
        this.event('job.completed', {
          width: result.width,
          height: result.height,
          bytes: result.bytes,
          calls: this.writer.usage.calls,
          credits: this.writer.usage.credits,
          cached: fromCache,
        });
      }),
      // After the result is written (the user is not kept waiting), before the job's slot frees.
      concatMap(() => this.clearCheckpoints(key)),
    );
  }

  /**
   * A paid stage's output: from its checkpoint when this job was recovered and had already
   * paid for it, else from `produce$`, checkpointed before the job moves on.
   */
  private paidOrCheckpointed(
    stage: Checkpoint,
    key: string,
    produce$: () => Observable<Buffer>,
  ): Observable<Buffer> {
    const characterId = this.writer.lease.characterId;
    const saved$ = this.writer.lease.recovered
      ? this.call(`find-checkpoint:${stage}`, (signal) =>
          this.deps.cache.findCheckpoint(characterId, key, stage, signal),
        )
      : of(undefined);
    return saved$.pipe(
      concatMap((saved) => {
        if (saved) {
          this.event('job.checkpoint_used', { checkpoint: stage });
          return of(saved);
        }
        return produce$().pipe(
          concatMap((data) =>
            this.call(`save-checkpoint:${stage}`, (signal) =>
              this.deps.cache.saveCheckpoint(characterId, key, stage, data, signal),
            ).pipe(map(() => data)),
          ),
        );
      }),
    );
  }

  /** A ClipDrop call, its credits recorded on the job. */
  private paid(
    name: 'remove-background' | 'upscale',
    fn: (signal: AbortSignal) => Promise<PaidImage>,
  ): Observable<Buffer> {
    return this.call(name, fn).pipe(
      map((paid) => {
        this.writer.recordCall(name, paid.credits);
        return paid.image;
      }),
    );
  }

  /** Checkpoints are only for recovery: once the job is complete they are clutter. */
  private clearCheckpoints(key: string): Observable<void> {
    const characterId = this.writer.lease.characterId;
    return defer(() => this.deps.cache.clearCheckpoints(characterId, key)).pipe(
      catchError((err: unknown) => {
        // Harmless leftovers: logged, never a reason to fail a completed job.
        this.event('job.checkpoint_cleanup_failed', { detail: describe(err) }, 'warn');
        return of(undefined);
      }),
    );
  }

  /** Writes the stage's status while its work runs; the next stage waits for both. */
  private enter<T>(stage: InProgressStatus, work$: Observable<T>): Observable<T> {
    this.stage = stage;
    this.event('job.stage', {});
    const write$ = this.call(`status:${stage}`, () => this.writer.stage(stage));
    const began = this.now();
    return forkJoin([write$, work$]).pipe(
      map(([, value]) => {
        this.telemetry.stageFinished(stage, this.now() - began);
        return value;
      }),
    );
  }

  /**
   * Runs `fn` only while the job is surely still ours: no heartbeat gap since the claim began
   * (`started` precedes the claim transaction). Checked before every try of every call, so a
   * worker that was partitioned pays and writes nothing for a job another worker took over.
   */
  fenced<T>(fn: () => Promise<T>): Promise<T> {
    const fence = this.deps.fence;
    if (fence && !fence.holds(this.started)) {
      return Promise.reject(new PresenceLapsedError(this.writer.lease.characterId));
    }
    return fn();
  }

  /** One side-effecting call, abortable, retried on transient errors. */
  private call<T>(name: string, fn: (signal: AbortSignal) => Promise<T>): Observable<T> {
    return fromAbortable((signal) => this.fenced(() => fn(signal))).pipe(
      retryTransient(
        this.deps.retry,
        (error, retry, delayMs) =>
          this.event(
            'job.retry_scheduled',
            { call: name, code: error.code, retry, delayMs, detail: error.detail },
            'warn',
          ),
        this.deps.scheduler,
      ),
    );
  }

  /** The one place a job's failure is handled: log it and write it, or give the job up. */
  settleFailure(
    err: unknown,
    outcome: (kind: JobOutcome['kind'], code?: string) => JobOutcome,
  ): Observable<JobOutcome> {
    if (err instanceof PresenceLapsedError) {
      // Presumed taken over. If nobody did, give it back; the write is fenced by owner and
      // jobId, so on a job another worker holds it changes nothing.
      this.event('job.presence_lapsed', {}, 'warn');
      this.writer
        .release()
        .catch((releaseErr: unknown) =>
          this.event('job.release_failed', { detail: describe(releaseErr) }, 'warn'),
        );
      return of(outcome('lost', 'PRESENCE_LAPSED'));
    }
    if (err instanceof LeaseLostError) {
      this.event('job.lease_lost', {}, 'warn');
      return of(outcome('lost'));
    }
    const error = classify(err);
    this.event(
      'job.failed',
      { code: error.code, detail: error.detail ?? describe(err) },
      error.code === 'INTERNAL' ? 'error' : 'warn',
    );
    return this.call('fail', () => this.writer.fail(error, this.stage)).pipe(
      map(() => outcome('failed', error.code)),
      catchError((writeErr: unknown) => {
        this.event('job.fail_write_failed', { detail: describe(writeErr) }, 'error');
        return of(outcome('lost', error.code));
      }),
    );
  }

  private event(
    name: string,
    fields: Record<string, unknown>,
    level: 'info' | 'warn' | 'error' = 'info',
  ): void {
    this.log[level](name, { stage: this.stage, elapsedMs: this.now() - this.started, ...fields });
  }
}
