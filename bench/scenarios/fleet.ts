/**
 * Scenario 5, a fleet on one key: 1, 2 and 4 worker processes (no CLIPDROP_RPM: the default
 * 60 a minute is the key's, shared), clicks at once against a stand-in with the real rate
 * limit. Reports jobs per minute against the quota's bound, 429s, the Firestore reads and
 * writes per job the workers counted (job.finished), and, with 2 or more replicas, how long
 * after a SIGKILL of one of them its jobs were claimed again and complete.
 *
 * Its clock-skew variant (`--only=fleet-skew`) gives the replicas wrong wall clocks
 * (libfaketime, `clocks`), kills the first (on time), and also counts the jobs claimed from a
 * worker that was alive (a claim on a second attempt before the kill).
 */
import { startClipdropStandin } from '../../dev/clipdrop-standin.js';
import { LOCAL_API_KEY } from '../../dev/local-stack.js';
import { AppSide } from '../lib/app-side.js';
import type { Child, LogLine } from '../lib/child.js';
import { freshProject, sleep, type BenchContext } from '../lib/context.js';
import { startReplicas, type Replicas } from '../lib/replicas.js';
import { round1 } from '../lib/stats.js';
import { aheadBy, clockEnv, offsetMs } from '../../test/support/skewed-clock.js';

export interface FleetPlan {
  replicas: number[];
  clicks: number;
  rpm: number;
  latencyMs: { removeBackground: number; upscale: number };
  /**
   * Kill one replica once this share of the jobs is complete (runs with 2+ replicas); absent:
   * none is killed (the window scenario: how fast the fleet spends the key).
   */
  killAtShare?: number;
  /**
   * Wall-clock offsets by replica, libfaketime's syntax ('+30s'; '' on time; the first replica
   * is the one killed). Needs Debian's faketime package.
   */
  clocks?: string[];
  /**
   * Clicks this far apart instead of all at once (`fleet-steady`): a steady load under the
   * key's rate, so the kill finds the survivors' windows with room, not just filled by a burst.
   */
  spacingMs?: number;
}

export interface FleetRun {
  replicas: number;
  clicks: number;
  completed: number;
  failed: number;
  /** First click commit → last `complete` commit, s: the time until all complete. */
  spanS?: number;
  jobsPerMinute?: number;
  /** Jobs a minute the quota allows in the long run (rpm / 2 calls a job). */
  boundJobsPerMinute: number;
  quotaUse?: number;
  responses429: number;
  firestoreReadsPerJob?: number;
  firestoreWritesPerJob?: number;
  /**
   * After the SIGKILL: how many of its jobs a survivor claimed again (those it finished itself
   * just before the kill are left out), and when the last was claimed and complete (ms).
   */
  takeover?: { held: number; claimedMs?: number; completeMs?: number };
  /** Jobs claimed on a second attempt or later before the kill: taken from a live worker. */
  claimsFromLive?: number;
}

export type FleetResult = { runs: FleetRun[] };

/** The issue's goal for a takeover: a killed worker's jobs complete within 25 s of the kill. */
export const TAKEOVER_GOAL_MS = 25_000;

const num = (v: unknown) => (typeof v === 'number' ? v : 0);

function runningJobs(child: Child): string[] {
  const held = new Set<string>();
  for (const l of child.lines) {
    const id = typeof l.characterId === 'string' ? l.characterId : undefined;
    if (!id) continue;
    if (l.message === 'job.claimed') held.add(id);
    if (l.message === 'job.finished') held.delete(id);
  }
  return [...held];
}

/**
 * One run: `replicas` workers at their default settings (the Procfile's command, no
 * CLIPDROP_RPM or WORKER_CONCURRENCY) on a fresh project and their own stand-in, every click
 * at once.
 */
