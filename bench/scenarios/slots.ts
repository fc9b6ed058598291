/**
 * Slots (issue 23): do the paid calls ever wait on the worker's own work? Clicks at once,
 * API 0.8 s + 1.5 s, no quota (the stack's stand-in has no rate limit; CLIPDROP_RPM lifted),
 * WORKER_CONCURRENCY at its default: jobs/s against what that many calls in flight allow,
 * `WORKER_CONCURRENCY / 2.3 s`. A worker whose slot is held through the download, encode,
 * upload and writes leaves the API idle for that time in every slot. Then the notebook port
 * on the same stand-in, for its jobs/s in the same run.
 */
import type { BenchContext } from '../lib/context.js';
import { standinHandle } from '../lib/clipdrop-handles.js';
import { runTarget, type RunResult } from '../lib/run-target.js';
import { round2 } from '../lib/stats.js';
import { NO_QUOTA } from '../lib/targets.js';

export interface SlotsPlan {
  clicks: number;
  /**
   * The notebook port's clicks: it runs one job at a time, so its jobs/s is steady after a
   * few, and the issue's 48 would take it two minutes.
   */
  baselineClicks: number;
  latencyMs: { removeBackground: number; upscale: number };
  /** Each run's deadline after its clicks, s. */
  windowS: number;
  /** WORKER_CONCURRENCY's documented default, if the worker does not say its own. */
  defaultConcurrency: number;
  /** The issue's goal: jobs/s ≥ this share of WORKER_CONCURRENCY / (API latency). */
  goalShare: number;
}

export interface SlotsResult {
  concurrency: number;
  /** WORKER_CONCURRENCY / (remove-background + upscale latency), jobs/s. */
  boundJobsPerSecond: number;
  shareOfBound?: number;
  worker: RunResult;
  baseline: RunResult;
}

export async function slotsScenario(ctx: BenchContext, plan: SlotsPlan): Promise<SlotsResult> {
  const clipdrop = standinHandle(ctx.stack.clipdrop);
  ctx.stack.clipdrop.setLatency(plan.latencyMs);
  try {
    const worker = await runTarget(ctx, {
      label: 'slots-worker',
      target: 'worker',
      clicks: plan.clicks,
      spacingMs: 0,
      source: 'small',
      clipdrop,
      // No WORKER_CONCURRENCY: the default is what is measured.
      env: { ...NO_QUOTA },
      timeoutMs: plan.windowS * 1000,
    });
    const baseline = await runTarget(ctx, {
      label: 'slots-baseline',
      target: 'baseline',
      clicks: plan.baselineClicks,
      spacingMs: 0,
      source: 'small',
      clipdrop,
      pollSeconds: 1,
      timeoutMs: plan.windowS * 1000,
    });
    const concurrency = worker.workerConcurrency ?? plan.defaultConcurrency;
    const bound = concurrency / ((plan.latencyMs.removeBackground + plan.latencyMs.upscale) / 1000);
    return {
      concurrency,
      boundJobsPerSecond: round2(bound),
      ...(worker.jobsPerSecond === undefined
        ? {}
        : { shareOfBound: round2(worker.jobsPerSecond / bound) }),
      worker,
      baseline,
    };
  } finally {
    ctx.stack.clipdrop.setLatency({ removeBackground: 0, upscale: 0 });
  }
}

export function renderSlots(result: SlotsResult, plan: SlotsPlan): string[] {
  const l = plan.latencyMs;
  const w = result.worker;
  const b = result.baseline;
  const row = (name: string, r: RunResult, share: string) =>
    `| ${name} | ${r.jobsPerSecond ?? 'n/a'} | ${share} | ${r.clipdrop.maxInFlight} | ${r.spanS ?? 'n/a'} s | ${r.completed}/${r.clicked}${r.failed ? `, ${r.failed} failed` : ''} |`;
  return [
    `### Slots: ${plan.clicks} clicks at once, API ${l.removeBackground} ms + ${l.upscale} ms, no quota, default WORKER_CONCURRENCY (${result.concurrency})`,
    '',
    `Bound: WORKER_CONCURRENCY / ${(l.removeBackground + l.upscale) / 1000} s = ${result.boundJobsPerSecond} jobs/s (every slot always in a paid call). The notebook port ran ${plan.baselineClicks} clicks, one at a time, on the same stand-in.`,
    '',
    `| | jobs/s | ÷ bound (goal ≥ ${plan.goalShare}) | ClipDrop calls in flight, max | first click → last complete | jobs done |`,
    '| --- | --- | --- | --- | --- | --- |',
    row(`worker (concurrency ${result.concurrency})`, w, String(result.shareOfBound ?? 'n/a')),
    row('notebook port (1 at a time, POLL_SECONDS=1)', b, '—'),
    '',
    `Worker ÷ notebook port, jobs/s: ${w.jobsPerSecond && b.jobsPerSecond ? `${(w.jobsPerSecond / b.jobsPerSecond).toFixed(1)}×` : 'n/a'}.`,
  ];
}
