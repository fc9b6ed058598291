/**
 * A fleet of the built worker on one project: N processes started as the Procfile starts
 * them, each waited for until it logs `worker.started`. No warm-up job: a fleet scenario
 * measures what a deploy meets from its first click.
 */
import type { Child, LogLine } from './child.js';
import type { BenchContext } from './context.js';
import { spawnWorker, type TargetEnv } from './targets.js';

export interface Replicas {
  children: Child[];
  /** Each replica's `worker.started` line, in replica order. */
  started: LogLine[];
  /** SIGTERM to every replica still running (SIGKILL after `graceMs`). */
  stop(graceMs?: number): Promise<void>;
}

export async function startReplicas(
  ctx: BenchContext,
  count: number,
  t: TargetEnv,
  /** Settings of one replica on top of `t.env` (a skewed clock, say). */
  envOf: (index: number) => Record<string, string> = () => ({}),
): Promise<Replicas> {
  const children = Array.from({ length: count }, (_, i) =>
    spawnWorker(ctx, `worker-${i}`, { ...t, env: { ...t.env, ...envOf(i) } }),
  );
  const stop = async (graceMs = 5_000) => {
    await Promise.all(children.map((c) => c.stop(graceMs)));
  };
  try {
    const started = await Promise.all(
      children.map((c) => c.waitForLog((l) => l.message === 'worker.started', 30_000, 'started')),
    );
    return { children, started, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
