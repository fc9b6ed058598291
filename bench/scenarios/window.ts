/**
 * The window (issue 23): a backlog on one key, 60 clicks at once against a stand-in with the
 * real rolling window (60 requests a minute) and realistic latency, the workers at their
 * default settings: the time until all complete and the 429s, for one replica and for three
 * on the one key, beside the ideal the window allows (bench/lib/window-ideal.ts). The fleet
 * scenario's run without its kill.
 */
import type { BenchContext } from '../lib/context.js';
import { round1 } from '../lib/stats.js';
import { idealMakespanMs } from '../lib/window-ideal.js';
import { runFleet, type FleetRun } from './fleet.js';

export interface WindowPlan {
  replicas: number[];
  clicks: number;
  rpm: number;
  latencyMs: { removeBackground: number; upscale: number };
  /** WORKER_CONCURRENCY's default (each replica's calls in flight), for the ideal. */
  defaultConcurrency: number;
  /** Goal for "all complete", s, by number of replicas (the issue's 90 s and 100 s). */
  goalS: Record<number, number>;
}

export interface WindowRun extends FleetRun {
  /** What the rolling window allows with this many replicas' slots, API latency only, s. */
  idealS: number;
  goalS?: number;
}

export interface WindowResult {
  runs: WindowRun[];
}

export async function windowScenario(ctx: BenchContext, plan: WindowPlan): Promise<WindowResult> {
  const runs: WindowRun[] = [];
  for (const replicas of plan.replicas) {
    const run = await runFleet(ctx, { ...plan, replicas: [replicas] }, replicas, 'window');
    const idealMs = idealMakespanMs({
      clicks: plan.clicks,
      rpm: plan.rpm,
      latencyMs: plan.latencyMs,
      slots: replicas * plan.defaultConcurrency,
    });
    const goalS = plan.goalS[replicas];
    runs.push({
      ...run,
      idealS: round1(idealMs / 1000),
      ...(goalS === undefined ? {} : { goalS }),
    });
  }
  return { runs };
}

export function renderWindow(result: WindowResult, plan: WindowPlan): string[] {
  const l = plan.latencyMs;
  return [
    `### Window: ${plan.clicks} clicks at once on one key (${plan.rpm} requests per rolling minute), API ${l.removeBackground} ms + ${l.upscale} ms, default settings`,
    '',
    `Time until all complete is the first click's commit to the last \`complete\` commit. The ideal: what the rolling window allows with every replica's ${plan.defaultConcurrency} call slots and the API's latency only (calls ${plan.rpm + 1}–${2 * plan.rpm} start as calls 1–${plan.rpm} leave the window).`,
    '',
    '| replicas | all complete after | goal | ideal | 429s (goal 0) | jobs/min | complete | failed |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...result.runs.map(
      (r) =>
        `| ${r.replicas} | ${r.spanS === undefined ? 'n/a' : `${r.spanS} s`}${r.completed < r.clicks ? ' (not all)' : ''} | ${r.goalS === undefined ? '—' : `≤ ${r.goalS} s`} | ${r.idealS} s | ${r.responses429} | ${r.jobsPerMinute ?? '—'} | ${r.completed}/${r.clicks} | ${r.failed} |`,
    ),
  ];
}
