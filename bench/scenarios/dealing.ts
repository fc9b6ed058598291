/**
 * Dealing (issue 23): does a click cost one replica's work, or every replica's? 1, 3 and 6
 * workers on one project, clicks one at a time (each waited until it ends), ClipDrop latency
 * 0 and no quota. Per click, counted from outside the workers:
 *  - source downloads: the Storage stand-in's media GETs of that click's source object;
 *  - claim attempts: the workers' `job.claimed` lines, plus the claims refused (`job.skipped`,
 *    logged at debug: the workers run at LOG_LEVEL=debug here) and the claims that failed
 *    (`job.claim_failed`), with that character's id;
 *  - claims won: `job.claimed` lines.
 * Goal: one download and one claim attempt per click, whatever the number of replicas.
 */
import { AppSide } from '../lib/app-side.js';
import { freshProject, sleep, type BenchContext } from '../lib/context.js';
import type { Child } from '../lib/child.js';
import { startReplicas, type Replicas } from '../lib/replicas.js';
import { distribution, round2, type Distribution } from '../lib/stats.js';
import { NO_QUOTA } from '../lib/targets.js';

export interface DealingPlan {
  replicas: number[];
  clicks: number;
  /** The most one click may take, s. */
  clickTimeoutS: number;
}

/** Mean and most over the clicks. */
export interface PerClick {
  mean: number;
  max: number;
}

export interface DealingRun {
  replicas: number;
  clicks: number;
  completed: number;
  downloads: PerClick;
  claimAttempts: PerClick;
  claimsWon: PerClick;
  /** Click commit → first worker write commit, ms. */
  pickupMs?: Distribution;
  /** Click commit → `complete` commit, ms. */
  completeMs?: Distribution;
}

export interface DealingResult {
  runs: DealingRun[];
}

/** Where the workers' presence documents are (PRESENCE_COLLECTION's default). */
const PRESENCE_COLLECTION = 'showcaseWorkers';
/**
 * After every replica's presence document exists, each replica has read the whole fleet
 * within one idle heartbeat (PRESENCE_TIMEOUT_MS / 3 = 5 s by default) plus a read: the
 * workers say nothing about their view, so the scenario waits that long before clicking.
 */
const FLEET_SETTLE_MS = 6_000;
const CLAIM_LINES = new Set(['job.claimed', 'job.skipped', 'job.claim_failed']);

const perClick = (values: number[]): PerClick => ({
  mean: round2(values.reduce((a, b) => a + b, 0) / Math.max(1, values.length)),
  max: Math.max(0, ...values),
});

/** A media GET (the bytes, not the metadata) of the object `name`, by any of the URL forms. */
export function isDownloadOf(request: { method: string; path: string }, name: string): boolean {
  if (request.method !== 'GET') return false;
  const url = new URL(request.path, 'http://storage.invalid');
  const media = url.searchParams.get('alt') === 'media' || url.pathname.startsWith('/download/');
  let path: string;
  try {
    path = decodeURIComponent(url.pathname);
  } catch {
    return false;
  }
  return media && path.endsWith(`/o/${name}`);
}

async function waitForFleet(app: AppSide, replicas: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const snap = await app.db.collection(PRESENCE_COLLECTION).get();
    if (snap.size >= replicas) return;
    if (Date.now() > deadline) {
      throw new Error(`only ${snap.size} of ${replicas} presence documents after ${timeoutMs} ms`);
    }
    await sleep(250);
  }
}

