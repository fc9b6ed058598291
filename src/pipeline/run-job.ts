import {
  catchError,
  concatMap,
  defer,
  forkJoin,
  map,
  merge,
  of,
  take,
  tap,
  finalize,
  Observable,
} from 'rxjs';
import type { CallGate, CallTicket } from '../jobs/call-window.js';
import { parseJobDocument, showcasePath, type JobSpec } from '../jobs/document.js';
import { classify, describe } from '../jobs/errors.js';
import { upscaleTarget } from '../image/limits.js';
import {
  LeaseLostError,
  PresenceLapsedError,
  type ImageService,
  type ImageSteps,
  type JobOutcome,
  type JobRequest,
  type JobStore,
  type Log,
  type PaidCallOptions,
  type PaidImage,
  type ResultStore,
  type SourceFetcher,
  type UserQuota,
  type WorkCache,
} from '../jobs/ports.js';
import type { EarlyDownloads } from '../jobs/request-limit.js';
import { checkSameSource, sourceHash } from '../jobs/source-binding.js';
import type { InProgressStatus } from '../jobs/status.js';
import { NO_HOLD, type CreditHold, type Intake } from '../jobs/intake.js';
import { admission, callsOf, notClaimed, unclaimed } from './before-claim.js';
import { JobCheckpoints, type Stored } from './checkpoints.js';
import { noQuota, userQuotas, type JobQuota, type Spent } from './job-quota.js';
import {
  openJobScope,
  watching,
  type ClaimedScope,
  type JobScope,
  type JobTiming,
  type JobWatch,
} from './job-scope.js';
import { billedTo, endingHold, intakeHold, mustFinishCalls } from './intake-hold.js';
import { Lent } from './lent.js';
import { prefetchSource, type Prefetched } from './prefetch.js';
import { pngOf, workKeyOf } from './work-key.js';
import type { JobWriter, StatusSink } from './status-sink.js';

export { callsOf } from './before-claim.js';

/**
 * The story of one job: claim → remove background → upscale → finalize → settle. What watches
 * over it (fence, lease, counts), its owner's limits and its checkpoints are per-job
 * collaborators of their own (job-scope.ts, job-quota.ts, checkpoints.ts).
 */

/** What a job works with: its source, ClipDrop, the local image steps, the bucket. */
export interface JobTools {
  fetcher: SourceFetcher;
  images: ImageService;
  steps: ImageSteps;
  results: ResultStore;
  /** Checkpoints of paid stages and finished results, so nothing is paid for twice. */
  cache: WorkCache;
  /** Reuse an earlier identical job's result (same source bytes and settings). */
  resultCache: boolean;
  upscaleFactor: number;
}

export interface JobRunnerDeps {
  /** Claims jobs; the sink makes a claimed job's writes, in order, each proving its lease. */
  store: JobStore;
  sink: StatusSink;
  tools: JobTools;
  timing: JobTiming;
  log: Log;
  /** Per-user limits (docs/fairness.md); none: no limits. */
  quota?: UserQuota;
  /** Fence, telemetry, counts and tracking; each part left out does nothing (`unwatched`). */
  watch?: Partial<JobWatch>;
  /** Claims follow the window (the rate limiter); none: claimed at once. */
  gate?: CallGate;
  /** False for a request another worker took while it waited (dealing.ts): not claimed. */
  stillOpen?: (request: JobRequest) => boolean;
  /**
   * Which source a fresh click's download may start with alongside its claim (the job
   * store's: the one the claim binds, and none over the request limit). None: the document's.
   */
  early?: EarlyDownloads;
  /** Nothing new is claimed while it is paused; a job holds its credits (jobs/intake.ts). */
  intake?: Intake;
}

/**
 * One request, from claim to the final write, as a cold Observable that emits exactly one
 * outcome and never errors: a failing job cannot break the stream of other jobs.
 */
