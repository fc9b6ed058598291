import {
  ReplaySubject,
  catchError,
  concatMap,
  defer,
  finalize,
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
import { classify, describe, isJobError, JobError } from '../jobs/errors.js';
import { dailyLimitMessage } from '../jobs/user-limits.js';
import { upscaleTarget } from '../image/limits.js';
import { RoundTripCounter } from '../jobs/round-trips.js';
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
  type PaidCallOptions,
  type PaidImage,
  type DaySettlement,
  type QuotaTicket,
  type UserQuota,
  type RoundTripScope,
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
  /** Per-user limits (docs/fairness.md); none: no limits. */
  quota?: UserQuota;
  /** Lets the adapters count each job's Google requests (`JobOutcome.roundTrips`). */
  roundTrips?: RoundTripScope;
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
  /** Firestore reads and writes the adapter counted for a job (issue 10's per-job cost). */
  const firestoreOpsOf = (characterId: string): Pick<JobOutcome, 'firestore'> => {
    const ops = deps.firestoreOps?.(characterId);
    return ops ? { firestore: ops } : {};
  };

  return (request) =>
    defer(() => {
      const started = now();
      const trips = new RoundTripCounter();
      const scoped = <T>(fn: (signal: AbortSignal) => Promise<T>) =>
        deps.roundTrips
          ? (signal: AbortSignal) => deps.roundTrips!.run(trips, () => fn(signal))
          : fn;
      let tripsAtEnd: JobOutcome['roundTrips'];
      const outcome = (kind: JobOutcome['kind'], code?: string): JobOutcome => ({
        ...firestoreOpsOf(request.characterId),
        characterId: request.characterId,
        kind,
        ...(code === undefined ? {} : { code }),
        durationMs: now() - started,
        ...(tripsAtEnd ? { roundTrips: tripsAtEnd } : {}),
      });
      const log = deps.log.child({ characterId: request.characterId });
      const telemetry = deps.telemetry ?? noTelemetry;
      const retried = <T>(call: string, fn: (signal: AbortSignal) => Promise<T>) =>
        fromAbortable(scoped(fn)).pipe(
          retryTransient(
            deps.retry,
            (error, retry, delayMs) =>
              log.warn('job.retry_scheduled', { call, code: error.code, retry, delayMs }),
            deps.scheduler,
          ),
        );
      const prefetch = prefetchSource(request, (url, userId) =>
        retried('fetch-source', (signal) => deps.fetcher.fetch(url, userId, signal)),
      );

      // USER_MAX_ACTIVE: a slot of the owner's is taken before the claim; an owner at the limit
      // leaves the job unclaimed (deferred: the worker requests it again after a pause).
      const quota = deps.quota;
      const ownerId = request.ownerId;
      const wantsSlot = !!quota?.slotsEnabled && !!ownerId && request.requestedBy !== 'operator';
      // The character's slot as this job got it: taken here, or covered by one another worker took.
      let slot: 'taken' | 'covered' | undefined;
      /**
       * A slot is one per character, whoever took it: the job that ran here gives it back (it
       * may run under a slot another worker took for the same click), and so does a taker whose
       * claim was skipped, unless the job is held: its runner gives it back when it ends.
       */
      const givesSlotBack = (result: JobOutcome): boolean => {
        switch (result.kind) {
          case 'deferred':
          case 'lost': // the new owner's, same character
          case 'released': // resumed by another worker, same character
            return false;
          case 'skipped':
            return slot === 'taken' && result.code !== 'held';
          default:
            return slot !== undefined;
        }
      };
      const releaseSlot$ = defer(() => {
        if (!slot || !quota || !ownerId) return of(undefined);
        slot = undefined;
        return fromAbortable(() => quota.releaseSlot(ownerId, request.characterId)).pipe(
          retryTransient(deps.retry, () => undefined, deps.scheduler),
          catchError((err: unknown) => {
            // It frees itself once the job's lease is gone: logged, never a failure.
            log.warn('job.slot_release_failed', { detail: describe(err) });
            return of(undefined);
          }),
        );
      });
      const slot$: Observable<boolean> =
        wantsSlot && quota && ownerId
          ? fromAbortable(() => quota.acquireSlot(ownerId, request.characterId)).pipe(
              retryTransient(deps.retry, () => undefined, deps.scheduler),
              map((acquired) => {
                if (acquired.kind === 'busy') {
                  log.debug('job.deferred', {
                    limit: 'active',
                    maxActive: acquired.limit,
                    ownerId,
                  });
                  telemetry.userLimitHit?.('active');
                  return false;
                }
                slot = acquired.holder ? 'taken' : 'covered';
                return true;
              }),
            )
          : of(true);

      const claimed$ = retried('claim', () => deps.store.claim(request)).pipe(
        concatMap((claim) => {
          if (claim.kind === 'skipped') {
            // A takeover that finds the job taken is worth seeing (another survivor won it).
            const level = request.takeover === true ? 'info' : 'debug';
            log[level]('job.skipped', { reason: claim.reason, origin: request.origin });
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
          const run = new JobRun(deps, writer, jobLog, started, now, telemetry, {
            scoped,
            prefetched: prefetch?.source,
            calls: { urgent: request.takeover === true },
            settled: () => {
              // Reported only where adapters count: a scope-less runner has nothing to say.
              if (deps.roundTrips) {
                tripsAtEnd = { sequential: trips.sequential, total: trips.total };
              }
            },
          });
          const ticket = run.ticket(claim.document);
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
          return merge(run.process(claim.document, ticket), renew$, lapse$).pipe(
            take(1),
            map((): JobOutcome => outcome('complete')),
            catchError((err: unknown) => run.settleFailure(err, outcome)),
            // After the final write (off the user's wait), before the job's slot frees.
            concatMap((result) => run.refundUnpaid(result).pipe(map(() => result))),
            concatMap((result) => {
              deps.track?.(request.characterId, undefined);
              return of(result);
            }),
          );
        }),
        catchError((err: unknown) => {
          // Only the claim can fail here: nothing was paid for and nothing written.
          const error = classify(err);
          log.error('job.claim_failed', {
            code: error.code,
            detail: error.detail ?? describe(err),
          });
          return of(outcome('skipped', error.code));
        }),
      );

      return slot$.pipe(
        concatMap((acquired) => (acquired ? claimed$ : of(outcome('deferred')))),
        catchError((err: unknown) => {
          // The slot could not be read: nothing claimed; the sweep brings the request back.
          const error = classify(err);
          log.error('job.slot_failed', { code: error.code, detail: error.detail ?? describe(err) });
          return of(outcome('skipped', error.code));
        }),
        concatMap((result) =>
          givesSlotBack(result) ? releaseSlot$.pipe(map(() => result)) : of(result),
        ),
        tap((result) => telemetry.jobFinished(result)),
        finalize(() => prefetch?.stop()),
      );
    });
}

/** A source download started before the claim answers; see prefetchSource. */
interface Prefetched {
  url: string;
  userId: string;
  /** The bytes, once: the prefetch then lets go of them (the job drops them after stage 1). */
  take(): Observable<Buffer> | undefined;
}

/**
 * A fresh click seen by the listener carries its document: its source download starts
 * alongside the claim instead of after it, one round trip less on the job's path. Nothing is
 * paid for before the claim succeeds; a claim that is refused only stops the download. The
 * job uses it only if the claimed document still names the same URL and owner (the fetcher
 * checks a `gs://` source against that owner).
 */
function prefetchSource(
  request: JobRequest,
  fetch: (url: string, userId: string) => Observable<Buffer>,
): { source: Prefetched; stop: () => void } | undefined {
  if (request.document === undefined) return undefined;
  let spec: JobSpec;
  try {
    spec = parseJobDocument(request.characterId, request.document);
  } catch {
    return undefined; // the job reports the invalid document after its claim
  }
  let bytes: ReplaySubject<Buffer> | undefined = new ReplaySubject<Buffer>(1);
  const subscription = fetch(spec.imageUrl, spec.userId).subscribe(bytes);
  const take = () => {
    const taken = bytes;
    bytes = undefined;
    return taken;
  };
  return {
    source: { url: spec.imageUrl, userId: spec.userId, take },
    stop: () => subscription.unsubscribe(),
  };
}

/** What a job run needs from its runner besides the dependencies. */
interface RunContext {
  /** Runs a call with the job's round trips counted. */
  scoped: <T>(fn: (signal: AbortSignal) => Promise<T>) => (signal: AbortSignal) => Promise<T>;
  prefetched: Prefetched | undefined;
  /** How the job's paid calls queue for the rate limiter (a takeover's go first). */
  calls: PaidCallOptions;
  /** Called once the job's last write is done: its round trips are final. */
  settled: () => void;
}

/** A paid stage's output and its checkpoint upload, which the next stage waits for. */
interface Stored {
  data: Buffer;
  saved$: Observable<void>;
}

/**
 * A large intermediate lent to a known number of uses, then dropped: the job holds no
 * reference to it once the work that needs it has started, whatever the stage still waits for.
 */
class Lent {
  constructor(
    private data: Buffer | undefined,
    private uses: number,
  ) {}

  use<T>(fn: (data: Buffer) => Promise<T>): Promise<T> {
    const data = this.data;
    if (!data) return Promise.reject(new Error('a lent buffer was used more often than lent'));
    if (--this.uses === 0) this.data = undefined;
    return fn(data);
  }
}

/** The stages of one claimed job. */
class JobRun {
  private stage: InProgressStatus = 'removing-background';
  /** The daily-limit admission, started with the job and awaited before the first paid call. */
  private admission: Promise<boolean> | undefined;
  private quotaTicket: QuotaTicket | undefined;
  private checkpointUsed = false;

  constructor(
    private readonly deps: JobRunnerDeps,
    private readonly writer: JobWriter,
    private readonly log: Log,
    private readonly started: number,
    private readonly now: () => number,
    private readonly telemetry: Telemetry,
    private readonly context: RunContext,
  ) {}

  /**
   * The job as the daily limit sees it, or none when it does not count: no limits, a click by
   * the operator, or a document without a valid owner (it fails INVALID_DOCUMENT unpaid).
   */
  ticket(document: unknown): QuotaTicket | undefined {
    const lease = this.writer.lease;
    if (!this.deps.quota || lease.requestedBy === 'operator') return undefined;
    let userId: string;
    try {
      userId = parseJobDocument(lease.characterId, document).userId;
    } catch {
      // Not swallowed: process() parses the same document and fails the job with it.
      return undefined;
    }
    return {
      userId,
      characterId: lease.characterId,
      jobId: lease.jobId,
      requestedAt: lease.requestedAt,
    };
  }

  process(document: unknown, ticket: QuotaTicket | undefined): Observable<void> {
    return defer(() => {
      const spec = parseJobDocument(this.writer.lease.characterId, document);
      this.quotaTicket = ticket;
      this.admission = this.admit(ticket);
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
      : this.call('fetch-source', (signal) =>
          this.deps.fetcher.fetch(spec.imageUrl, spec.userId, signal),
        );
    const work$ = source$.pipe(
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
                    this.deps.images.removeBackground(source.data, signal, this.context.calls),
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

  /**
   * Stage 2: upscale by the configured factor, within ClipDrop's 4096 px per side, while the
   * cut-out's checkpoint is stored and its alpha is kept aside (a compact mask): the stages
   * after this one hold the mask, not the cut-out.
   */
  private upscale(cutout: Stored, key: string): Observable<{ upscaled: Stored; mask: Buffer }> {
    // The upscaler's input and the mask are all this stage makes of the cut-out: it is let go
    // once both are made, not when the paid call (seconds) returns. No closure holds `cutout`.
    const lent = new Lent(cutout.data, 2);
    const upscaled$ = this.paidOrCheckpointed('upscaled', key, () =>
      defer(() => lent.use((data) => this.deps.steps.prepareForUpscale(data))).pipe(
        concatMap((input) => {
          const target = upscaleTarget(input.size, this.deps.upscaleFactor);
          if (target.width <= input.size.width && target.height <= input.size.height) {
            // Already as large as ClipDrop can make it: a call would buy nothing.
            this.event('job.upscale_skipped', { ...input.size });
            return of(input.data);
          }
          return this.paid('upscale', (signal) =>
            this.deps.images.upscale(input.data, target, signal, this.context.calls),
          );
        }),
      ),
    );
    const mask$ = defer(() => lent.use((data) => this.deps.steps.alphaMask(data)));
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
        : this.deps.steps.finalizePng(image.data, mask),
    ).pipe(
      concatMap((png) =>
        forkJoin([
          this.call('upload', (signal) => this.deps.results.savePng(path, png.data, signal)),
          this.deps.resultCache && !fromCache
            ? this.call('save-result', (signal) =>
                this.deps.cache.saveResult(key, png.data, signal),
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
        defer(() => this.settlement()).pipe(
          concatMap((settlement) =>
            this.call('complete', () => this.writer.complete(result, settlement)),
          ),
          map(() => result),
        ),
      ),
      map((result) => {
        this.context.settled();
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
   * paid for it, else from `produce$`, with its checkpoint upload started (`saved$`, hot):
   * the next stage runs alongside it and waits for it before moving on in turn.
   */
  private paidOrCheckpointed(
    stage: Checkpoint,
    key: string,
    produce$: () => Observable<Buffer>,
  ): Observable<Stored> {
    const characterId = this.writer.lease.characterId;
    const saved$ = this.writer.lease.recovered
      ? this.call(`find-checkpoint:${stage}`, (signal) =>
          this.deps.cache.findCheckpoint(characterId, key, stage, signal),
        )
      : of(undefined);
    return saved$.pipe(
      concatMap((saved) => {
        if (saved) {
          this.checkpointUsed = true;
          this.event('job.checkpoint_used', { checkpoint: stage });
          return of({ data: saved, saved$: of(undefined) });
        }
        return produce$().pipe(
          map((data) => ({ data, saved$: this.checkpoint(stage, key, data) })),
        );
      }),
    );
  }

  /**
   * Starts storing a checkpoint (hot); the observable returned ends once it is stored, and
   * unsubscribing from it (the job's end, any way) stops an upload nobody will wait for. Its
   * closures hold the upload, not the bytes: those are freed once the upload is done.
   */
  private checkpoint(stage: Checkpoint, key: string, data: Buffer): Observable<void> {
    const done = new ReplaySubject<void>(1);
    const upload = this.saveCheckpoint$(stage, key, data).subscribe(done);
    return done.pipe(
      take(1),
      finalize(() => upload.unsubscribe()),
    );
  }

  private saveCheckpoint$(stage: Checkpoint, key: string, data: Buffer): Observable<void> {
    const characterId = this.writer.lease.characterId;
    return this.call(`save-checkpoint:${stage}`, (signal) =>
      this.deps.cache.saveCheckpoint(characterId, key, stage, data, signal),
    );
  }

  /**
   * Counts the job against its owner's day, alongside the source fetch and cache look-up (no
   * round trip added to the job's path). Settled, never rejected: the paid call rethrows.
   */
  private admit(ticket: QuotaTicket | undefined): Promise<boolean> {
    const quota = this.deps.quota;
    if (!quota || !ticket) return Promise.resolve(false);
    // Resolves with whether the day's count now holds the job (false: no daily limit applies).
    const decided = new Promise<boolean>((resolve, reject) => {
      this.call('admit', () => quota.admit(ticket)).subscribe({
        next: (admission) => {
          if (admission.kind === 'admitted') return resolve(admission.counted);
          this.telemetry.userLimitHit?.('daily');
          reject(
            new JobError('USER_QUOTA_EXCEEDED', {
              message: dailyLimitMessage(admission.limit, admission.resetsAt),
              detail: `${ticket.userId}: daily limit ${admission.limit} reached`,
            }),
          );
        },
        error: reject,
      });
    });
    // Awaited before the first paid call; a job that never makes one never awaits it.
    decided.catch(() => undefined);
    return decided;
  }

  /** Whether this job paid ClipDrop: a call now, a checkpoint, or an earlier attempt (recovered). */
  private paidSomething(): boolean {
    const { calls } = this.writer.usage;
    return (
      calls.removeBackground + calls.upscale > 0 ||
      this.checkpointUsed ||
      // A recovered job may have paid in an earlier attempt: it stays counted.
      this.writer.lease.recovered
    );
  }

  /** The admission's verdict, once settled: a refund must never overtake the count it undoes. */
  private async admitted(): Promise<{ admitted: boolean; counted: boolean }> {
    try {
      return { admitted: true, counted: await (this.admission ?? Promise.resolve(false)) };
    } catch (err) {
      // Refused: nothing was counted. Failed to decide: as if counted (the commit may have landed).
      const refused = isJobError(err) && err.code === 'USER_QUOTA_EXCEEDED';
      return { admitted: !refused, counted: !refused };
    }
  }

  /**
   * What a job that paid adds to its owner's day, for its final write to carry in the same
   * commit: counted exactly when the job ends, once, whatever a crash or a lost answer does.
   */
  private async settlement(): Promise<DaySettlement | undefined> {
    const quota = this.deps.quota;
    const ticket = this.quotaTicket;
    if (!quota || !ticket || !this.paidSomething()) return undefined;
    const { admitted, counted } = await this.admitted();
    // Earlier attempts' credits too: a crashed or released attempt never reached the day.
    const credits = (this.writer.lease.creditsBefore ?? 0) + this.writer.usage.credits;
    return admitted ? quota.settlement(ticket, { credits, counted }) : undefined;
  }

  /** After the final write: a counted job that made no paid call is refunded. */
  refundUnpaid(result: JobOutcome): Observable<void> {
    const quota = this.deps.quota;
    const ticket = this.quotaTicket;
    if (!quota || !ticket || result.kind === 'lost' || this.paidSomething()) return of(undefined);
    return defer(() => this.admitted()).pipe(
      concatMap(({ admitted, counted }) =>
        admitted && counted ? this.call('refund-quota', () => quota.refund(ticket)) : of(undefined),
      ),
      catchError((err: unknown) => {
        this.event('job.quota_settle_failed', { detail: describe(err) }, 'warn');
        return of(undefined);
      }),
    );
  }

  /** A ClipDrop call, its credits recorded on the job; only once the job is admitted. */
  private paid(
    name: 'remove-background' | 'upscale',
    fn: (signal: AbortSignal) => Promise<PaidImage>,
  ): Observable<Buffer> {
    return defer(() => this.admission ?? Promise.resolve(false))
      .pipe(concatMap(() => this.call(name, fn)))
      .pipe(
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
    return fromAbortable(this.context.scoped((signal) => this.fenced(() => fn(signal)))).pipe(
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
    return defer(() => this.settlement()).pipe(
      concatMap((settlement) =>
        this.call('fail', () => this.writer.fail(error, this.stage, settlement)),
      ),
      map(() => {
        this.context.settled();
        if (this.writer.ended !== 'complete') return outcome('failed', error.code);
        // A completion that failed but may have landed went first, and did land.
        this.event('job.completed', { resent: true, calls: this.writer.usage.calls });
        return outcome('complete');
      }),
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
