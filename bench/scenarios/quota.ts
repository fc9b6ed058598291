/**
 * Scenario 3, quota use: clicks at once against a ClipDrop stand-in with realistic latency
 * and the real rate limit (60 requests a minute): jobs per minute achieved and 429s
 * received, against the bound the quota allows. Each target gets its own stand-in, so its
 * quota starts empty; the two run at the same time. The worker is given CLIPDROP_RPM (the client-side limiter's setting);
 * whether the build under test knows that setting is reported with the numbers.
 */
import { readFileSync } from 'node:fs';
import { startClipdropStandin } from '../../dev/clipdrop-standin.js';
import { LOCAL_API_KEY } from '../../dev/local-stack.js';
import type { BenchContext } from '../lib/context.js';
import { standinHandle } from '../lib/clipdrop-handles.js';
import { runTarget, type RunResult } from '../lib/run-target.js';
import { round1 } from '../lib/stats.js';
import type { Plan } from '../plan.js';

export interface QuotaResult {
  /** Jobs a minute the quota allows in the long run: rpm / 2 calls a job. */
  boundJobsPerMinute: number;
  /**
   * The most jobs a minute a client could achieve for this many clicks, starting with an
   * empty window: it may spend a whole window's requests at once, so short runs can beat
   * the long-run bound. Makespan ≥ 60 s × floor((2N − 1) / rpm) + upscale latency.
   */
  burstBoundJobsPerMinute: number;
  /** Whether dist/ knows CLIPDROP_RPM (the client-side rate limiter). */
  limiterInBuild: boolean;
  worker: RunResult & { quotaUse?: number; burstQuotaUse?: number };
  baseline: RunResult & { quotaUse?: number; burstQuotaUse?: number };
}

export function burstBoundJobsPerMinute(
  clicks: number,
  rpm: number,
  latencyMs: { removeBackground: number; upscale: number },
): number {
  const windows = Math.floor((2 * clicks - 1) / rpm);
  const makespanMs = Math.max(
    latencyMs.removeBackground + latencyMs.upscale,
    windows * 60_000 + latencyMs.upscale,
  );
  return (clicks / makespanMs) * 60_000;
}

export function limiterInBuild(): boolean {
  try {
    return readFileSync('dist/config/schema.js', 'utf8').includes('CLIPDROP_RPM');
  } catch {
    return false;
  }
}

export async function quotaScenario(ctx: BenchContext, plan: Plan['quota']): Promise<QuotaResult> {
  const bound = plan.rpm / 2;
  const burstBound = burstBoundJobsPerMinute(plan.clicks, plan.rpm, plan.latencyMs);
  const withUse = (run: RunResult) => ({
    ...run,
    ...(run.jobsPerMinute === undefined
      ? {}
      : {
          quotaUse: round1((run.jobsPerMinute / bound) * 100),
          burstQuotaUse: round1((run.jobsPerMinute / burstBound) * 100),
        }),
  });

  async function measure(target: 'worker' | 'baseline'): Promise<RunResult> {
    const standin = await startClipdropStandin({
      apiKey: LOCAL_API_KEY,
      rpm: plan.rpm,
      latencyMs: plan.latencyMs,
    });
    try {
      return await runTarget(ctx, {
        label: `quota-${target}`,
        target,
        clicks: plan.clicks,
        spacingMs: 0,
        source: 'small',
        clipdrop: standinHandle(standin),
        ...(target === 'worker'
          ? {
              env: {
                WORKER_CONCURRENCY: String(plan.concurrency),
                CLIPDROP_RPM: String(plan.rpm),
              },
            }
          : { pollSeconds: plan.pollSeconds }),
        // Twice the time the quota needs, plus a poll period for the baseline.
        timeoutMs:
          ((plan.clicks / bound) * 2 + 1) * 60_000 +
          (target === 'baseline' ? plan.pollSeconds * 1000 : 0),
      });
    } finally {
      await standin.close();
    }
  }

  // Side by side: each has its own stand-in (its own quota) and project, and both spend
  // their time waiting for ClipDrop's latency and quota, not on the CPU.
  const [worker, baseline] = (await Promise.all([measure('worker'), measure('baseline')])).map(
    withUse,
  ) as [QuotaResult['worker'], QuotaResult['baseline']];
  return {
    boundJobsPerMinute: bound,
    burstBoundJobsPerMinute: round1(burstBound),
    limiterInBuild: limiterInBuild(),
    worker,
    baseline,
  };
}
