import { defer, from, merge, startWith, switchMap, tap, type Observable } from 'rxjs';
import sharp from 'sharp';
import type { Config } from './config/load.js';
import { secretsOf } from './config/service-account.js';
import { openFirebase, type FirebaseHandles } from './adapters/firebase-app.js';
import { createFirestoreJobStore } from './adapters/firestore/job-store.js';
import { createFirestoreRequestFeed } from './adapters/firestore/request-feed.js';
import { createLiveJobsReader } from './adapters/firestore/job-fields.js';
import { createFirestoreUserQuota } from './adapters/firestore/user-quota.js';
import { createFirestorePresence, createPresenceReader } from './adapters/firestore/presence.js';
import { createQuotaLedger } from './adapters/firestore/quota-ledger.js';
import { createSweepLeader } from './adapters/firestore/sweep-leader.js';
import { createBudgetDoc } from './adapters/firestore/budget-doc.js';
import { createIntake, createIntakeSwitch } from './jobs/intake.js';
import { watchIntakeFlag } from './adapters/firestore/intake-flag.js';
import { operatorPauseOf } from './jobs/intake-flag.js';
import { createCreditBudget } from './pipeline/credit-budget.js';
import { fleetMarginMs } from './jobs/fleet.js';
import { createServerClock, monotonic } from './jobs/clock.js';
import { createBucketReader, createResultStore } from './adapters/storage/bucket.js';
import { createSourceFetcher, sourcePolicyOf } from './adapters/source-fetcher.js';
import { createClipdrop } from './clipdrop/setup.js';
import { createClipdropBeat } from './clipdrop/beat.js';
import { createWorkCache } from './adapters/storage/work-cache.js';
import { roundTripScope } from './adapters/round-trip-scope.js';
import { alphaMask, finalizePng, prepareForUpscale, prepareSource } from './image/sharp-steps.js';
import type { JobOutcome } from './jobs/ports.js';
import { createLogger, type Logger } from './log/logger.js';
import type { HealthState } from './observability/health.js';
import { createJobOpsCounter } from './observability/job-ops.js';
import { createMetrics, type WorkerMetrics } from './observability/metrics.js';
import { combineTelemetry, jobLogTelemetry } from './observability/telemetry.js';
import { createJobRunner } from './pipeline/run-job.js';
import { resilientListener, sweep } from './pipeline/source.js';
import { createStatusSink } from './pipeline/status-sink.js';
import { createWorker, type Worker } from './pipeline/worker.js';
import { createActiveJobs } from './pipeline/active-jobs.js';
import { createDealing } from './pipeline/dealing.js';
import { createFleetLoop, createQuotaShare } from './pipeline/fleet-loop.js';
import type { Writable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';

export interface ShowcaseWorker {
  worker: Worker;
  log: Logger;
  outcomes$: Observable<JobOutcome>;
  firebase: FirebaseHandles;
  /** Listener and sweep liveness, shutdown state: what `/readyz` reports (observability/health.ts). */
  health: HealthState;
  /** Prometheus metrics for `/metrics`; `setPaused` reports paused intake. */
  metrics: WorkerMetrics;
  /** Stops intake, drains within the configured deadline, releases leftovers, closes the SDKs. */
  shutdown(): Promise<{ drained: boolean; released: number }>;
}

/**
 * The composition root's body: builds every adapter from config and wires them into the
 * pipeline. Does not read the environment or install signal handlers (main.ts does).
 */
export function composeWorker(config: Config, opts: { logStream?: Writable } = {}): ShowcaseWorker {
  const log = createLogger({
    level: config.log.level,
    format: config.log.format,
    secrets: secretsOf(config),
    ...(opts.logStream ? { stream: opts.logStream } : {}),
  });
  const firebase = openFirebase(config);
  const sweepEveryMs = Math.max(
    250,
    config.worker.sweepMs || Math.max(1_000, Math.floor(config.worker.leaseMs / 2)),
  );
  const health: HealthState = {
    lastSnapshotAt: 0,
    lastSweepAt: 0,
    listenerAttached: false,
    shuttingDown: false,
    // Two sweeps in a row without an answer (or a snapshot): Firestore is not reachable.
    staleAfterMs: 2 * sweepEveryMs,
  };
  // The worker's accepted and running jobs: its heartbeat's load, its free slots, metrics.
  const jobs = createActiveJobs();
  const metrics = createMetrics({ jobsInFlight: () => jobs.size });
  const telemetry = combineTelemetry(metrics, jobLogTelemetry(log));
  const owner = config.worker.id;
  const fleetOps = (reads: number, writes: number) => metrics.firestoreOps('fleet', reads, writes);

  // Firestore documents read and written per job, for its job.finished line and /metrics.
  const jobOps = createJobOpsCounter((reads, writes) => metrics.firestoreOps('job', reads, writes));

  // Firestore's time, learnt from its answers: every time another worker compares with is on it.
  const clock = createServerClock();
  // ClipDrop's balance as its last answer said (`x-remaining-credits`): in the heartbeat.
  let balance: number | undefined;
  // The account gate and the window's use, as the heartbeat tells them (docs/fleet.md).
  const keyBeat = createClipdropBeat(() => clipdrop, clock.now);
  const clipdrop = createClipdrop(config.clipdrop, config.retry, log, {
    onCall: (call) => {
      metrics.clipdropCall(call);
      if (call.remainingCredits !== undefined && Number.isFinite(call.remainingCredits)) {
        balance = call.remainingCredits;
      }
    },
    onPause: (paused) => {
      metrics.setPaused(paused);
      keyBeat.paused(paused);
    },
    // WORKER_CONCURRENCY bounds the paid calls; jobs' own work runs beside them.
    callsInFlight: config.worker.concurrency,
  });
  // The limiter's limit is this worker's share of CLIPDROP_RPM: none until the ledger grants it.
  const share = createQuotaShare(clipdrop.limiter);
  const timeoutMs = config.fleet.presenceTimeoutMs;
  const margin = fleetMarginMs(timeoutMs);
  const quotaWindowMs = 60_000;
  // Nothing new is claimed while intake is paused (jobs/intake.ts); the budget is one reason.
  const pauses = createIntakeSwitch();
  pauses.onChange((pause, reason) => {
    if (pause) log.warn('intake.paused', { reason, detail: pause.detail });
    else log.info('intake.resumed', { reason });
  });
  // The operator's pause (`showcase-worker intake pause`, the console): a flag the fleet follows.
  const operatorFlag = watchIntakeFlag(firebase.db, {
    collection: config.fleet.collection,
    onFlag: (flag) => pauses.set('operator', operatorPauseOf(flag)),
    log,
    onOps: fleetOps,
  });
  const credits = createCreditBudget(
    createBudgetDoc(firebase.db, { collection: config.fleet.collection, onOps: fleetOps, clock }),
    {
      workerId: owner,
      configured: config.clipdrop.dailyCreditBudget,
      rpm: config.clipdrop.rpm,
      pauses,
      log,
      now: clock.now,
    },
  );
  metrics.observeBudget({
    budget: () => credits.view().budget,
    committed: () => credits.view().committed,
    paused: (reason) => pauses.holds(reason),
  });
  const presence = createFirestorePresence(firebase.db, {
    clock,
    collection: config.fleet.workersCollection,
    workerId: owner,
    timeoutMs,
    log,
    load: () => ({ running: jobs.size, demand: jobs.demand }),
    // The beat promises a reservation; sends stay under it until the next beat is acknowledged.
    // The budget's fields are for people and the console (docs/budget.md), not for workers.
    extra: () => {
      const pause = pauses.paused();
      return {
        ...share.beat(),
        budgetHeld: credits.view().held,
        intakePaused: pause ? 1 : 0,
        ...(pause ? { intakePausedBy: pause.reason } : {}),
        ...(balance === undefined ? {} : { clipdropBalance: balance }),
        ...keyBeat.fields(),
      };
    },
    onAck: (sent) => share.acknowledged(sent),
    onOps: fleetOps,
  });
  // A pause or resume shows in the heartbeat at once, not at the next beat.
  pauses.onChange(() => presence.nudge());
  const ledger = createQuotaLedger(firebase.db, {
    collection: config.fleet.collection,
    workerId: owner,
    rpm: config.clipdrop.rpm,
    windowMs: quotaWindowMs,
    // Firestore's time as each worker maps it (a round trip either way), and a second for a
    // request sent just before a lower limit applied.
    marginMs: 2 * margin + 1_000,
    onOps: fleetOps,
    clock,
  });
  const leader = createSweepLeader(firebase.db, {
    collection: config.fleet.collection,
    workerId: owner,
    leaseMs: timeoutMs,
    marginMs: margin,
    onOps: fleetOps,
    clock,
  });
  const feed = createFirestoreRequestFeed(firebase.db, {
    collection: config.firebase.collection,
    owner,
    onSnapshot: () => {
      health.lastSnapshotAt = monotonic();
      health.listenerAttached = true;
    },
    ownerAlive: (id) => presence.view().alive.has(id),
    onRead: (n) => metrics.firestoreOps('sweep', n, 0),
  });
  const fleet = createFleetLoop(
    { presence, ledger, leader, feed, share },
    {
      workerId: owner,
      rpm: config.clipdrop.rpm,
      windowMs: quotaWindowMs,
      presenceTimeoutMs: timeoutMs,
      log,
      onView: () => (health.lastSweepAt = monotonic()),
    },
  );
  metrics.observeFleet({ workers: () => presence.view().alive.size, share: () => share.grant });

  const store = createFirestoreJobStore(firebase.db, {
    collection: config.firebase.collection,
    owner,
    leaseMs: config.worker.leaseMs,
    maxAttempts: config.worker.maxAttempts,
    now: clock.now,
    ownerAlive: createPresenceReader(firebase.db, {
      collection: config.fleet.workersCollection,
      timeoutMs,
    }),
    // A hung update is given up on (and read back) after a quarter of the lease, not the SDK's
    // 60 s; a write that keeps hanging can still outlast the lease: fenced, it then changes nothing.
    answerMs: Math.floor(config.worker.leaseMs / 4),
    onOps: (id, reads, writes) => jobOps.count(id, reads, writes),
    dailyRequestLimit: config.users.dailyRequestLimit,
  });
  const fetcher = createSourceFetcher(
    sourcePolicyOf(config),
    { maxBytes: config.source.maxBytes, timeoutMs: config.source.timeoutMs, maxRedirects: 3 },
    createBucketReader(firebase.bucket, config.source.maxBytes),
  );
  const limits = { maxInputPixels: config.image.maxInputPixels };
  const retry = {
    maxTries: config.retry.maxTries,
    baseMs: config.retry.baseMs,
    maxMs: config.retry.maxMs,
    maxRetryAfterMs: Math.max(config.retry.maxMs, 60_000),
  };
  const userQuota = createFirestoreUserQuota(firebase.db, {
    limits: { dailyJobs: config.users.dailyJobLimit, maxActive: config.users.maxActive },
    liveJobs: createLiveJobsReader(firebase.db, config.firebase.collection),
    slotGraceMs: config.worker.leaseMs,
    now: clock.now,
  });
  // Jobs held claimed: the paid slots, and the jobs doing their own work beside them.
  const heldJobs = config.worker.concurrency + config.worker.localJobs;
  // One replica per click: each listener request goes to one live worker (docs/fleet.md).
  const dealing = createDealing({
    workerId: owner,
    views$: defer(() => presence.views$.pipe(startWith(presence.view()))),
    taken$: feed.taken$,
    hasFreeSlot: () => jobs.demand < heldJobs,
    log,
  });
  const runJob = createJobRunner({
    store,
    // Claims follow the window; a click another worker took meanwhile is not claimed.
    gate: clipdrop.limiter,
    intake: createIntake(pauses, credits),
    stillOpen: dealing.stillOpen,
    // A fresh click's download starts with its claim, on the source the claim will bind.
    early: store,
    sink: createStatusSink(store),
    tools: {
      fetcher,
      images: clipdrop.images,
      steps: {
        prepareSource: (b) => prepareSource(b, limits),
        prepareForUpscale: (b) => prepareForUpscale(b, limits),
        alphaMask: (b) => alphaMask(b, limits),
        finalizePng: (b, mask) =>
          finalizePng(b, limits, mask, {
            adaptiveFiltering: config.image.pngFilters === 'adaptive',
          }),
      },
      results: createResultStore(firebase.bucket, {
        emulatorHost: config.firebase.storageEmulatorHost,
      }),
      cache: createWorkCache(firebase.bucket, { log, resultScope: config.image.resultCacheScope }),
      resultCache: config.image.resultCache,
      upscaleFactor: config.image.upscaleFactor,
    },
    timing: { retry, renewEveryMs: Math.floor(config.worker.leaseMs / 3), serverNow: clock.now },
    log,
    quota: userQuota,
    watch: {
      telemetry,
      fence: presence.fence,
      roundTrips: roundTripScope,
      firestoreOps: (id) => jobOps.take(id),
      track: (id, writer) => jobs.track(id, writer),
    },
  });

  const intake$ = merge(
    resilientListener(() => feed.listenBatches(), {
      giveUpMs: config.worker.listenerGiveUpMs,
      backoff: { baseMs: 500, maxMs: 15_000, maxRetryAfterMs: 15_000 },
      log,
      onResubscribe: () => {
        health.listenerAttached = false;
        telemetry.listenerResubscribed();
      },
    }),
    sweep((now) => feed.findUnowned(now), {
      everyMs: sweepEveryMs,
      log,
      onSuccess: () => (health.lastSweepAt = monotonic()),
      runIf: () => leader.leading(),
      onRun: () => metrics.sweepRan(),
    }),
    fleet.takeovers$,
  ).pipe(
    dealing.deal,
    tap(() => presence.nudge()),
  );
  // Intake starts once this worker's first heartbeat is acknowledged (a claim needs coverage)
  // and it knows whether the operator paused the fleet.
  const requests$ = defer(() =>
    from(fleet.start().then(() => Promise.all([credits.start(), operatorFlag.start()]))),
  ).pipe(switchMap(() => intake$));
  const worker = createWorker(
    requests$,
    runJob,
    {
      heldJobs,
      log,
      maxPerOwner: config.users.maxActive,
      deferredRetryMs: config.users.deferredRetryMs,
      onDeepestQueue: (depth) => metrics.setDeepestUserQueue(depth),
      stillOpen: dealing.stillOpen,
    },
    jobs,
  );

  return {
    worker,
    log,
    outcomes$: worker.outcomes$,
    firebase,
    health,
    metrics,
    async shutdown() {
      health.shuttingDown = true;
      // Jobs waiting for credits are not claimed now; the unused credits go back after the drain.
      credits.close();
      const result = await worker.stop(config.worker.shutdownTimeoutMs);
      await credits.leave();
      await fleet.leave();
      operatorFlag.stop();
      clipdrop.gate.close();
      await firebase.close();
      return result;
    },
  };
}

/**
 * sharp settings for a long-lived process: no cache, few threads (set once, in main). At most
 * 2 threads per image, and never more than sharp's own default: on glibc Linux without
 * jemalloc (a Heroku dyno) that is 1, against memory fragmentation (bench/memory-hostile.ts).
 */
export function configureSharp(): void {
  sharp.cache(false);
  sharp.concurrency(Math.min(2, sharp.concurrency()));
}

/**
 * V8 lets garbage pile up to 4x the live heap between full collections: ~150 MB of a
 * ~40 MB live heap under a backlog of small jobs. A lower growing factor keeps the peak near
 * the live heap, with no hard limit that a large backlog could hit (docs/performance.md).
 */
export function tuneHeap(percent: number, setFlags: (flags: string) => void = setFlagsFromString) {
  if (percent > 0) setFlags(`--heap-growing-percent=${percent}`);
}
