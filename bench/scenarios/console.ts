/**
 * The operator console (issue 25): the built console (`node dist/cli.js console`,
 * NODE_ENV=production) with a page open (its `/events` stream, as console.js reads it).
 * 1. Write → stream: a click, and the worker's last status write (complete), each until a
 *    state on the stream carries it; one job at a time, ClipDrop latency 0.
 * 2. Reads per hour as production bills them (the console's own counter on `/metrics`,
 *    src/console/read-meter.ts): the page's opening, then a window with one idle worker, then
 *    a window with a busy fleet (`busy.workers` workers, a click every `busy.clickEveryMs`).
 */
import { randomBytes } from 'node:crypto';
import { deleteApp, initializeApp } from 'firebase-admin/app';
import { getFirestore } from 'firebase-admin/firestore';
import { spawnChild, type Child } from '../lib/child.js';
import { freshProject, sleep, type BenchContext } from '../lib/context.js';
import { consoleReads, openStateStream } from '../lib/sse.js';
import { distribution, type Distribution } from '../lib/stats.js';
import { NO_QUOTA, spawnWorker } from '../lib/targets.js';

export interface ConsolePlan {
  writes: number;
  idleS: number;
  busy: {
    windowS: number;
    workers: number;
    clickEveryMs: number;
    latencyMs: { removeBackground: number; upscale: number };
  };
}

export interface ReadRate {
  windowS: number;
  reads: number;
  perHour: number;
  bySourcePerHour: Record<string, number>;
}

export interface ConsoleResult {
  clickToStreamMs?: Distribution;
  completeToStreamMs?: Distribution;
  /** Reads of the page's opening (first snapshots, first poll), by source. */
  openReads: Record<string, number>;
  idle: ReadRate;
  busy: ReadRate & { jobsCompleted: number; workers: number };
}

/** Firestore's list price, USD per 100,000 document reads (docs/console.md). */
export const LIST_PRICE_PER_100K_READS = 0.06;

const diff = (a: Record<string, number>, b: Record<string, number>) =>
  Object.fromEntries(Object.keys(b).map((k) => [k, (b[k] ?? 0) - (a[k] ?? 0)]));
const sum = (r: Record<string, number>) => Object.values(r).reduce((x, y) => x + y, 0);

function rateOf(before: Record<string, number>, after: Record<string, number>, ms: number) {
  const d = diff(before, after);
  const hour = 3_600_000 / ms;
  return {
    windowS: Math.round(ms / 100) / 10,
    reads: sum(d),
    perHour: Math.round(sum(d) * hour),
    bySourcePerHour: Object.fromEntries(
      Object.entries(d)
        .filter(([, n]) => n > 0)
        .map(([k, n]) => [k, Math.round(n * hour)]),
    ),
  } satisfies ReadRate;
}

