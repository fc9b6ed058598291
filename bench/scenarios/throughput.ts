/**
 * Scenario 2, throughput: many clicks at once, ClipDrop latency 0, at several concurrency
 * settings: jobs per second, and the worker's CPU time per job (its own overhead); then the
 * notebook-like baseline on the same clicks, for the ratio.
 */
import { freePort } from '../../dev/free-port.js';
import type { BenchContext } from '../lib/context.js';
import { standinHandle } from '../lib/clipdrop-handles.js';
import { runTarget, type RunResult } from '../lib/run-target.js';
import { NO_QUOTA } from '../lib/targets.js';
import type { Plan } from '../plan.js';

export interface ThroughputResult {
  runs: RunResult[];
  /** The notebook-like sequential port, same clicks, same stand-ins, in the same run. */
  baseline?: RunResult;
}

export async function throughputScenario(
  ctx: BenchContext,
  plan: Plan['throughput'],
): Promise<ThroughputResult> {
  ctx.stack.clipdrop.setLatency({ removeBackground: 0, upscale: 0 });
  const runs: RunResult[] = [];
  for (const concurrency of plan.concurrencies) {
    // The worker's /metrics: where its memory is at the peak (small pictures' budget).
    const metricsPort = await freePort();
    runs.push(
      await runTarget(ctx, {
        label: `throughput-c${concurrency}`,
        target: 'worker',
        clicks: plan.clicks,
        spacingMs: 0,
        source: 'small',
        clipdrop: standinHandle(ctx.stack.clipdrop),
        env: { WORKER_CONCURRENCY: String(concurrency), PORT: String(metricsPort), ...NO_QUOTA },
        metricsPort,
        timeoutMs: plan.windowS * 1000,
      }),
    );
  }
  // The polling baseline: one job at a time, as the notebook did, polling every second so
  // the comparison is about the work per job, not the poll period.
  const baseline = await runTarget(ctx, {
    label: 'throughput-baseline',
    target: 'baseline',
    clicks: plan.clicks,
    spacingMs: 0,
    source: 'small',
    clipdrop: standinHandle(ctx.stack.clipdrop),
    pollSeconds: 1,
    timeoutMs: plan.windowS * 1000,
  });
  return { runs, baseline };
}
