import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ClipdropCall } from '../clipdrop/client.js';
import type { JobOutcome, Telemetry } from '../jobs/ports.js';
import type { InProgressStatus } from '../jobs/status.js';

/**
 * The worker's Prometheus metrics, served at `/metrics`. One registry per worker (not
 * prom-client's global one), so several workers in one process (tests) do not collide.
 *
 * Glossary of the series (all prefixed `showcase_`):
 * - `jobs_total{outcome,code}`: jobs ended, by outcome (complete, failed, skipped, lost,
 *   exhausted, released) and error code (`none` when there is none; a skip's reason).
 * - `stage_duration_seconds{stage}`: time spent in each stage, status write included.
 * - `jobs_in_flight`: jobs claimed and running now.
 * - `pickup_lag_seconds`: from the click (the request first seen) to the claim.
 * - `clipdrop_calls_total{endpoint,status}`: every HTTP exchange with ClipDrop.
 * - `clipdrop_credits_remaining`: the balance ClipDrop reported last (absent until a call).
 * - `listener_reconnects_total`: resubscriptions of the Firestore listener after an error.
 * - `worker_paused`: 1 while intake is paused (e.g. no ClipDrop credits), else 0.
 * - `unhandled_rejections_total`: promise rejections nobody handled (a bug: alert on it).
 * - `user_limit_hits_total{limit}`: jobs held back by a per-user limit: `daily` (refused,
 *   USER_QUOTA_EXCEEDED) or `active` (deferred at USER_MAX_ACTIVE, tried again later).
 * - `user_queue_depth_max`: requests of the most-queued user waiting for a slot here.
 * - `fleet_workers`: live workers of the fleet (fresh heartbeats), as this worker last read.
 * - `quota_share`: ClipDrop requests a minute this worker may send now (its share of the key).
 * - `firestore_operations_total{scope,op}`: documents read and written, for jobs (`job`), the
 *   sweep (`sweep`) and fleet coordination (`fleet`: heartbeats, quota ledger, leader lease).
 * - `sweep_queries_total`: reconciling queries run by this worker (only the leader runs them).
 * - `budget_credits`: the fleet's daily credit budget in force (0: none); `budget_committed_credits`:
 *   today's credits spent or held in blocks, as this worker last read them (docs/budget.md).
 * - `intake_paused{reason}`: 1 while this worker claims nothing new for that reason (`budget`,
 *   `operator`), else 0.
 * Plus prom-client's default Node process metrics (CPU, memory, event loop lag, GC).
 */
export interface WorkerMetrics extends Telemetry {
  readonly registry: Registry;
  /** Hook for the ClipDrop client's `onCall`. */
  clipdropCall(call: ClipdropCall): void;
  setPaused(paused: boolean): void;
  unhandledRejection(): void;
  /** The longest per-user queue of the round-robin (worker's `onDeepestQueue`). */
  setDeepestUserQueue(depth: number): void;
  firestoreOps(scope: 'job' | 'sweep' | 'fleet', reads: number, writes: number): void;
  sweepRan(): void;
  /**
   * Where the fleet's gauges read at each scrape: live workers and this worker's quota share.
   * Bound once the fleet exists (the fleet's adapters count their operations here first);
   * until then they read 1 and 0.
   */
  observeFleet(fleet: { workers: () => number; share: () => number }): void;
  /** Where the budget's gauges read at each scrape (pipeline/credit-budget.ts, jobs/intake.ts). */
  observeBudget(budget: {
    budget: () => number;
    committed: () => number;
    paused: (reason: 'budget' | 'operator') => boolean;
  }): void;
  /** The text exposition format, and its content type. */
  render(): Promise<{ contentType: string; body: string }>;
}

export interface MetricsOptions {
  /** Jobs running now, read at each scrape (ActiveJobs `size`). */
  jobsInFlight: () => number;
  /** Default Node process metrics; default true. */
  processMetrics?: boolean;
}

