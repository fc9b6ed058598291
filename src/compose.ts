import { merge, type Observable } from 'rxjs';
import sharp from 'sharp';
import type { Config } from './config/load.js';
import { secretsOf } from './config/service-account.js';
import { openFirebase, type FirebaseHandles } from './adapters/firebase-app.js';
import { createFirestoreJobStore } from './adapters/firestore/job-store.js';
import { createFirestoreRequestFeed } from './adapters/firestore/request-feed.js';
import { createFirestoreUserQuota } from './adapters/firestore/user-quota.js';
import { createBucketReader, createResultStore } from './adapters/storage/bucket.js';
import { createSourceFetcher, sourcePolicyOf } from './adapters/source-fetcher.js';
import { createClipdrop } from './clipdrop/setup.js';
import { createWorkCache } from './adapters/storage/work-cache.js';
import { roundTripScope } from './adapters/round-trip-scope.js';
import { finalizePng, prepareForUpscale, prepareSource } from './image/sharp-steps.js';
import type { JobOutcome } from './jobs/ports.js';
import { createLogger, type Logger } from './log/logger.js';
import type { HealthState } from './observability/health.js';
import { createMetrics, type WorkerMetrics } from './observability/metrics.js';
import { combineTelemetry, jobLogTelemetry } from './observability/telemetry.js';
import { createJobRunner } from './pipeline/run-job.js';
import { resilientListener, sweep } from './pipeline/source.js';
import { createStatusSink, type JobWriter } from './pipeline/status-sink.js';
import { createWorker, type Worker } from './pipeline/worker.js';
import type { Writable } from 'node:stream';

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
  const sweepEveryMs = Math.max(1_000, Math.floor(config.worker.leaseMs / 2));
  const health: HealthState = {
    lastSnapshotAt: 0,
    lastSweepAt: 0,
    listenerAttached: false,
    shuttingDown: false,
    // Two sweeps in a row without an answer (or a snapshot): Firestore is not reachable.
    staleAfterMs: 2 * sweepEveryMs,
  };
  const metrics = createMetrics({ jobsInFlight: () => active.size });
  const telemetry = combineTelemetry(metrics, jobLogTelemetry(log));
  const owner = config.worker.id;

  const store = createFirestoreJobStore(firebase.db, {
    collection: config.firebase.collection,
    owner,
    leaseMs: config.worker.leaseMs,
    maxAttempts: config.worker.maxAttempts,
  });
  const feed = createFirestoreRequestFeed(firebase.db, {
    collection: config.firebase.collection,
    owner,
    onSnapshot: () => {
      health.lastSnapshotAt = Date.now();
      health.listenerAttached = true;
    },
  });
  const fetcher = createSourceFetcher(
    sourcePolicyOf(config),
    { maxBytes: config.source.maxBytes, timeoutMs: config.source.timeoutMs, maxRedirects: 3 },
    createBucketReader(firebase.bucket, config.source.maxBytes),
  );
  const clipdrop = createClipdrop(config.clipdrop, config.retry, log, {
    onCall: (call) => metrics.clipdropCall(call),
    onPause: (paused) => metrics.setPaused(paused),
  });
  const limits = { maxInputPixels: config.image.maxInputPixels };
  const retry = {
    maxTries: config.retry.maxTries,
    baseMs: config.retry.baseMs,
    maxMs: config.retry.maxMs,
    maxRetryAfterMs: Math.max(config.retry.maxMs, 60_000),
  };
  const active = new Map<string, JobWriter>();
  const quota = createFirestoreUserQuota(firebase.db, {
    limits: { dailyJobs: config.users.dailyJobLimit, maxActive: config.users.maxActive },
    characters: config.firebase.collection,
    slotGraceMs: config.worker.leaseMs,
  });
  const runJob = createJobRunner({
    store,
    sink: createStatusSink(store),
    fetcher,
    images: clipdrop.images,
    cache: createWorkCache(firebase.bucket),
    resultCache: config.image.resultCache,
    results: createResultStore(firebase.bucket, {
      emulatorHost: config.firebase.storageEmulatorHost,
    }),
    steps: {
      prepareSource: (b) => prepareSource(b, limits),
      prepareForUpscale: (b) => prepareForUpscale(b, limits),
      finalizePng: (b, alphaOf) => finalizePng(b, limits, alphaOf),
    },
    log,
    telemetry,
    quota,
    roundTrips: roundTripScope,
    retry,
    upscaleFactor: config.image.upscaleFactor,
    renewEveryMs: Math.floor(config.worker.leaseMs / 3),
    track: (id, writer) => (writer ? active.set(id, writer) : active.delete(id)),
  });

  const requests$ = merge(
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
      onSuccess: () => (health.lastSweepAt = Date.now()),
    }),
  );
  const worker = createWorker(
    requests$,
    runJob,
    {
      concurrency: config.worker.concurrency,
      log,
      maxPerOwner: config.users.maxActive,
      deferredRetryMs: config.users.deferredRetryMs,
      onDeepestQueue: (depth) => metrics.setDeepestUserQueue(depth),
    },
    active,
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
      const result = await worker.stop(config.worker.shutdownTimeoutMs);
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
