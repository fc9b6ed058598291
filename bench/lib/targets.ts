/**
 * The two processes under test: the built worker (`node dist/main.js`, configured only by
 * its environment, as on a dyno) and the polling baseline (bench/baseline-poller.ts).
 */
import { readFileSync } from 'node:fs';
import { spawnChild, type Child } from './child.js';
import type { AppSide } from './app-side.js';
import type { BenchContext } from './context.js';

export const WORKER_ENTRY = 'dist/main.js';
export const BASELINE_ENTRY = 'bench/baseline-poller.ts';

/**
 * For the scenarios about the worker's own speed (ClipDrop latency 0, a stand-in without a
 * rate limit): lifts the worker's client-side limiter (default 60 a minute), which would
 * otherwise be all they measure. Only the quota scenario keeps the real quota. Their hundreds
 * of clicks come from one user: the per-user daily limit (100 by default) is lifted too.
 */
export const NO_QUOTA = {
  CLIPDROP_RPM: '1000000',
  USER_DAILY_JOB_LIMIT: '0',
  USER_DAILY_REQUEST_LIMIT: '0',
};

export interface TargetEnv {
  projectId: string;
  /** ClipDrop base URL; the stack's stand-in unless a scenario brings its own. */
  clipdropUrl?: string;
  env?: Record<string, string>;
}

function commonEnv(ctx: BenchContext, t: TargetEnv): Record<string, string> {
  return {
    ...ctx.stack.env,
    GOOGLE_CLOUD_PROJECT: t.projectId,
    ...(t.clipdropUrl ? { CLIPDROP_API_URL: t.clipdropUrl } : {}),
  };
}

/**
 * The Procfile's worker command, split: the variables it sets before `node` (glibc's malloc
 * settings) and node's flags before the script (V8's young generation). Both are read at
 * process start: the bench starts the worker as a dyno does.
 */
export function procfileCommand(procfile = readFileSync('Procfile', 'utf8')): {
  env: Record<string, string>;
  nodeFlags: string[];
} {
  const words = (/^worker:\s*(.*)$/m.exec(procfile)?.[1] ?? '').trim().split(/\s+/);
  const env: Record<string, string> = {};
  let at = 0;
  for (; at < words.length; at++) {
    const assignment = /^([A-Z_][A-Z0-9_]*)=(\S*)$/.exec(words[at]!);
    if (!assignment) break;
    env[assignment[1]!] = assignment[2]!;
  }
  if (words[at] !== 'node') throw new Error('the Procfile does not start the worker with node');
  const nodeFlags = words.slice(at + 1, words.indexOf(WORKER_ENTRY));
  return { env, nodeFlags };
}

/**
 * Spawns the built worker as the Procfile starts it (its glibc variables and node flags), as
 * a dyno would run it: production config, JSON logs at info unless `t.env` says otherwise.
 */
export function spawnWorker(ctx: BenchContext, name: string, t: TargetEnv): Child {
  // BENCH_CPU_PROF=DIR: each worker writes a V8 CPU profile there when it stops (where the
  // CPU per job goes; node refuses --cpu-prof in NODE_OPTIONS).
  const profile = process.env.BENCH_CPU_PROF;
  const procfile = procfileCommand();
  const args = [
    ...procfile.nodeFlags,
    ...(profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : []),
    WORKER_ENTRY,
  ];
  return spawnChild(name, args, {
    ...procfile.env,
    ...commonEnv(ctx, t),
    // As on a dyno: production config, JSON logs at info.
    NODE_ENV: 'production',
    LOG_FORMAT: 'json',
    LOG_LEVEL: 'info',
    // A run stopped at its deadline should not wait 25 s for the jobs still in flight.
    SHUTDOWN_TIMEOUT_MS: '3000',
    // BENCH_WORKER_NODE_OPTIONS: V8 or Node flags for the worker only (a GC setting to try).
    ...(process.env.BENCH_WORKER_NODE_OPTIONS
      ? { NODE_OPTIONS: process.env.BENCH_WORKER_NODE_OPTIONS }
      : {}),
    ...t.env,
  });
}

/**
 * Starts the worker, waits for `worker.started`, then runs one warm-up job end to end (it
 * proves the listener is live and warms connections and the JIT); the scenario's own
 * measurements start after it.
 */
export async function startWorker(ctx: BenchContext, app: AppSide, t: TargetEnv): Promise<Child> {
  const child = spawnWorker(ctx, 'worker', t);
  try {
    await child.waitForLog((l) => l.message === 'worker.started', 30_000, 'worker.started');
    const warmup = `warmup-${t.projectId}`;
    await app.createCharacters([warmup], (id, owner) => ctx.upload('small', owner, id));
    await app.click(warmup);
    const open = await app.waitFinished([warmup], 60_000);
    if (open.length > 0) throw new Error('the warm-up job did not finish within 60 s');
    const job = app.jobs.get(warmup);
    if (job?.errorCode) throw new Error(`the warm-up job failed: ${job.errorCode}`);
    app.jobs.delete(warmup);
  } catch (err) {
    await child.stop(5_000);
    throw err;
  }
  return child;
}

/** Starts the baseline and waits until it is connected; it polls once `firstPollAt` comes. */
export async function startBaseline(
  ctx: BenchContext,
  t: TargetEnv & { pollSeconds: number },
): Promise<Child & { firstPollAt(at: number): void }> {
  const child = spawnChild('baseline', ['--import', 'tsx', BASELINE_ENTRY], {
    ...commonEnv(ctx, t),
    POLL_SECONDS: String(t.pollSeconds),
    ...t.env,
  });
  try {
    await child.waitForLog((l) => l.message === 'baseline.ready', 60_000, 'baseline.ready');
  } catch (err) {
    await child.stop(5_000);
    throw err;
  }
  return Object.assign(child, {
    firstPollAt: (at: number) => child.send(JSON.stringify({ firstPollAt: at })),
  });
}

/** `pickupMs` of every `job.claimed` line: the worker's own view, a cross-check only. */
export function workerReportedPickups(child: Child): number[] {
  return child.lines
    .filter(
      (l) =>
        l.message === 'job.claimed' &&
        typeof l.pickupMs === 'number' &&
        !String(l.characterId).startsWith('warmup-'),
    )
    .map((l) => l.pickupMs as number);
}

/** Round trips of each completed job, from its `job.finished` line (docs/performance.md). */
export function workerReportedRoundTrips(child: Child): { sequential: number; total: number }[] {
  return child.lines
    .filter(
      (l) =>
        l.message === 'job.finished' &&
        l.outcome === 'complete' &&
        typeof l.roundTrips === 'number' &&
        typeof l.googleRequests === 'number' &&
        !String(l.characterId).startsWith('warmup-'),
    )
    .map((l) => ({ sequential: l.roundTrips as number, total: l.googleRequests as number }));
}