async function runDealing(
  ctx: BenchContext,
  plan: DealingPlan,
  replicas: number,
): Promise<DealingRun> {
  const projectId = freshProject(`dealing-${replicas}`);
  const app = new AppSide(ctx.stack.firestoreHost, projectId);
  const ids = Array.from({ length: plan.clicks }, (_, i) => `d${String(i).padStart(3, '0')}`);
  const warmup = `warmup-${projectId}`;
  const sourceOf = new Map<string, string>();
  let fleet: Replicas | undefined;
  try {
    await app.createCharacters([warmup, ...ids], (id, owner) => {
      const url = ctx.upload('small', owner, id);
      sourceOf.set(id, url.replace(/^gs:\/\/[^/]+\//, ''));
      return url;
    });
    fleet = await startReplicas(ctx, replicas, {
      projectId,
      clipdropUrl: ctx.stack.clipdrop.url,
      env: { ...NO_QUOTA, LOG_LEVEL: 'debug' },
    });
    await waitForFleet(app, replicas, 30_000);
    await sleep(FLEET_SETTLE_MS);
    // One job end to end before counting: the listeners are live.
    await app.click(warmup);
    if ((await app.waitFinished([warmup], plan.clickTimeoutS * 1000)).length > 0) {
      throw new Error('the warm-up click did not finish');
    }
    ctx.say(`dealing: ${replicas} replica(s), ${plan.clicks} clicks one at a time`);
    const logged = ctx.stack.storage.requests.length;
    for (const id of ids) {
      await app.click(id);
      const open = await app.waitFinished([id], plan.clickTimeoutS * 1000);
      if (open.length > 0) ctx.say(`dealing: ${id} unfinished after ${plan.clickTimeoutS} s`);
    }
    // Stopped before counting: a download or claim started late is in the logs by then.
    await fleet.stop();
    const requests = ctx.stack.storage.requests.slice(logged);
    const lines = fleet.children.flatMap((c: Child) => c.lines);
    const count = (id: string, match: (message: string) => boolean) =>
      lines.filter((l) => l.characterId === id && match(l.message)).length;
    const jobs = ids.map((id) => app.jobs.get(id));
    const completed = jobs.filter((j) => j?.completeAt !== undefined);
    return {
      replicas,
      clicks: ids.length,
      completed: completed.length,
      downloads: perClick(
        ids.map((id) => requests.filter((r) => isDownloadOf(r, sourceOf.get(id) ?? id)).length),
      ),
      claimAttempts: perClick(ids.map((id) => count(id, (m) => CLAIM_LINES.has(m)))),
      claimsWon: perClick(ids.map((id) => count(id, (m) => m === 'job.claimed'))),
      ...optionalDist(
        'pickupMs',
        jobs.map((j) => (j?.firstWriteAt ?? Number.NaN) - (j?.clickAt ?? Number.NaN)),
      ),
      ...optionalDist(
        'completeMs',
        completed.map((j) => (j?.completeAt ?? Number.NaN) - (j?.clickAt ?? Number.NaN)),
      ),
    };
  } finally {
    await fleet?.stop();
    await app.close();
  }
}

function optionalDist(name: 'pickupMs' | 'completeMs', values: number[]) {
  const d = distribution(values);
  return d ? { [name]: d } : {};
}

export async function dealingScenario(
  ctx: BenchContext,
  plan: DealingPlan,
): Promise<DealingResult> {
  ctx.stack.clipdrop.setLatency({ removeBackground: 0, upscale: 0 });
  const runs: DealingRun[] = [];
  for (const replicas of plan.replicas) runs.push(await runDealing(ctx, plan, replicas));
  return { runs };
}

export function renderDealing(result: DealingResult, plan: DealingPlan): string[] {
  const pc = (p: PerClick) => `${p.mean} / ${p.max}`;
  const ms = (d?: Distribution) => (d ? `${d.p50.toFixed(0)} / ${d.max.toFixed(0)} ms` : 'n/a');
  return [
    `### Dealing: ${plan.clicks} clicks one at a time (each waited until it ends), ClipDrop latency 0, no quota`,
    '',
    "Downloads: the Storage stand-in's media GETs of the click's source. Claim attempts: the workers' `job.claimed`, `job.skipped` (a refused claim, logged at debug) and `job.claim_failed` lines for the click. Goal: 1 download and 1 claim attempt per click.",
    '',
    '| replicas | source downloads per click, mean / max | claim attempts per click, mean / max | claims won per click, mean / max | click → first write p50 / max | click → complete p50 / max | complete |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...result.runs.map(
      (r) =>
        `| ${r.replicas} | ${pc(r.downloads)} | ${pc(r.claimAttempts)} | ${pc(r.claimsWon)} | ${ms(r.pickupMs)} | ${ms(r.completeMs)} | ${r.completed}/${r.clicks} |`,
    ),
  ];
}
