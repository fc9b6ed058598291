/**
 * Scenario 4, memory: camera-sized sources at concurrency 8; the worker's peak resident set
 * (VmHWM). ClipDrop answers come through a memoising front (bench/lib/memo-clipdrop.ts) so
 * the stand-in's own image encoding does not slow the run down: same answers, same bytes.
 */
import { freePort } from '../../dev/free-port.js';
import type { BenchContext } from '../lib/context.js';
import { memoHandle } from '../lib/clipdrop-handles.js';
import { startMemoClipdrop } from '../lib/memo-clipdrop.js';
import { runTarget, type RunResult } from '../lib/run-target.js';
import { NO_QUOTA } from '../lib/targets.js';
import type { Plan } from '../plan.js';

export interface MemoryResult {
  source: { width: number; height: number; bytes: number; format: 'jpeg' };
  worker: RunResult & { memo?: { forwarded: number; replayed: number } };
}

export async function memoryScenario(
  ctx: BenchContext,
  plan: Plan['memory'],
  sourceBytes: number,
): Promise<MemoryResult> {
  ctx.stack.clipdrop.setLatency({ removeBackground: 0, upscale: 0 });
  const memo = await startMemoClipdrop(ctx.stack.clipdrop.url);
  const metricsPort = await freePort();
  try {
    const worker = await runTarget(ctx, {
      label: 'memory-worker',
      target: 'worker',
      clicks: plan.clicks,
      spacingMs: 0,
      source: 'large',
      clipdrop: memoHandle(memo, ctx.stack.clipdrop),
      env: { WORKER_CONCURRENCY: String(plan.concurrency), PORT: String(metricsPort), ...NO_QUOTA },
      metricsPort,
      timeoutMs: plan.windowS * 1000,
    });
    return {
      source: { width: plan.width, height: plan.height, bytes: sourceBytes, format: 'jpeg' },
      worker: {
        ...worker,
        memo: { forwarded: memo.stats.forwarded, replayed: memo.stats.replayed },
      },
    };
  } finally {
    await memo.close();
  }
}