export async function runFleet(
  ctx: BenchContext,
  plan: FleetPlan,
  replicas: number,
  label = 'fleet',
): Promise<FleetRun> {
  const standin = await startClipdropStandin({
    apiKey: LOCAL_API_KEY,
    rpm: plan.rpm,
    latencyMs: plan.latencyMs,
  });
  const projectId = freshProject(`${label}-${replicas}`);
  const app = new AppSide(ctx.stack.firestoreHost, projectId);
  let fleet: Replicas | undefined;
  try {
    const ids = Array.from({ length: plan.clicks }, (_, i) => `f${String(i).padStart(4, '0')}`);
    await app.createCharacters(ids, (id, owner) => ctx.upload('small', owner, id));
    fleet = await startReplicas(ctx, replicas, { projectId, clipdropUrl: standin.url }, (i) => {
      const clock = plan.clocks?.[i];
      return clock ? clockEnv({ offset: clock }) : {};
    });
    const children: Child[] = fleet.children;
    fleet.started.forEach((started, i) => {
      // A skewed replica whose clock is not (libfaketime not applied) would measure nothing.
      const clock = plan.clocks?.[i];
      const ahead = aheadBy(started);
      if (clock && Math.abs(ahead - offsetMs(clock)) > 10_000) {
        throw new Error(`worker-${i}: its clock is not ${clock} off (${ahead} ms ahead)`);
      }
    });
    ctx.say(`${label}: ${replicas} replica(s), ${plan.clicks} clicks`);
    const spacingMs = plan.spacingMs;
    const clicking =
      spacingMs === undefined
        ? Promise.all(ids.map((id) => app.click(id)))
        : (async () => {
            for (const id of ids) {
              await app.click(id);
              await sleep(spacingMs);
            }
          })();
    if (spacingMs === undefined) await clicking;
    const timeoutMs =
      ((plan.clicks / (plan.rpm / 2)) * 2 + 2) * 60_000 + (spacingMs ?? 0) * plan.clicks;

    let takeover: FleetRun['takeover'];
    let claimsFromLive: number | undefined;
    if (replicas >= 2 && plan.killAtShare !== undefined) {
      const killAtShare = plan.killAtShare;
      const doomed = children[0];
      const deadline = Date.now() + timeoutMs;
      const doneCount = () => ids.filter((id) => app.jobs.get(id)?.completeAt).length;
      while (
        doomed &&
        Date.now() < deadline &&
        (doneCount() < plan.clicks * killAtShare || runningJobs(doomed).length === 0)
      ) {
        await sleep(50);
      }
      const held = doomed ? runningJobs(doomed) : [];
      claimsFromLive = children
        .flatMap((c) => c.lines)
        .filter((l) => l.message === 'job.claimed' && num(l.attempt) > 1).length;
      if (doomed && held.length > 0) {
        process.kill(doomed.pid, 'SIGKILL');
        const killedAt = Date.now();
        const survivors = children.slice(1);
        const claimOf = (id: string) => (l: LogLine) =>
          l.message === 'job.claimed' && l.characterId === id;
        // Each held job is claimed again by a survivor, or it was finished by the killed
        // worker itself (its last write landed, its job.finished line did not): only the
        // first kind is a takeover, and waiting for its claim would wait for nothing.
        const claimed = await Promise.all(
          held.map(async (id) => {
            const claim = Promise.any(
              survivors.map((c) => c.waitForLog(claimOf(id), timeoutMs, `re-claim of ${id}`)),
            ).then(
              () => Date.now(),
              () => undefined,
            );
            const first = await Promise.race([
              claim,
              app.waitFinished([id], timeoutMs).then(() => undefined),
            ]);
            if (first !== undefined) return { id, at: first };
            const taken = survivors.some((c) => c.lines.some(claimOf(id)));
            return taken ? { id, at: await claim } : undefined;
          }),
        );
        const taken = claimed.filter((c) => c !== undefined);
        await app.waitFinished(
          taken.map((c) => c.id),
          timeoutMs,
        );
        const completes = taken.map((c) => app.jobs.get(c.id)?.completeAt);
        takeover = {
          held: taken.length,
          ...(taken.length > 0 && taken.every((c) => c.at !== undefined)
            ? { claimedMs: Math.max(...taken.map((c) => (c.at ?? 0) - killedAt)) }
            : {}),
          ...(taken.length > 0 && completes.every((t) => t !== undefined)
            ? { completeMs: Math.round(Math.max(...completes.map((t) => (t ?? 0) - killedAt))) }
            : {}),
        };
      }
    }
    await clicking;
    const open = await app.waitFinished(ids, timeoutMs);
    if (open.length > 0) ctx.say(`${label}: ${open.length} jobs unfinished at the deadline`);

    const jobs = ids.map((id) => app.jobs.get(id));
    const completed = jobs.filter((j) => j?.completeAt !== undefined);
    const failed = jobs.filter((j) => j?.completeAt === undefined && j?.failedAt !== undefined);
    const first = Math.min(...jobs.map((j) => j?.clickAt ?? Infinity));
    const last = Math.max(...completed.map((j) => j?.completeAt ?? 0));
    const jobsPerMinute =
      completed.length > 0 ? round1((completed.length / (last - first)) * 60_000) : undefined;
    const finished = children
      .flatMap((c) => c.lines)
      .filter((l) => l.message === 'job.finished' && l.outcome === 'complete');
    const perJob = (field: string) =>
      finished.length > 0
        ? round1(finished.reduce((n, l) => n + num(l[field]), 0) / finished.length)
        : undefined;
    const bound = plan.rpm / 2;
    const reads = perJob('firestoreReads');
    const writes = perJob('firestoreWrites');
    return {
      replicas,
      clicks: plan.clicks,
      completed: completed.length,
      failed: failed.length,
      ...(completed.length > 0 ? { spanS: round1((last - first) / 1000) } : {}),
      boundJobsPerMinute: bound,
      ...(jobsPerMinute === undefined
        ? {}
        : { jobsPerMinute, quotaUse: round1((jobsPerMinute / bound) * 100) }),
      responses429: standin.stats.responses['429'] ?? 0,
      ...(reads === undefined ? {} : { firestoreReadsPerJob: reads }),
      ...(writes === undefined ? {} : { firestoreWritesPerJob: writes }),
      ...(takeover ? { takeover } : {}),
      ...(claimsFromLive === undefined ? {} : { claimsFromLive }),
    };
  } finally {
    await fleet?.stop();
    await app.close();
    await standin.close();
  }
}

