/**
 * Scenario 2, throughput: many clicks at once, ClipDrop latency 0, at several concurrency
 * settings: jobs per second, and the worker's CPU time per job (its own overhead); then the
 * notebook-like baseline on the same clicks, for the ratio. Then both again with a short
 * queue (closed loop): the emulator sends a listener its whole result again on every write to
 * the collection, so with 500 clicks waiting each of a job's writes costs the worker the
 * decoding of the backlog; production Firestore sends only what changed.
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
  /** Worker (concurrency 4) and notebook port again, each with a short queue. */
  shortQueue?: { worker: RunResult; baseline: RunResult };
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
  const baseline =
    runs.length === 0
      ? undefined
      : await runTarget(ctx, {
          label: 'throughput-baseline',
          target: 'baseline',
          clicks: plan.clicks,
          spacingMs: 0,
          source: 'small',
          clipdrop: standinHandle(ctx.stack.clipdrop),
          pollSeconds: 1,
          timeoutMs: plan.windowS * 1000,
        });
  if (!plan.shortQueue) return { runs, ...(baseline ? { baseline } : {}) };
  const { clicks, outstanding, windowS } = plan.shortQueue;
  const common = {
    clicks,
    spacingMs: 0,
    outstanding,
    source: 'small' as const,
    clipdrop: standinHandle(ctx.stack.clipdrop),
    timeoutMs: windowS * 1000,
  };
  const worker = await runTarget(ctx, {
    ...common,
    label: 'short-queue-c4',
    target: 'worker',
    env: { WORKER_CONCURRENCY: '4', ...NO_QUOTA },
  });
  const port = await runTarget(ctx, {
    ...common,
    label: 'short-queue-baseline',
    target: 'baseline',
    pollSeconds: 1,
  });
  return { runs, ...(baseline ? { baseline } : {}), shortQueue: { worker, baseline: port } };
}
