/**
 * One measured run: a fresh project, N characters, the process under test started (and,
 * for the worker, warmed up), the clicks, the wait for every job to end, and the numbers.
 */
import { clearFirestore } from '../../dev/firestore-emulator.js';
import { AppSide } from './app-side.js';
import { sampleMemory, type MemorySplit } from './memory-sampler.js';
import type { Child } from './child.js';
import { freshProject, sleep, type BenchContext } from './context.js';
import { cpuMsOf, machineBusyMs, rssMbOf, selfCpuMs } from './proc.js';
import { distribution, round1, round2, type Distribution } from './stats.js';
import {
  startBaseline,
  startWorker,
  workerReportedPickups,
  workerReportedRoundTrips,
} from './targets.js';

/** What a ClipDrop endpoint (stand-in, or the memoising front) counted during a run. */
export interface ClipdropCounters {
  calls: number;
  responses: Record<string, number>;
  maxInFlight: number;
}

export interface ClipdropHandle {
  url: string;
  counters(): ClipdropCounters;
  reset(): void;
}

export interface RunSpec {
  label: string;
  target: 'worker' | 'baseline';
  clicks: number;
  /** Time between two clicks; 0 sends them all at once. */
  spacingMs: number;
  /**
   * A short queue instead: each click waits until fewer than this many clicked jobs are
   * unfinished (closed loop; `spacingMs` is ignored). `timeoutMs` then bounds the whole run.
   */
  outstanding?: number;
  source: 'small' | 'large';
  clipdrop: ClipdropHandle;
  /** Worker settings (WORKER_CONCURRENCY, CLIPDROP_RPM, ...). */
  env?: Record<string, string>;
  /** Baseline only. */
  pollSeconds?: number;
  /**
   * Clicks made first, far enough apart that each finds the worker idle, measured apart from
   * the main clicks: the listener-to-claim path without any queue in front of it.
   */
  idle?: { clicks: number; spacingMs: number };
  /** Sample the worker's /metrics on this port (it must be in `env` as PORT). */
  metricsPort?: number;
  timeoutMs: number;
}

export interface RunResult {
  label: string;
  target: 'worker' | 'baseline';
  projectId: string;
  settings: Record<string, string | number>;
  clicked: number;
  completed: number;
  failed: number;
  unfinished: number;
  errorCodes: Record<string, number>;
  /** The `idle` clicks, if any: click → first write and → complete with nothing queued. */
  idle?: { clicks: number; spacingMs: number; pickupMs?: Distribution; completeMs?: Distribution };
  /** Click commit → first worker write (claim) commit, ms. */
  pickupMs?: Distribution;
  /** Click commit → `complete` commit, ms. */
  completeMs?: Distribution;
  /** Click commit → the app's listener receiving the first worker write (local clock), ms. */
  appSeenPickupMs?: Distribution;
  /** The WORKER_CONCURRENCY the worker said it runs with (its `worker.started` line). */
  workerConcurrency?: number;
  /** `job.completed` lines the worker logged (cross-check of `completed`; worker only). */
  workerReportedCompleted?: number;
  /** The worker's own `job.claimed` pickupMs (cross-check). */
  workerReportedPickupMs?: Distribution;
  /** Sequential Google round trips per completed job, from the worker's `job.finished` lines. */
  roundTrips?: Distribution;
  /** Every Google request per completed job (parallel ones included), same source. */
  googleRequests?: Distribution;
  /** First click commit → last `complete` commit, s. */
  spanS?: number;
  jobsPerSecond?: number;
  jobsPerMinute?: number;
  /** utime + stime of the process under test during the measured window. */
  cpuMs?: number;
  cpuMsPerJob?: number;
  /** 'whole run' when every job finished; 'steady state' when the run hit its deadline. */
  cpuMethod?: 'whole run' | 'steady state';
  /**
   * CPU per job once warm: between the completion of the first third of the jobs and the
   * last (V8 has compiled the hot paths, connections are open), as a long-running dyno spends.
   */
  warmCpuMsPerJob?: number;
  /** VmHWM at the end: the largest resident set the process ever had, MB. */
  peakRssMb?: number;
  sampledPeakRssMb?: number;
  /** The process's resident set after warm-up, before the clicks, MB. */
  idleRssMb?: number;
  /** At the highest RSS the worker reported on /metrics: what the memory was made of. */
  memoryAtPeak?: MemorySplit;
  clipdrop: ClipdropCounters & { r429: number };
  /** Requests the Storage stand-in received during the window (every process's, if runs overlap). */
  storageRequests: number;
  /**
   * Where CPU went during the measured window (ms): the process under test, the bench process
   * (the app's client, the ClipDrop and Storage stand-ins), the Firestore emulator, and the
   * whole machine (every process, other users' included on a shared machine).
   */
  machineCpuMs?: { underTest?: number; benchProcess: number; emulator?: number; machine?: number };
  wallS: number;
  exit?: { code: number | null; signal: NodeJS.Signals | null };
}