export function createJobRunner(
  deps: JobRunnerDeps,
): (request: JobRequest) => Observable<JobOutcome> {
  const watch = watching(deps.watch);
  const quotas = deps.quota ? userQuotas(deps.quota, deps.timing) : noQuota;

  const skipped = (request: JobRequest): JobOutcome => ({
    characterId: request.characterId,
    kind: 'skipped',
    durationMs: 0,
  });

  return (request) => {
    // A job that must finish (taken over, or past its first paid call) holds its calls' credits
    // whatever the pauses: counted, never waited for (jobs/intake.ts `force`).
    const stillOpen = deps.stillOpen && (() => deps.stillOpen?.(request) !== false);
    const mustFinish = mustFinishCalls(request);
    const hold$ = !deps.intake
      ? of(NO_HOLD)
      : mustFinish !== undefined
        ? of(deps.intake.force(mustFinish))
        : intakeHold(deps.intake, stillOpen);
    return hold$.pipe(
      concatMap((hold) =>
        hold === undefined ? of(skipped(request)) : admitted(request, hold).pipe(endingHold(hold)),
      ),
    );
  };

  function admitted(request: JobRequest, hold: CreditHold): Observable<JobOutcome> {
    const calls = callsOf(request);
    // Claims follow the window (call-window.ts); a takeover or a new user's first job goes at once.
    const admitted$: Observable<CallTicket | null> =
      deps.gate && calls.priority === undefined ? admission(deps.gate) : of(null);
    return admitted$.pipe(
      concatMap((ticket) => {
        if (ticket === null) return runClaimed(request, calls, hold);
        // Taken by another worker while it waited for the window: no claim, no download.
        if (deps.stillOpen?.(request) === false) {
          ticket.release();
          return of(skipped(request));
        }
        return runClaimed(request, { ...calls, ticket }, hold).pipe(
          finalize(() => ticket.release()),
        );
      }),
    );
  }

  function runClaimed(
    request: JobRequest,
    calls: PaidCallOptions,
    hold: CreditHold,
  ): Observable<JobOutcome> {
    return defer(() => {
      const scope = openJobScope(request, deps.log, deps.timing, watch);
      const quota = quotas(request, scope);
      let prefetch: ReturnType<typeof prefetchSource>;

      // Subscribed once the owner's slot is had (USER_MAX_ACTIVE): a deferred job downloads
      // nothing, and starts its download when it is tried again and gets the slot. A slot
      // another worker took for the same click means that worker most likely holds the job:
      // the download waits for the claim (JobRun fetches a source nothing prefetched). So does
      // a job deferred before: while it waited, its click may have been handed to another.
      const claimed$ = defer(() => {
        prefetch =
          quota.slotTakenElsewhere || request.handedOver === true || request.deferred === true
            ? undefined
            : prefetchSource(
                request,
                (url, userId) =>
                  scope.retried('fetch-source', (signal) =>
                    deps.tools.fetcher.fetch(url, userId, signal),
                  ),
                deps.early && (deps.early.earlySource(request) ?? null),
              );
        return scope.retried('claim', () => deps.store.claim(request));
      }).pipe(
        concatMap((claim) => {
          if (claim.kind !== 'claimed') return of(notClaimed(claim, request, scope));
          const writer = deps.sink.open(claim.lease);
          const job = scope.claimed(writer, request.origin);
          const run = new JobRun(deps.tools, writer, job, quota, {
            prefetched: prefetch?.source,
            calls,
            hold,
          });
          return merge(run.process(claim.document), job.guard$).pipe(
            take(1),
            map((): JobOutcome => scope.outcome('complete')),
            catchError((err: unknown) => run.settleFailure(err, scope)),
            // After the final write (off the user's wait), before the job's slot frees.
            concatMap((result) => quota.refund$(result, run.spent()).pipe(map(() => result))),
            tap(() => job.ended()),
          );
        }),
        // Only the claim can fail here: nothing was paid for and nothing written.
        catchError((err: unknown) => of(unclaimed('job.claim_failed', err, scope))),
      );

      return quota.slot$.pipe(
        concatMap((acquired) => (acquired ? claimed$ : of(scope.outcome('deferred')))),
        // The slot could not be read: nothing claimed; the sweep brings the request back.
        catchError((err: unknown) => of(unclaimed('job.slot_failed', err, scope))),
        concatMap((result) => quota.release$(result)),
        tap((result) => scope.telemetry.jobFinished(result)),
        finalize(() => prefetch?.stop()),
      );
    });
  }
}

/** What a job run takes from its request besides its collaborators. */
interface RunContext {
  prefetched: Prefetched | undefined;
  /** How the job's paid calls queue for the rate limiter (a takeover's and a new user's go first). */
  calls: PaidCallOptions;
  /** Its credits of the day's budget: each paid call is counted there. */
  hold: CreditHold;
}

/** The stages of one claimed job. */
class JobRun {
  private readonly checkpoints: JobCheckpoints;

  constructor(
    private readonly tools: JobTools,
    private readonly writer: JobWriter,
    private readonly job: ClaimedScope,
    private readonly quota: JobQuota,
    private readonly context: RunContext,
  ) {
    const { lease } = writer;
    this.checkpoints = new JobCheckpoints(tools.cache, lease.characterId, lease.recovered, job);
  }