/** Stages run from tens of milliseconds (cached source) to a minute (slow ClipDrop). */
const STAGE_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 80];
/** A click is picked up in milliseconds by the listener, or within lease/2 by the sweep. */
const PICKUP_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export function createMetrics(opts: MetricsOptions): WorkerMetrics {
  const registry = new Registry();
  if (opts.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const jobs = new Counter({
    name: 'showcase_jobs_total',
    help: 'Jobs ended, by outcome and error code.',
    labelNames: ['outcome', 'code'] as const,
    registers,
  });
  const stageDuration = new Histogram({
    name: 'showcase_stage_duration_seconds',
    help: 'Duration of each stage of a job (work and status write).',
    labelNames: ['stage'] as const,
    buckets: STAGE_BUCKETS,
    registers,
  });
  new Gauge({
    name: 'showcase_jobs_in_flight',
    help: 'Jobs claimed by this worker and running now.',
    registers,
    collect() {
      this.set(opts.jobsInFlight());
    },
  });
  const pickupLag = new Histogram({
    name: 'showcase_pickup_lag_seconds',
    help: 'Time from the click to the claim of its job.',
    buckets: PICKUP_BUCKETS,
    registers,
  });
  const roundTrips = new Histogram({
    name: 'showcase_job_round_trips',
    help: 'Sequential Google requests (Firestore, Storage) of a claimed job up to its last write.',
    labelNames: ['outcome'] as const,
    buckets: [2, 3, 4, 5, 6, 7, 8, 10, 12, 16],
    registers,
  });
  const googleRequests = new Counter({
    name: 'showcase_google_requests_total',
    help: 'Google requests (Firestore RPCs, Storage HTTP requests) made by jobs, parallel ones included.',
    registers,
  });
  const clipdropCalls = new Counter({
    name: 'showcase_clipdrop_calls_total',
    help: 'HTTP exchanges with ClipDrop, by endpoint and status (network-error: no answer).',
    labelNames: ['endpoint', 'status'] as const,
    registers,
  });
  // Registered at the first reported balance: before it, the series is absent (not a
  // misleading 0 that would fire a "credits low" alert at every start).
  let credits: Gauge | undefined;
  const setCredits = (value: number) => {
    credits ??= new Gauge({
      name: 'showcase_clipdrop_credits_remaining',
      help: 'ClipDrop credits left, as reported by the last successful call.',
      registers,
    });
    credits.set(value);
  };
  const reconnects = new Counter({
    name: 'showcase_listener_reconnects_total',
    help: 'Resubscriptions of the Firestore listener after an error.',
    registers,
  });
  const paused = new Gauge({
    name: 'showcase_worker_paused',
    help: '1 while the worker has paused intake (e.g. no ClipDrop credits left), else 0.',
    registers,
  });
  paused.set(0);
  const rejections = new Counter({
    name: 'showcase_unhandled_rejections_total',
    help: 'Promise rejections that nothing handled.',
    registers,
  });
  const userLimitHits = new Counter({
    name: 'showcase_user_limit_hits_total',
    help: 'Jobs held back by a per-user limit: daily or requests (refused), active (deferred).',
    labelNames: ['limit'] as const,
    registers,
  });
  userLimitHits.inc({ limit: 'daily' }, 0);
  userLimitHits.inc({ limit: 'active' }, 0);
  userLimitHits.inc({ limit: 'requests' }, 0);
  const deepestUserQueue = new Gauge({
    name: 'showcase_user_queue_depth_max',
    help: 'Requests of the most-queued user waiting for a slot in this worker.',
    registers,
  });
  deepestUserQueue.set(0);
  let fleet = { workers: () => 1, share: () => 0 };
  new Gauge({
    name: 'showcase_fleet_workers',
    help: 'Live workers of the fleet (fresh heartbeats), as this worker last read them.',
    registers,
    collect() {
      this.set(fleet.workers());
    },
  });
  new Gauge({
    name: 'showcase_quota_share',
    help: 'ClipDrop requests a minute this worker may send now (its share of the key’s quota).',
    registers,
    collect() {
      this.set(fleet.share());
    },
  });
  let budget: Parameters<WorkerMetrics['observeBudget']>[0] = {
    budget: () => 0,
    committed: () => 0,
    paused: () => false,
  };
  new Gauge({
    name: 'showcase_budget_credits',
    help: 'The fleet’s daily ClipDrop credit budget in force (0: none).',
    registers,
    collect() {
      this.set(budget.budget());
    },
  });
  new Gauge({
    name: 'showcase_budget_committed_credits',
    help: 'Today’s credits spent or held by workers, as this worker last read the budget.',
    registers,
    collect() {
      this.set(budget.committed());
    },
  });
  new Gauge({
    name: 'showcase_intake_paused',
    help: '1 while this worker claims nothing new, by reason (budget, operator), else 0.',
    labelNames: ['reason'] as const,
    registers,
    collect() {
      for (const reason of ['budget', 'operator'] as const) {
        this.set({ reason }, budget.paused(reason) ? 1 : 0);
      }
    },
  });
  const firestoreOps = new Counter({
    name: 'showcase_firestore_operations_total',
    help: 'Firestore documents read and written, by scope (job, sweep, fleet) and op.',
    labelNames: ['scope', 'op'] as const,
    registers,
  });
  const sweeps = new Counter({
    name: 'showcase_sweep_queries_total',
    help: 'Reconciling sweep queries run by this worker (the fleet leader only).',
    registers,
  });
  for (const scope of ['job', 'sweep', 'fleet'] as const) {
    for (const op of ['read', 'write'] as const) firestoreOps.inc({ scope, op }, 0);
  }
  sweeps.inc(0);
  // Zero-valued series exist from the start, so rate() and alerts work before the first event.
  jobs.inc({ outcome: 'complete', code: 'none' }, 0);

  return {
    registry,
    jobClaimed(pickupMs: number) {
      pickupLag.observe(Math.max(0, pickupMs) / 1000);
    },
    stageFinished(stage: InProgressStatus, durationMs: number) {
      stageDuration.observe({ stage }, Math.max(0, durationMs) / 1000);
    },
    jobFinished(outcome: JobOutcome) {
      jobs.inc({ outcome: outcome.kind, code: outcome.code ?? 'none' });
      if (outcome.roundTrips) {
        roundTrips.observe({ outcome: outcome.kind }, outcome.roundTrips.sequential);
        googleRequests.inc(outcome.roundTrips.total);
      }
    },
    listenerResubscribed() {
      reconnects.inc();
    },
    clipdropCall(call: ClipdropCall) {
      clipdropCalls.inc({ endpoint: call.endpoint, status: String(call.status) });
      if (call.remainingCredits !== undefined && Number.isFinite(call.remainingCredits)) {
        setCredits(call.remainingCredits);
      }
    },
    setPaused(value: boolean) {
      paused.set(value ? 1 : 0);
    },
    unhandledRejection() {
      rejections.inc();
    },
    userLimitHit(limit: 'daily' | 'active' | 'requests') {
      userLimitHits.inc({ limit });
    },
    setDeepestUserQueue(depth: number) {
      deepestUserQueue.set(depth);
    },
    firestoreOps(scope, reads, writes) {
      if (reads > 0) firestoreOps.inc({ scope, op: 'read' }, reads);
      if (writes > 0) firestoreOps.inc({ scope, op: 'write' }, writes);
    },
    sweepRan() {
      sweeps.inc();
    },
    observeFleet(source) {
      fleet = source;
    },
    observeBudget(source) {
      budget = source;
    },
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}