export async function runTarget(ctx: BenchContext, spec: RunSpec): Promise<RunResult> {
  const projectId = freshProject(spec.label.replace(/[^a-z0-9]+/gi, '-'));
  const app = new AppSide(ctx.stack.firestoreHost, projectId);
  const ids = Array.from({ length: spec.clicks }, (_, i) => `c${String(i).padStart(4, '0')}`);
  const settings: Record<string, string | number> = {
    clicks: spec.clicks,
    ...(spec.outstanding === undefined
      ? { spacingMs: spec.spacingMs }
      : { outstanding: spec.outstanding }),
    source: spec.source,
    ...(spec.pollSeconds === undefined ? {} : { POLL_SECONDS: spec.pollSeconds }),
    ...spec.env,
  };
  ctx.say(`${spec.label}: ${JSON.stringify(settings)}`);
  const started = Date.now();
  let child: Child | undefined;
  try {
    const idleIds = Array.from({ length: spec.idle?.clicks ?? 0 }, (_, i) => `idle${i}`);
    await app.createCharacters([...idleIds, ...ids], (id, owner) =>
      ctx.upload(spec.source, owner, id),
    );
    let baselineFirstPoll: ((at: number) => void) | undefined;
    if (spec.target === 'worker') {
      child = await startWorker(ctx, app, {
        projectId,
        clipdropUrl: spec.clipdrop.url,
        ...(spec.env ? { env: spec.env } : {}),
      });
    } else {
      const baseline = await startBaseline(ctx, {
        projectId,
        clipdropUrl: spec.clipdrop.url,
        pollSeconds: spec.pollSeconds ?? 60,
      });
      child = baseline;
      baselineFirstPoll = (at) => baseline.firstPollAt(at);
    }
    let idle: RunResult['idle'];
    if (spec.idle && idleIds.length > 0) {
      for (const id of idleIds) {
        const next = Date.now() + spec.idle.spacingMs;
        await app.click(id);
        await app.waitFinished([id], 30_000);
        await sleep(next - Date.now());
      }
      const done = idleIds.map((id) => app.jobs.get(id)!);
      idle = {
        ...spec.idle,
        pickupMs: distribution(done.map((j) => diff(j.firstWriteAt, j.clickAt) ?? Number.NaN)),
        completeMs: distribution(done.map((j) => diff(j.completeAt, j.clickAt) ?? Number.NaN)),
      };
    }
    spec.clipdrop.reset();
    ctx.say(`${spec.label}: ready after ${((Date.now() - started) / 1000).toFixed(1)} s; clicking`);

    const idleRssMb = rssMbOf(child.pid);
    const emulatorCpu = () =>
      ctx.emulatorPid === undefined ? undefined : cpuMsOf(ctx.emulatorPid);
    const before = {
      cpu: child.cpuMs(),
      machine: machineBusyMs(),
      bench: selfCpuMs(),
      emulator: emulatorCpu(),
    };
    const memory = spec.metricsPort === undefined ? undefined : sampleMemory(spec.metricsPort);
    const storageBefore = ctx.stack.storage.requests.length;
    const clickStart = Date.now() + 50;
    const spanMs = spec.spacingMs * Math.max(0, spec.clicks - 1);
    if (baselineFirstPoll) {
      // Clicks land on average half a period before the next poll, as with a random phase.
      baselineFirstPoll(clickStart + ((spec.pollSeconds ?? 60) * 1000) / 2 + spanMs / 2);
    }
    const deadline = Date.now() + spec.timeoutMs;
    if (spec.outstanding !== undefined) {
      await app.clickKeeping(ids, spec.outstanding, deadline);
    } else {
      const clicks: Promise<number>[] = [];
      for (const [i, id] of ids.entries()) {
        if (spec.spacingMs > 0) await sleep(clickStart + i * spec.spacingMs - Date.now());
        clicks.push(app.click(id));
      }
      await Promise.all(clicks);
    }
    const open = await app.waitFinished(
      ids.filter((id) => app.jobs.get(id)?.clickAt !== undefined),
      spec.outstanding === undefined ? spec.timeoutMs : Math.max(0, deadline - Date.now()),
    );
    if (open.length > 0) ctx.say(`${spec.label}: ${open.length} jobs unfinished at the deadline`);

    const after = {
      cpu: child.cpuMs(),
      machine: machineBusyMs(),
      bench: selfCpuMs(),
      emulator: emulatorCpu(),
    };
    const memoryAtPeak = memory?.stop();
    const peakRssMb = child.peakRssMb();
    const sampledPeakRssMb = child.sampledPeakRssMb();
    // A short queue stopped at its deadline may not have clicked every character.
    const jobs = ids.map((id) => app.jobs.get(id)!).filter((j) => j.clickAt !== undefined);
    const completed = jobs.filter((j) => j.completeAt !== undefined);
    const failed = jobs.filter((j) => j.completeAt === undefined && j.failedAt !== undefined);
    const errorCodes: Record<string, number> = {};
    for (const j of failed) {
      errorCodes[j.errorCode ?? 'unknown'] = (errorCodes[j.errorCode ?? 'unknown'] ?? 0) + 1;
    }
    const firstClick = Math.min(...jobs.map((j) => j.clickAt ?? Infinity));
    const lastComplete = Math.max(...completed.map((j) => j.completeAt!));
    const spanS = completed.length > 0 ? (lastComplete - firstClick) / 1000 : undefined;
    const cpuMs = diff(after.cpu, before.cpu);
    // Every job done: the window's CPU over the jobs. Stopped at the deadline: the CPU between
    // the first and the last completion over the completions in between (steady state), so
    // jobs half done at either end are not counted as done.
    const seen = completed.map((j) => j.completeSeenAt!).sort((a, b) => a - b);
    let cpuMsPerJob: number | undefined;
    let cpuMethod: RunResult['cpuMethod'];
    if (open.length === 0 && cpuMs !== undefined && completed.length > 0) {
      cpuMsPerJob = cpuMs / completed.length;
      cpuMethod = 'whole run';
    } else if (seen.length >= 3) {
      const between = diff(child.cpuMsAt(seen[seen.length - 1]!), child.cpuMsAt(seen[0]!));
      if (between !== undefined) {
        cpuMsPerJob = between / (seen.length - 1);
        cpuMethod = 'steady state';
      }
    }
    const third = Math.floor(seen.length / 3);
    const warmCpu =
      seen.length >= 30
        ? diff(child.cpuMsAt(seen[seen.length - 1]!), child.cpuMsAt(seen[third]!))
        : undefined;
    const warmCpuMsPerJob = warmCpu === undefined ? undefined : warmCpu / (seen.length - 1 - third);
    const storageRequests = ctx.stack.storage.requests.length - storageBefore;
    const exit = await child.stop();
    const reported = spec.target === 'worker' ? workerReportedPickups(child) : [];
    const trips = spec.target === 'worker' ? workerReportedRoundTrips(child) : [];
    const concurrency = child.lines.find((l) => l.message === 'worker.started')?.concurrency;
    const reportedCompleted = child.lines.filter(
      (l) => l.message === 'job.completed' && !String(l.characterId).startsWith('warmup-'),
    ).length;
    child = undefined;
    const counters = spec.clipdrop.counters();

    return {
      label: spec.label,
      target: spec.target,
      projectId,
      settings,
      ...(idle ? { idle } : {}),
      clicked: jobs.length,
      completed: completed.length,
      failed: failed.length,
      unfinished: open.length,
      errorCodes,
      pickupMs: distribution(jobs.map((j) => diff(j.firstWriteAt, j.clickAt) ?? Number.NaN)),
      completeMs: distribution(completed.map((j) => j.completeAt! - j.clickAt!)),
      appSeenPickupMs: distribution(
        jobs.map((j) => diff(j.firstWriteSeenAt, j.clickAt) ?? Number.NaN),
      ),
      ...(reported.length > 0 ? { workerReportedPickupMs: distribution(reported) } : {}),
      ...(spec.target === 'worker' ? { workerReportedCompleted: reportedCompleted } : {}),
      ...(typeof concurrency === 'number' ? { workerConcurrency: concurrency } : {}),
      ...(trips.length > 0
        ? {
            roundTrips: distribution(trips.map((t) => t.sequential)),
            googleRequests: distribution(trips.map((t) => t.total)),
          }
        : {}),
      ...(spanS === undefined
        ? {}
        : {
            spanS: round2(spanS),
            jobsPerSecond: round2(completed.length / spanS),
            jobsPerMinute: round1((completed.length / spanS) * 60),
          }),
      ...optional('cpuMs', cpuMs),
      ...(cpuMsPerJob === undefined ? {} : { cpuMsPerJob: round2(cpuMsPerJob), cpuMethod }),
      ...(warmCpuMsPerJob === undefined ? {} : { warmCpuMsPerJob: round2(warmCpuMsPerJob) }),
      ...(peakRssMb === undefined ? {} : { peakRssMb: round1(peakRssMb) }),
      ...(sampledPeakRssMb === undefined ? {} : { sampledPeakRssMb: round1(sampledPeakRssMb) }),
      ...(idleRssMb === undefined ? {} : { idleRssMb: round1(idleRssMb) }),
      ...(memoryAtPeak ? { memoryAtPeak } : {}),
      clipdrop: { ...counters, r429: counters.responses['429'] ?? 0 },
      storageRequests,
      machineCpuMs: {
        ...(cpuMs === undefined ? {} : { underTest: round1(cpuMs) }),
        benchProcess: round1(after.bench - before.bench),
        ...optional('emulator', diff(after.emulator, before.emulator)),
        ...optional('machine', diff(after.machine, before.machine)),
      },
      wallS: round1((Date.now() - started) / 1000),
      exit,
    };
  } finally {
    if (child) await child.stop(5_000);
    await app.close();
    // The emulator keeps every project in memory: give back this run's documents.
    await clearFirestore(ctx.stack.firestoreHost, projectId).catch(() => undefined);
  }
}

function optional(name: string, value: number | undefined): Record<string, number> {
  return value === undefined ? {} : { [name]: round1(value) };
}

function diff(x?: number, y?: number): number | undefined {
  return x !== undefined && y !== undefined ? x - y : undefined;
}
