/**
 * Scenario 1, pickup latency: clicks spaced apart, ClipDrop latency 0; click → first worker
 * write (the claim) and click → complete. Run against the worker, then the baseline.
 */
import type { BenchContext } from '../lib/context.js';
import { standinHandle } from '../lib/clipdrop-handles.js';
import { runTarget, type RunResult } from '../lib/run-target.js';
import { NO_QUOTA } from '../lib/targets.js';
import type { Plan } from '../plan.js';

export interface PickupResult {
  worker: RunResult;
  baseline: RunResult;
}

export async function pickupScenario(ctx: BenchContext, plan: Plan['pickup']) {
  const clipdrop = standinHandle(ctx.stack.clipdrop);
  ctx.stack.clipdrop.setLatency({ removeBackground: 0, upscale: 0 });
  const common = {
    clicks: plan.clicks,
    spacingMs: plan.spacingMs,
    source: 'small' as const,
    clipdrop,
  };
  const worker = await runTarget(ctx, {
    ...common,
    label: 'pickup-worker',
    target: 'worker',
    env: { WORKER_CONCURRENCY: String(plan.concurrency), ...NO_QUOTA },
    idle: { clicks: plan.idleClicks, spacingMs: 500 },
    timeoutMs: 120_000,
  });
  const baseline = await runTarget(ctx, {
    ...common,
    label: 'pickup-baseline',
    target: 'baseline',
    pollSeconds: plan.pollSeconds,
    // One poll period, the clicks, then one job at a time (well under a second each here).
    timeoutMs: (plan.pollSeconds * 2 + 60) * 1000 + plan.clicks * 2_000,
  });
  return { worker, baseline } satisfies PickupResult;
}