export async function consoleScenario(
  ctx: BenchContext,
  plan: ConsolePlan,
): Promise<ConsoleResult> {
  const projectId = freshProject('console');
  const token = randomBytes(24).toString('hex');
  const env = { ...ctx.stack.env, GOOGLE_CLOUD_PROJECT: projectId };
  ctx.stack.clipdrop.setLatency({ removeBackground: 0, upscale: 0 });
  const app = initializeApp({ projectId }, `bench-console-${projectId}`);
  const db = getFirestore(app);
  db.settings({ host: ctx.stack.firestoreHost, ssl: false, universeDomain: 'googleapis.com' }); // no metadata-server probe
  const characters = db.collection('characters');
  const children: Child[] = [];
  let closePage = () => {};
  try {
    const workerEnv = { projectId, env: NO_QUOTA };
    children.push(spawnWorker(ctx, 'worker-0', workerEnv));
    const consoleChild = spawnChild('console', ['dist/cli.js', 'console', '--port', '0'], {
      ...env,
      NODE_ENV: 'production',
      LOG_FORMAT: 'json',
      CONSOLE_TOKEN: token,
    });
    children.push(consoleChild);
    const [started] = await Promise.all([
      consoleChild.waitForLog((l) => l.message === 'console.started', 60_000, 'console.started'),
      children[0]!.waitForLog((l) => l.message === 'worker.started', 60_000, 'worker.started'),
    ]);
    const url = String(started.url);

    // The page opens: its first snapshots and the first poll.
    const page = await openStateStream(url, token);
    closePage = () => page.close();
    await page.next((s) => s.queue.counts !== null && s.fleet.workers.length === 1, 60_000);
    await sleep(2_000);
    const openReads = await consoleReads(url, token);

    ctx.say(`console: ${plan.writes} writes, each until the stream carries it`);
    const clickMs: number[] = [];
    const completeMs: number[] = [];
    for (let i = 0; i < plan.writes; i++) {
      const id = `latency-${i}`;
      const path = ctx.upload('small', 'bench-user', id);
      let stopWatch = () => {};
      const completeAt = new Promise<number>((resolve) => {
        stopWatch = characters.doc(id).onSnapshot((snap) => {
          if (snap.get('visuals.showcaseProcessingStatus') === 'complete') {
            stopWatch();
            resolve(snap.updateTime!.toMillis());
          }
        });
      });
      const seen = page.next(
        (s) => s.active.some((a) => a.id === id) || s.finished.some((f) => f.id === id),
        30_000,
      );
      const done = page.next((s) => s.finished.some((f) => f.id === id), 60_000);
      // Awaited below; until then a timeout must not be an unhandled rejection.
      done.catch(() => undefined);
      const write = await characters.doc(id).set({
        core: { name: id },
        meta: { userId: 'bench-user' },
        visuals: { imageUrl: path, showcaseProcessingStatus: 'removing-background' },
      });
      try {
        clickMs.push((await seen).at - write.writeTime.toMillis());
        const [shown, committed] = await Promise.all([done, completeAt]);
        completeMs.push(shown.at - committed);
      } finally {
        stopWatch();
      }
      await sleep(500);
    }

    ctx.say(`console: ${plan.idleS} s with one idle worker`);
    await sleep(5_000); // the last job's writes settle
    const idle0 = await consoleReads(url, token);
    const idleFrom = Date.now();
    await sleep(plan.idleS * 1000);
    const idle1 = await consoleReads(url, token);
    const idle = rateOf(idle0, idle1, Date.now() - idleFrom);

    ctx.say(`console: ${plan.busy.windowS} s with ${plan.busy.workers} busy workers`);
    ctx.stack.clipdrop.setLatency(plan.busy.latencyMs);
    for (let i = 1; i < plan.busy.workers; i++) {
      const w = spawnWorker(ctx, `worker-${i}`, workerEnv);
      children.push(w);
      await w.waitForLog((l) => l.message === 'worker.started', 60_000, 'worker.started');
    }
    const busyIds: string[] = [];
    const busy0 = await consoleReads(url, token);
    const busyFrom = Date.now();
    while (Date.now() - busyFrom < plan.busy.windowS * 1000) {
      const id = `busy-${busyIds.length}`;
      busyIds.push(id);
      await characters.doc(id).set({
        core: { name: id },
        meta: { userId: `user-${busyIds.length % 5}` },
        visuals: {
          imageUrl: ctx.upload('small', `user-${busyIds.length % 5}`, id),
          showcaseProcessingStatus: 'removing-background',
        },
      });
      await sleep(plan.busy.clickEveryMs);
    }
    const busy1 = await consoleReads(url, token);
    const busyRate = rateOf(busy0, busy1, Date.now() - busyFrom);
    const complete = await characters
      .where('visuals.showcaseProcessingStatus', '==', 'complete')
      .count()
      .get();
    return {
      ...(distribution(clickMs) ? { clickToStreamMs: distribution(clickMs)! } : {}),
      ...(distribution(completeMs) ? { completeToStreamMs: distribution(completeMs)! } : {}),
      openReads,
      idle,
      busy: {
        ...busyRate,
        jobsCompleted: complete.data().count - plan.writes,
        workers: plan.busy.workers,
      },
    };
  } finally {
    closePage();
    ctx.stack.clipdrop.setLatency({ removeBackground: 0, upscale: 0 });
    await Promise.all(children.map((c) => c.stop(10_000)));
    await deleteApp(app);
  }
}

const dollars = (readsPerHour: number, hours: number) =>
  `$${((readsPerHour * hours * LIST_PRICE_PER_100K_READS) / 100_000).toFixed(2)}`;

export function renderConsole(r: ConsoleResult, plan: ConsolePlan): string[] {
  const ms = (d?: Distribution) =>
    d ? `${d.p50.toFixed(0)} / ${d.p95.toFixed(0)} / ${d.max.toFixed(0)} ms (n=${d.n})` : 'n/a';
  const sources = (x: Record<string, number>) =>
    Object.entries(x)
      .sort(([, a], [, b]) => b - a)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ');
  const row = (what: string, x: ReadRate) =>
    `| ${what} | ${x.perHour} | ${dollars(x.perHour, 24)} / ${dollars(x.perHour, 24 * 30)} | ${sources(x.bySourcePerHour)} |`;
  return [
    '### Console: write → a page’s stream, and what an open page reads',
    '',
    `The built console (NODE_ENV=production) with one page open (its /events stream). ${plan.writes} clicks one at a time (ClipDrop latency 0), each timed from its commit to the first state on the stream listing it, and from the worker's \`complete\` write to the state listing it as completed.`,
    '',
    '| write → stream | p50 / p95 / max |',
    '| --- | --- |',
    `| a click | ${ms(r.clickToStreamMs)} |`,
    `| a status change (complete) | ${ms(r.completeToStreamMs)} |`,
    '',
    `Reads as billed (the console's \`showcase_console_firestore_reads_total\`), per hour from a window; dollars at Firestore's list price, $${LIST_PRICE_PER_100K_READS} per 100,000 reads. Opening the page: ${sum(r.openReads)} reads (${sources(r.openReads)}).`,
    '',
    '| page open, fleet | reads an hour | a day / 30 days | by source (an hour) |',
    '| --- | --- | --- | --- |',
    row(`idle, 1 worker (${r.idle.windowS} s)`, r.idle),
    row(
      `busy, ${r.busy.workers} workers, ${r.busy.jobsCompleted} jobs completed (${r.busy.windowS} s)`,
      r.busy,
    ),
  ];
}
