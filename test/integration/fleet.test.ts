import { afterEach, describe, expect, it } from 'vitest';
import { startTcpProxy, type TcpProxy } from '../../dev/tcp-proxy.js';
import {
  inFlightFor,
  inFlightNow,
  jobOf,
  ownersOf,
  paidFor,
  seedSized,
} from '../support/billing.js';
import { startStack, type Stack } from '../support/stack.js';
import { statusOf, until, waitForDoc } from '../support/wait.js';
import {
  printLog,
  runningJobs,
  spawnWorker,
  type WorkerProcess,
} from '../support/worker-process.js';
import { runCliCaptured } from '../support/cli.js';

const isTerminal = (d: FirebaseFirestore.DocumentData | undefined) =>
  ['complete', 'failed'].includes(statusOf(d) ?? '');
/** The production lease (60 s): takeover must come from presence, not from the lease running out. */
const FLEET_ENV = { LEASE_MS: '60000', LOG_LEVEL: 'info' };

type Spawned = WorkerProcess & { id: string };

describe('a fleet of workers', () => {
  let stack: Stack | undefined;
  const processes: WorkerProcess[] = [];
  const proxies: TcpProxy[] = [];
  let spawned = 0;
  /** A worker process; its id (WORKER_ID, the owner its documents name) is `w.id`. */
  const spawn = (env: Record<string, string> = {}) => {
    if (!stack) throw new Error('no stack');
    const id = `fleet-w${spawned++}`;
    const p = spawnWorker({ ...stack.env, ...FLEET_ENV, WORKER_ID: id, ...env });
    processes.push(p);
    return Object.assign(p, { id });
  };

  afterEach(async (ctx) => {
    for (const p of processes.splice(0)) {
      if (p.proc.exitCode === null && p.proc.signalCode === null) p.kill('SIGKILL');
      await p.exited;
      if (ctx.task.result?.state === 'fail') {
        printLog(p);
      }
    }
    for (const proxy of proxies.splice(0)) await proxy.close();
    await stack?.close();
    stack = undefined;
  });

  it('a SIGKILLed worker’s running jobs complete on the others, each paid once, at default settings but every job held in a call (the 25 s goal: npm run bench)', async () => {
    // Long enough that every claimed job is seen with its call in flight before the kill.
    stack = await startStack({ clipdrop: { rpm: 60, latencyMs: { removeBackground: 5_000 } } });
    const s = stack;
    // Every job a worker holds is in a call (none waits for a paid slot), so the kill below
    // finds each held job mid-call whatever the dealing gave each worker.
    const workers = [0, 1, 2].map(() => spawn({ WORKER_LOCAL_JOBS: '0' }));
    await Promise.all(workers.map((w) => w.waitForLog((l) => l.message === 'worker.started')));
    // Each has seen the three (its share of the key follows): clicks are dealt among them all,
    // not all to one that started first and has not seen the others yet.
    await Promise.all(
      workers.map((w) =>
        w.waitForLog((l) => l.message === 'quota.share' && l.workers === 3, 60_000),
      ),
    );
    const ids = Array.from({ length: 9 }, (_, i) => `kill-${i}`);
    const sizes = await seedSized(s, ids);
    const size = (id: string) => sizes.get(id) ?? '';
    await Promise.all(ids.map((id) => s.click(id)));
    const claimedBy = () => workers.map(runningJobs);
    await until(() => claimedBy().flat().length === ids.length, 30_000, 'all claimed');
    const owners = await ownersOf(s.db, ids);
    const holding = (w: Spawned) => ids.filter((id) => owners.get(id) === w.id).length;
    const doomed = workers.reduce((a, b) => (holding(b) > holding(a) ? b : a));
    const held = ids.filter((id) => owners.get(id) === doomed.id);
    // Killed while each job it holds has its call in the stand-in: none on its way, so what
    // it had in flight is exact.
    await until(
      () =>
        held.every(
          (id) => inFlightFor(inFlightNow(s.clipdrop.stats), size(id)).removeBackground === 1,
        ),
      30_000,
      'its calls in flight',
    );
    const atKill = inFlightNow(s.clipdrop.stats);
    doomed.kill('SIGKILL');
    const killedAt = Date.now();
    await doomed.exited;
    s.clipdrop.setLatency({ removeBackground: 3_000 });

    const docs = await Promise.all(
      ids.map((id) => waitForDoc(s.db, `characters/${id}`, isTerminal, 60_000)),
    );
    const heldDocs = await Promise.all(held.map((id) => s.db.doc(`characters/${id}`).get()));
    const lastMs = Math.max(
      ...heldDocs.map((d) => (d.updateTime?.toMillis() ?? Number.POSITIVE_INFINITY) - killedAt),
    );
    await until(() => s.clipdrop.stats.inFlight === 0, 30_000, 'no call left in flight');
    expect(docs.map(statusOf)).toEqual(ids.map(() => 'complete'));
    for (const d of heldDocs) expect(jobOf(d.data()).attempts).toBe(2);
    expect(s.clipdrop.stats.responses['429'] ?? 0).toBe(0);
    // Paid per picture: once per endpoint, and once more for each call the dead worker had in
    // flight (answered to nobody); every document's bill is one call per endpoint.
    docs.forEach((d, i) => {
      const id = ids[i]!;
      const extra = held.includes(id) ? inFlightFor(atKill, size(id)) : undefined;
      expect({ id, paid: paidFor(s.clipdrop.stats, size(id)), bill: jobOf(d).calls }).toEqual({
        id,
        paid: {
          removeBackground: 1 + (extra?.removeBackground ?? 0),
          upscale: 1 + (extra?.upscale ?? 0),
        },
        bill: { removeBackground: 1, upscale: 1 },
      });
    });
    process.stdout.write(
      `fleet: ${held.length} jobs of the killed worker complete ${lastMs} ms after the kill\n`,
    );
    // A generous deadline on a loaded 2-core machine; the bench reports the time.
    expect(lastMs).toBeLessThan(60_000);
  }, 90_000);

  it('a worker SIGKILLed and restarted at once: every job complete on the restarted one (the 25 s goal: npm run bench)', async () => {
    stack = await startStack({ clipdrop: { latencyMs: { removeBackground: 4_000 } } });
    const s = stack;
    const ids = ['restart-0', 'restart-1', 'restart-2', 'restart-3'];
    await seedSized(s, ids);
    const doomed = spawn();
    await doomed.waitForLog((l) => l.message === 'worker.started');
    await Promise.all(ids.map((id) => s.click(id)));
    await until(() => runningJobs(doomed).length === ids.length, 30_000, 'all claimed');
    doomed.kill('SIGKILL');
    await doomed.exited;
    s.clipdrop.setLatency({ removeBackground: 0 });

    const restartedAt = Date.now();
    const heir = spawn();
    const docs = await Promise.all(
      ids.map((id) => waitForDoc(s.db, `characters/${id}`, isTerminal, 60_000)),
    );
    const ms = Date.now() - restartedAt;
    expect(docs.map(statusOf)).toEqual(ids.map(() => 'complete'));
    for (const d of docs) expect(jobOf(d).attempts).toBe(2);
    expect(heir.lines.filter((l) => l.message === 'job.claimed')).toHaveLength(ids.length);
    process.stdout.write(`fleet: restarted worker completed all jobs ${ms} ms after the restart\n`);
    // A generous deadline on a loaded 2-core machine; the bench reports the time.
    expect(ms).toBeLessThan(60_000);
  }, 90_000);

  it('a worker cut off from Firestore past the presence timeout writes and pays nothing for the jobs taken over', async () => {
    stack = await startStack({ clipdrop: { latencyMs: { removeBackground: 60_000 } } });
    const s = stack;
    const [host = '', port = '0'] = s.emulatorHost.split(':');
    const proxy = await startTcpProxy({ host, port: Number(port) });
    proxies.push(proxy);
    const size = (await seedSized(s, ['cut-0'])).get('cut-0') ?? '';

    const cut = spawn({ FIRESTORE_EMULATOR_HOST: proxy.host, PRESENCE_TIMEOUT_MS: '6000' });
    await cut.waitForLog((l) => l.message === 'worker.started');
    await s.click('cut-0');
    // Its remove-background call is in flight (the stand-in holds it) when the network goes.
    await until(
      () => inFlightFor(inFlightNow(s.clipdrop.stats), size).removeBackground === 1,
      30_000,
      'the call in flight',
    );
    const claimed = await s.db.doc('characters/cut-0').get();
    const firstJob = jobOf(claimed.data());
    expect(firstJob.owner).toBe(cut.id);
    // Counted from the cut: every request from now on, and the one in flight.
    const atCut = { ...s.clipdrop.stats.calls };
    const inFlightAtCut = inFlightFor(inFlightNow(s.clipdrop.stats), size);
    await proxy.cut();
    s.clipdrop.setLatency({ removeBackground: 0 });

    const heir = spawn({ PRESENCE_TIMEOUT_MS: '6000' });
    // Taken by the heir, the same request on its second attempt.
    await heir.waitForLog(
      (l) => l.message === 'job.claimed' && l.characterId === 'cut-0' && l.attempt === 2,
      60_000,
    );
    const data = await waitForDoc(s.db, 'characters/cut-0', isTerminal, 60_000);
    expect(statusOf(data)).toBe('complete');
    const taken = jobOf(data);
    expect(taken.jobId).toBe(firstJob.jobId);
    expect(taken.attempts).toBe(2);
    expect(taken.calls).toEqual({ removeBackground: 1, upscale: 1 });
    await cut.waitForLog((l) => l.message === 'job.presence_lapsed' && l.characterId === 'cut-0');
    const after = await s.db.doc('characters/cut-0').get();

    await proxy.restore();
    await cut.waitForLog((l) => l.message === 'presence.resumed', 60_000);
    // Absence cannot be awaited: give the returned worker a few beats (1.2 s each) to misbehave.
    await new Promise((r) => setTimeout(r, 4_000));
    const final = await s.db.doc('characters/cut-0').get();
    expect(final.updateTime?.toMillis()).toBe(after.updateTime?.toMillis());
    // Since the cut: the heir's two calls and nothing else, from either worker.
    expect(s.clipdrop.stats.calls).toEqual({
      removeBackground: atCut.removeBackground + 1,
      upscale: atCut.upscale + 1,
    });
    // Paid: the heir's, and at most the cut worker's call that was in flight at the cut.
    const paid = paidFor(s.clipdrop.stats, size);
    expect(paid.upscale).toBe(1);
    expect(paid.removeBackground).toBeGreaterThanOrEqual(1);
    expect(paid.removeBackground).toBeLessThanOrEqual(1 + inFlightAtCut.removeBackground);
    expect(cut.lines.some((l) => l.message === 'job.completed')).toBe(false);
    expect(heir.lines.some((l) => l.message === 'job.completed')).toBe(true);
  }, 120_000);

  it('three idle workers run as many sweep queries as one, and report the fleet in /metrics and status', async () => {
    const env = { SWEEP_MS: '500', LOG_LEVEL: 'warn' };
    const alone = await startStack();
    const s = await startStack();
    stack = s;
    try {
      const single = await alone.startWorker(env);
      const fleet = await Promise.all([1, 2, 3].map(() => s.startWorker(env)));
      const sweeps = async (w: {
        app: { metrics: { registry: { getSingleMetric(n: string): unknown } } };
      }) => {
        const metric = w.app.metrics.registry.getSingleMetric('showcase_sweep_queries_total') as {
          get(): Promise<{ values: Array<{ value: number }> }>;
        };
        return (await metric.get()).values[0]?.value ?? 0;
      };
      const total = async () => (await Promise.all(fleet.map(sweeps))).reduce((a, b) => a + b, 0);
      // Let the three find each other and a leader.
      await new Promise((r) => setTimeout(r, 3_000));
      const [fleet0, single0] = [await total(), await sweeps(single)];
      await new Promise((r) => setTimeout(r, 8_000));
      const fleetRan = (await total()) - fleet0;
      const singleRan = (await sweeps(single)) - single0;
      expect(singleRan).toBeGreaterThan(5);
      expect(Math.abs(fleetRan - singleRan)).toBeLessThanOrEqual(1);

      const text = (await fleet[0]?.app.metrics.render())?.body ?? '';
      expect(text).toMatch(/^showcase_fleet_workers 3$/m);
      expect(text).toMatch(/^showcase_quota_share 20$/m);

      // The operator's view: three live workers, each with a third of the key.
      const status = await runCliCaptured(['status', '--json'], s.env);
      const { workers } = JSON.parse(status.out) as {
        workers: Array<{ id: string; share: number; running: number }>;
      };
      expect(workers.map((w) => w.id).sort()).toEqual(fleet.map((w) => w.config.worker.id).sort());
      expect(workers.map((w) => w.share)).toEqual([20, 20, 20]);
    } finally {
      await alone.close();
    }
  }, 60_000);
});