export async function fleetScenario(ctx: BenchContext, plan: FleetPlan): Promise<FleetResult> {
  const runs: FleetRun[] = [];
  // One at a time: each run has its own stand-in (its own quota) and project.
  for (const replicas of plan.replicas) runs.push(await runFleet(ctx, plan, replicas));
  return { runs };
}

export function renderFleet(result: FleetResult, plan: FleetPlan): string[] {
  const clocks = plan.clocks?.some(Boolean)
    ? ` Replica clocks: ${plan.clocks.map((c) => c || 'on time').join(', ')} (the first is the one killed).`
    : '';
  const steady = plan.spacingMs === undefined ? '' : `, clicks ${plan.spacingMs / 1000} s apart`;
  const lines = [
    `## Fleet${clocks ? ' with skewed clocks' : ''}${steady}: one key (${plan.rpm} requests a minute) shared by ${plan.replicas.join(', ')} replicas`,
    '',
    `${plan.clicks} clicks ${plan.spacingMs === undefined ? 'at once' : `${plan.spacingMs} ms apart`}, stand-in latency ${plan.latencyMs.removeBackground} ms / ${plan.latencyMs.upscale} ms, default settings (the Procfile's command, no CLIPDROP_RPM set).` +
      (plan.killAtShare === undefined
        ? ''
        : ` With 2+ replicas one is SIGKILLed once ${Math.round(plan.killAtShare * 100)} % of the jobs are complete; goal: its jobs complete ≤ ${TAKEOVER_GOAL_MS / 1000} s after the kill.`) +
      clocks,
    '',
    `| replicas | complete | failed | jobs/min | of the bound | 429s | Firestore reads/job | writes/job | killed worker: jobs, claimed again, complete (goal ≤ ${TAKEOVER_GOAL_MS / 1000} s) | claims from a live worker |`,
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const r of result.runs) {
    const t = r.takeover;
    lines.push(
      `| ${r.replicas} | ${r.completed}/${r.clicks} | ${r.failed} | ${r.jobsPerMinute ?? '—'} | ${r.quotaUse ?? '—'} % | ${r.responses429} | ${r.firestoreReadsPerJob ?? '—'} | ${r.firestoreWritesPerJob ?? '—'} | ${t ? `${t.held}, ${t.claimedMs ?? '—'} ms, ${t.completeMs ?? '—'} ms${t.completeMs === undefined ? '' : t.completeMs <= TAKEOVER_GOAL_MS ? ' (met)' : ' (**not met**)'}` : '—'} | ${r.claimsFromLive ?? '—'} |`,
    );
  }
  return lines;
}
