/**
 * Scenario 4, memory: the worker's peak resident set (VmHWM) at its default settings (the
 * Procfile's command, no WORKER_CONCURRENCY), for camera-sized sources clicked at once, then
 * for small ones. ClipDrop answers for the large sources come through a memoising front
 * (bench/lib/memo-clipdrop.ts) so the stand-in's own image encoding does not slow the run
 * down: same answers, same bytes. The clicks stay within the default 60 requests a minute.
 */
import { freePort } from '../../dev/free-port.js';
import type { BenchContext } from '../lib/context.js';
import { memoHandle, standinHandle } from '../lib/clipdrop-handles.js';
import { startMemoClipdrop } from '../lib/memo-clipdrop.js';
import { runTarget, type RunResult } from '../lib/run-target.js';
import type { Plan } from '../plan.js';

export interface MemoryResult {
  source: { width: number; height: number; bytes: number; format: 'jpeg' };
  /** The large sources. */
  worker: RunResult & { memo?: { forwarded: number; replayed: number } };
  /** The small sources (128x96 PNG), same settings. */
  small?: RunResult;
}

export async function memoryScenario(
  ctx: BenchContext,
  plan: Plan['memory'],
  sourceBytes: number,
): Promise<MemoryResult> {
  ctx.stack.clipdrop.setLatency({ removeBackground: 0, upscale: 0 });
  const memo = await startMemoClipdrop(ctx.stack.clipdrop.url);
  let worker: MemoryResult['worker'];
  try {
    // The worker's /metrics: where its memory is at the peak.
    const metricsPort = await freePort();
    const run = await runTarget(ctx, {
      label: 'memory-worker',
      target: 'worker',
      clicks: plan.clicks,
      spacingMs: 0,
      source: 'large',
      clipdrop: memoHandle(memo, ctx.stack.clipdrop),
      env: { PORT: String(metricsPort) },
      metricsPort,
      timeoutMs: plan.windowS * 1000,
    });
    worker = { ...run, memo: { forwarded: memo.stats.forwarded, replayed: memo.stats.replayed } };
  } finally {
    await memo.close();
  }
  const metricsPort = await freePort();
  const small = await runTarget(ctx, {
    label: 'memory-small',
    target: 'worker',
    clicks: plan.small.clicks,
    spacingMs: 0,
    source: 'small',
    clipdrop: standinHandle(ctx.stack.clipdrop),
    env: { PORT: String(metricsPort) },
    metricsPort,
    timeoutMs: plan.small.windowS * 1000,
  });
  return {
    source: { width: plan.width, height: plan.height, bytes: sourceBytes, format: 'jpeg' },
    worker,
    small,
  };
}
