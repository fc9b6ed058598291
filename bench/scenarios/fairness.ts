/**
 * Fairness (issue 23; test/integration/fairness.test.ts's first case, timed): user A clicks
 * 40 at once, user B clicks 3 two seconds later, one worker at its default settings, a
 * stand-in with the real 60 requests a minute and 500 ms a call. How long after their click
 * B's jobs complete (click commit → `complete` commit): served in arrival order they would
 * wait behind all of A's, about a minute. The run ends when B's are done; A's are not awaited.
 */
import { startClipdropStandin } from '../../dev/clipdrop-standin.js';
import { LOCAL_API_KEY } from '../../dev/local-stack.js';
import { AppSide } from '../lib/app-side.js';
import { freshProject, sleep, type BenchContext } from '../lib/context.js';
import { startReplicas, type Replicas } from '../lib/replicas.js';

export interface FairnessPlan {
  aClicks: number;
  bClicks: number;
  /** B clicks this long after A. */
  bDelayMs: number;
  rpm: number;
  latencyMs: { removeBackground: number; upscale: number };
  /** How long B's jobs are waited for, s. */
  windowS: number;
  /** The issue's goal for each of B's jobs, s. */
  goalS: number;
}

export interface FairnessResult {
  /** Each of B's jobs: click → complete, ms (undefined: not complete at the deadline). */
  bCompleteMs: (number | undefined)[];
  bMaxMs?: number;
  bFailed: number;
  /** A's jobs complete when the last of B's finished. */
  aCompleteByThen: number;
  responses429: number;
}

export async function fairnessScenario(
  ctx: BenchContext,
  plan: FairnessPlan,
): Promise<FairnessResult> {
  const standin = await startClipdropStandin({
    apiKey: LOCAL_API_KEY,
    rpm: plan.rpm,
    latencyMs: plan.latencyMs,
  });
  const projectId = freshProject('fairness');
  const app = new AppSide(ctx.stack.firestoreHost, projectId);
  let fleet: Replicas | undefined;
  try {
    const a = Array.from({ length: plan.aClicks }, (_, i) => `a${String(i).padStart(3, '0')}`);
    const b = Array.from({ length: plan.bClicks }, (_, i) => `b${String(i).padStart(3, '0')}`);
    const upload = (id: string, owner: string) => ctx.upload('small', owner, id);
    // Owners of this project only: no output path shared with another run.
    await app.createCharacters(a, upload, `user-a-${projectId}`);
    await app.createCharacters(b, upload, `user-b-${projectId}`);
    fleet = await startReplicas(ctx, 1, { projectId, clipdropUrl: standin.url });
    ctx.say(`fairness: user A clicks ${a.length}, user B ${b.length} ${plan.bDelayMs} ms later`);
    await Promise.all(a.map((id) => app.click(id)));
    // The scenario's own timing: B arrives while A's backlog is queued.
    await sleep(plan.bDelayMs);
    await Promise.all(b.map((id) => app.click(id)));
    const open = await app.waitFinished(b, plan.windowS * 1000);
    if (open.length > 0) ctx.say(`fairness: ${open.length} of B's jobs unfinished at the deadline`);
    const bCompleteMs = b.map((id) => {
      const job = app.jobs.get(id);
      return job?.completeAt !== undefined && job.clickAt !== undefined
        ? Math.round(job.completeAt - job.clickAt)
        : undefined;
    });
    const done = bCompleteMs.filter((v): v is number => v !== undefined);
    return {
      bCompleteMs,
      ...(done.length === b.length ? { bMaxMs: Math.max(...done) } : {}),
      bFailed: b.filter((id) => app.jobs.get(id)?.failedAt !== undefined).length,
      aCompleteByThen: a.filter((id) => app.jobs.get(id)?.completeAt !== undefined).length,
      responses429: standin.stats.responses['429'] ?? 0,
    };
  } finally {
    await fleet?.stop();
    await app.close();
    await standin.close();
  }
}

export function renderFairness(result: FairnessResult, plan: FairnessPlan): string[] {
  const l = plan.latencyMs;
  return [
    `### Fairness: user A clicks ${plan.aClicks} at once, user B ${plan.bClicks} ${plan.bDelayMs / 1000} s later (one worker, default settings, ${plan.rpm} requests a minute, ${l.removeBackground} / ${l.upscale} ms a call)`,
    '',
    `| B's jobs: click → complete (goal ≤ ${plan.goalS} s each) | B failed | A's jobs complete by then | 429s |`,
    '| --- | --- | --- | --- |',
    `| ${result.bCompleteMs.map((v) => (v === undefined ? 'not done' : `${(v / 1000).toFixed(1)} s`)).join(', ')} | ${result.bFailed} | ${result.aCompleteByThen}/${plan.aClicks} | ${result.responses429} |`,
  ];
}