  process(document: unknown): Observable<void> {
    return defer(() => {
      const { lease } = this.writer;
      const parsed = parseJobDocument(lease.characterId, document);
      // The picture the claim bound the job to, whatever the document names now.
      const spec = { ...parsed, imageUrl: lease.source?.url ?? parsed.imageUrl };
      this.quota.admit(lease, spec.userId, this.job);
      return this.removeBackground(spec).pipe(
        concatMap((step) => {
          if (step.kind === 'cached') {
            return this.finalize(spec, { data: step.png, saved$: of(undefined) }, step.key, true);
          }
          // No closure below holds `step`: the cut-out is freed once stage 2 is done with it.
          const key = step.key;
          return this.upscale(step.cutout, key).pipe(
            concatMap(({ upscaled, mask }) => this.finalize(spec, upscaled, key, false, mask)),
          );
        }),
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
    { kind: 'cached'; png: Buffer; key: string } | { kind: 'cutout'; cutout: Stored; key: string }
  > {
    const prefetched = this.context.prefetched;
    const early =
      prefetched?.url === spec.imageUrl && prefetched.userId === spec.userId
        ? prefetched.take()
        : undefined;
    const source$ = early
      ? early.pipe(take(1))
      : this.job.call('fetch-source', (signal) =>
          this.tools.fetcher.fetch(spec.imageUrl, spec.userId, signal),
        );
    const work$ = source$.pipe(
      concatMap((raw) => {
        const sha256 = sourceHash(raw);
        // A later attempt that reads other bytes than the first fails (SOURCE_CHANGED).
        checkSameSource(this.writer.lease.source, sha256);
        this.writer.bindSource(sha256);
        const key = workKeyOf(sha256, this.tools.upscaleFactor);
        const cached$ = this.tools.resultCache
          ? this.job.call('find-result', (signal) =>
              this.tools.cache.findResult(key, spec.userId, signal),
            )
          : of(undefined);
        return cached$.pipe(
          concatMap((png) => {
            if (png) {
              this.job.event('job.cache_hit', { key });
              return of({ kind: 'cached' as const, png, key });
            }
            return this.checkpoints
              .paidOrCheckpointed('cutout', key, () =>
                defer(() => this.tools.steps.prepareSource(raw)).pipe(
                  concatMap((source) => {
                    this.job.event('job.source_ready', { ...source.size });
                    return this.paid('remove-background', (signal) =>
                      this.tools.images.removeBackground(source.data, signal, this.context.calls),
                    );
                  }),
                ),
              )
              .pipe(map((cutout) => ({ kind: 'cutout' as const, cutout, key })));
          }),
        );
      }),
    );
    return this.enter('removing-background', work$);
  }

  /**
   * Stage 2: upscale by the configured factor, within ClipDrop's 4096 px per side, while the
   * cut-out's checkpoint is stored and its alpha is kept aside (a compact mask): the stages
   * after this one hold the mask, not the cut-out.
   */
  private upscale(cutout: Stored, key: string): Observable<{ upscaled: Stored; mask: Buffer }> {
    // The upscaler's input and the mask are all this stage makes of the cut-out: it is let go
    // once both are made, not when the paid call (seconds) returns. No closure holds `cutout`.
    const lent = new Lent(cutout.data, 2);
    const upscaled$ = this.checkpoints.paidOrCheckpointed('upscaled', key, () =>
      defer(() => lent.use((data) => this.tools.steps.prepareForUpscale(data))).pipe(
        concatMap((input) => {
          const target = upscaleTarget(input.size, this.tools.upscaleFactor);
          if (target.width <= input.size.width && target.height <= input.size.height) {
            // Already as large as ClipDrop can make it: a call would buy nothing.
            this.job.event('job.upscale_skipped', { ...input.size });
            return of(input.data);
          }
          return this.paid('upscale', (signal) =>
            this.tools.images.upscale(input.data, target, signal, this.context.calls),
          );
        }),
      ),
    );
    const mask$ = defer(() => lent.use((data) => this.tools.steps.alphaMask(data)));
    const work$ = forkJoin([cutout.saved$, upscaled$, mask$]).pipe(
      map(([, upscaled, mask]) => ({ upscaled, mask })),
    );
    return this.enter('upscaling', work$);
  }

  /**
   * Stage 3: encode a real PNG, store it and (at the same time) in the result cache while the
   * upscaled checkpoint is stored, and write the result.
   */
  private finalize(
    spec: JobSpec,
    image: Stored,
    key: string,
    fromCache: boolean,
    /** The cut-out's alpha (alphaMask), which the (opaque) upscaled picture takes on. */
    mask?: Buffer,
  ): Observable<void> {
    const path = showcasePath(spec);
    const stored$ = defer(() =>
      fromCache
        ? Promise.resolve(pngOf(image.data))
        : this.tools.steps.finalizePng(image.data, mask),
    ).pipe(
      concatMap((png) =>
        forkJoin([
          this.job.call('upload', (signal) => this.tools.results.savePng(path, png.data, signal)),
          this.tools.resultCache && !fromCache
            ? this.job.call('save-result', (signal) =>
                this.tools.cache.saveResult(key, spec.userId, png.data, signal),
              )
            : of(undefined),
        ]).pipe(
          map(([url]) => ({
            url,
            path,
            width: png.size.width,
            height: png.size.height,
            bytes: png.data.length,
          })),
        ),
      ),
    );
    const work$ = forkJoin([image.saved$, stored$]).pipe(map(([, result]) => result));
    return this.enter('finalizing', work$).pipe(
      // The settlement is decided first, so the fenced call sends the write at once.
      concatMap((result) =>
        defer(() => this.quota.settlement(this.spent())).pipe(
          concatMap((settlement) =>
            this.job.call('complete', () => this.writer.complete(result, settlement)),
          ),
          map(() => result),
        ),
      ),
      map((result) => {
        this.job.settled();
        this.job.event('job.completed', {
          width: result.width,
          height: result.height,
          bytes: result.bytes,
          calls: this.writer.usage.calls,
          credits: this.writer.usage.credits,
          cached: fromCache,
        });
      }),
      // After the result is written (the user is not kept waiting), before the job's slot frees.
      concatMap(() => this.checkpoints.clear(key)),
    );
  }

  /** What the job has done that its owner's day may count (job-quota.ts decides). */
  spent(): Spent {
    const { usage, lease } = this.writer;
    return { usage, lease, checkpointUsed: this.checkpoints.used };
  }

  /** A ClipDrop call, its credits recorded on the job; only once the job is admitted. */
  private paid(
    name: 'remove-background' | 'upscale',
    fn: (signal: AbortSignal) => Promise<PaidImage>,
  ): Observable<Buffer> {
    return defer(() => this.quota.beforePaidCall()).pipe(
      concatMap(() => this.job.call(name, fn).pipe(billedTo(this.context.hold))),
      map((paid) => {
        this.writer.recordCall(name, paid.credits);
        return paid.image;
      }),
    );
  }

  /** Writes the stage's status while its work runs; the next stage waits for both. */
  private enter<T>(stage: InProgressStatus, work$: Observable<T>): Observable<T> {
    const finished = this.job.enter(stage);
    const write$ = this.job.call(`status:${stage}`, () => this.writer.stage(stage));
    return forkJoin([write$, work$]).pipe(
      map(([, value]) => {
        finished();
        return value;
      }),
    );
  }

  /** The one place a job's failure is handled: log it and write it, or give the job up. */
  settleFailure(err: unknown, scope: JobScope): Observable<JobOutcome> {
    if (err instanceof PresenceLapsedError) {
      // Presumed taken over. If nobody did, give it back; the write is fenced by owner and
      // jobId, so on a job another worker holds it changes nothing.
      this.job.event('job.presence_lapsed', {}, 'warn');
      this.writer
        .release()
        .catch((releaseErr: unknown) =>
          this.job.event('job.release_failed', { detail: describe(releaseErr) }, 'warn'),
        );
      return of(scope.outcome('lost', 'PRESENCE_LAPSED'));
    }
    if (err instanceof LeaseLostError) {
      this.job.event('job.lease_lost', {}, 'warn');
      return of(scope.outcome('lost'));
    }
    const error = classify(err);
    this.job.event(
      'job.failed',
      { code: error.code, detail: error.detail ?? describe(err) },
      error.code === 'INTERNAL' ? 'error' : 'warn',
    );
    return defer(() => this.quota.settlement(this.spent())).pipe(
      concatMap((settlement) =>
        this.job.call('fail', () => this.writer.fail(error, this.job.stage, settlement)),
      ),
      map(() => {
        this.job.settled();
        if (this.writer.ended !== 'complete') return scope.outcome('failed', error.code);
        // A completion that failed but may have landed went first, and did land.
        this.job.event('job.completed', { resent: true, calls: this.writer.usage.calls });
        return scope.outcome('complete');
      }),
      catchError((writeErr: unknown) => {
        this.job.event('job.fail_write_failed', { detail: describe(writeErr) }, 'error');
        return of(scope.outcome('lost', error.code));
      }),
    );
  }
}
