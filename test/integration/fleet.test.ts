import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { startTcpProxy, type TcpProxy } from '../../dev/tcp-proxy.js';
import { characterPicture } from '../support/images.js';
import { BUCKET, startStack, type Stack } from '../support/stack.js';
import { statusOf, until, waitForDoc } from '../support/wait.js';
import { spawnWorker, type LogLine, type WorkerProcess } from '../support/worker-process.js';
import { runCliCaptured } from '../support/cli.js';

const isTerminal = (d: FirebaseFirestore.DocumentData | undefined) =>
  ['complete', 'failed'].includes(statusOf(d) ?? '');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
type Job = { owner?: string; state?: string; attempts?: number; jobId?: string };
const jobOf = (d: FirebaseFirestore.DocumentData | undefined) =>
  (d?.visuals as { showcaseJob?: Job } | undefined)?.showcaseJob ?? {};

/** The production lease (60 s): takeover must come from presence, not from the lease running out. */
const FLEET_ENV = { LEASE_MS: '60000', LOG_LEVEL: 'info' };

/** Jobs a worker claimed and has not finished, by its own log. */
function runningJobs(w: WorkerProcess): string[] {
  const claimed = new Set<string>();
  for (const l of w.lines) {
    if (l.message === 'job.claimed' && l.characterId) claimed.add(l.characterId);
    if (l.message === 'job.finished' && l.characterId) claimed.delete(l.characterId);
  }
  return [...claimed];
}

describe('a fleet of workers', () => {
  let stack: Stack | undefined;
  const processes: WorkerProcess[] = [];
  const proxies: TcpProxy[] = [];
  const spawn = (env: Record<string, string> = {}) => {
    if (!stack) throw new Error('no stack');
    const p = spawnWorker({ ...stack.env, ...FLEET_ENV, ...env });
    processes.push(p);
    return p;
  };

  afterEach(async (ctx) => {
    for (const p of processes.splice(0)) {
      if (p.proc.exitCode === null && p.proc.signalCode === null) p.kill('SIGKILL');
      await p.exited;
      if (ctx.task.result?.state === 'fail') {
        const keep = (l: LogLine) => l.level !== 'debug';
        process.stderr.write(
          p.lines
            .filter(keep)
            .map((l) => JSON.stringify(l))
            .join('\n') + '\n',
        );
      }
    }
    for (const proxy of proxies.splice(0)) await proxy.close();
    await stack?.close();
    stack = undefined;
  });

  async function seed(s: Stack, ids: string[]): Promise<Map<string, string>> {
    const hashes = new Map<string, string>();
    await Promise.all(
      ids.map(async (id, i) => {
        const picture = await characterPicture(24, 24, 'png', i + 1);
        s.storage.putObject(BUCKET, `raw-uploads/user-1/${id}.png`, picture);
        hashes.set(id, sha256(picture));
      }),
    );
    return hashes;
  }

  it('three workers share one 60/min key with no CLIPDROP_RPM: zero 429s, all complete, even with one SIGKILLed mid-run', async () => {
    stack = await startStack({ clipdrop: { rpm: 60 } });
    const s = stack;
    const workers = [spawn(), spawn(), spawn()];
    await Promise.all(workers.map((w) => w.waitForLog((l) => l.message === 'worker.started')));
    const ids = Array.from({ length: 60 }, (_, i) => `fleet-${i}`);
    const hashes = await seed(s, ids);
    await Promise.all(ids.map((id) => s.click(id)));
    const done = ids.map((id) => waitForDoc(s.db, `characters/${id}`, isTerminal, 280_000));

    // Mid-run, kill a worker that holds jobs in flight.
    const [doomed, ...others] = workers as [WorkerProcess, ...WorkerProcess[]];
    await until(
      () => runningJobs(doomed).length > 0 && s.clipdrop.stats.calls.upscale >= 20,
      200_000,
      'a busy worker mid-run',
    );
    const held = runningJobs(doomed);
    const callsBefore = { ...s.clipdrop.stats.calls };
    const inFlight = s.clipdrop.stats.inFlight;
    doomed.kill('SIGKILL');
    const killedAt = Date.now();
    await doomed.exited;

    // Taken over as soon as the death is visible: claimed again by a survivor (attempt 2).
    const claimedAgain = (id: string) =>
      Promise.any(
        others.map((w) =>
          w.waitForLog(
            (l) => l.message === 'job.claimed' && l.characterId === id && l.attempt === 2,
            120_000,
          ),
        ),
      );
    await Promise.all(held.map(claimedAgain));
    const takeoverMs = Date.now() - killedAt;
    const heldDocs = await Promise.all(
      held.map((id) => waitForDoc(s.db, `characters/${id}`, isTerminal, 200_000)),
    );
    const completeMs = Date.now() - killedAt;
    const docs = await Promise.all(done);

    expect(docs.map(statusOf)).toEqual(ids.map(() => 'complete'));
    expect(s.clipdrop.stats.responses['429'] ?? 0).toBe(0);
    expect(heldDocs.map(statusOf)).toEqual(held.map(() => 'complete'));
    // Taken over, not restarted: the same request on its second attempt, by a survivor.
    for (const d of heldDocs) expect(jobOf(d).attempts).toBe(2);
    const survivorsClaimed = others.flatMap((w) =>
      w.lines.filter((l) => l.message === 'job.claimed' && held.includes(l.characterId ?? '')),
    );
    expect(survivorsClaimed.length).toBeGreaterThanOrEqual(held.length);
    // Paid once per job, but for the calls the dead worker had in flight.
    const paid = [...hashes.values()].reduce(
      (n, h) => n + (s.clipdrop.stats.callsByImage.get(h)?.removeBackground ?? 0),
      0,
    );
    expect(paid - ids.length).toBeLessThanOrEqual(inFlight);
    expect(s.clipdrop.stats.calls.removeBackground).toBeGreaterThanOrEqual(
      callsBefore.removeBackground,
    );
    process.stdout.write(
      `fleet: ${held.length} jobs of the killed worker claimed again ${takeoverMs} ms and complete ${completeMs} ms after the kill\n`,
    );
    // With the key saturated too: every survivor takes its part of the dead worker's jobs at
    // once (dealt by paid calls left), beyond its slots, and their calls go first in its paced
    // limiter (docs/fleet.md).
    expect(completeMs).toBeLessThan(25_000);
  }, 300_000);

  it('a SIGKILLed worker’s running jobs complete on the others within 25 s of the kill, at default settings', async () => {
    stack = await startStack({ clipdrop: { rpm: 60, latencyMs: { removeBackground: 3_000 } } });
    const s = stack;
    const workers = [spawn(), spawn(), spawn()];
    await Promise.all(workers.map((w) => w.waitForLog((l) => l.message === 'worker.started')));
    const ids = Array.from({ length: 9 }, (_, i) => `kill-${i}`);
    const hashes = await seed(s, ids);
    await Promise.all(ids.map((id) => s.click(id)));
    const claimedBy = () => workers.map(runningJobs);
    await until(() => claimedBy().flat().length === ids.length, 30_000, 'all claimed');
    const doomed = workers.find((w) => runningJobs(w).length > 0) as WorkerProcess;
    const held = runningJobs(doomed);
    const inFlight = s.clipdrop.stats.inFlight;
    doomed.kill('SIGKILL');
    const killedAt = Date.now();
    await doomed.exited;

    const docs = await Promise.all(
      ids.map((id) => waitForDoc(s.db, `characters/${id}`, isTerminal, 60_000)),
    );
    const heldDocs = await Promise.all(held.map((id) => s.db.doc(`characters/${id}`).get()));
    const lastMs = Math.max(
      ...heldDocs.map((d) => (d.updateTime?.toMillis() ?? Number.POSITIVE_INFINITY) - killedAt),
    );
    expect(docs.map(statusOf)).toEqual(ids.map(() => 'complete'));
    for (const d of heldDocs) expect(jobOf(d.data()).attempts).toBe(2);
    expect(s.clipdrop.stats.responses['429'] ?? 0).toBe(0);
    const paid = [...hashes.values()].reduce(
      (n, h) => n + (s.clipdrop.stats.callsByImage.get(h)?.removeBackground ?? 0),
      0,
    );
    expect(paid - ids.length).toBeLessThanOrEqual(inFlight);
    process.stdout.write(
      `fleet: ${held.length} jobs of the killed worker complete ${lastMs} ms after the kill\n`,
    );
    expect(lastMs).toBeLessThan(25_000);
  }, 90_000);

  it('a worker SIGKILLed and restarted at once: every job complete within 25 s of the restart', async () => {
    stack = await startStack({ clipdrop: { latencyMs: { removeBackground: 4_000 } } });
    const s = stack;
    const ids = ['restart-0', 'restart-1', 'restart-2', 'restart-3'];
    await seed(s, ids);
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
    expect(ms).toBeLessThan(25_000);
  }, 90_000);

  it('a worker cut off from Firestore past the presence timeout writes and pays nothing for the jobs taken over', async () => {
    stack = await startStack({ clipdrop: { latencyMs: { removeBackground: 60_000 } } });
    const s = stack;
    const [host = '', port = '0'] = s.emulatorHost.split(':');
    const proxy = await startTcpProxy({ host, port: Number(port) });
    proxies.push(proxy);
    const hashes = await seed(s, ['cut-0']);
    const hash = hashes.get('cut-0') ?? '';

    const cut = spawn({ FIRESTORE_EMULATOR_HOST: proxy.host, PRESENCE_TIMEOUT_MS: '6000' });
    await cut.waitForLog((l) => l.message === 'worker.started');
    await s.click('cut-0');
    // Its remove-background call is in flight (the stand-in holds it) when the network goes.
    await until(() => s.clipdrop.stats.inFlight > 0, 30_000, 'the call in flight');
    const claimed = await s.db.doc('characters/cut-0').get();
    const firstJob = jobOf(claimed.data());
    await proxy.cut();
    s.clipdrop.setLatency({ removeBackground: 0 });

    const heir = spawn({ PRESENCE_TIMEOUT_MS: '6000' });
    const data = await waitForDoc(s.db, 'characters/cut-0', isTerminal, 60_000);
    expect(statusOf(data)).toBe('complete');
    const taken = jobOf(data);
    expect(taken.jobId).toBe(firstJob.jobId);
    expect(taken.attempts).toBe(2);
    await cut.waitForLog((l) => l.message === 'job.presence_lapsed' && l.characterId === 'cut-0');
    const paidBefore = s.clipdrop.stats.callsByImage.get(hash)?.removeBackground ?? 0;
    const callsBefore = { ...s.clipdrop.stats.calls };
    const after = await s.db.doc('characters/cut-0').get();

    await proxy.restore();
    await cut.waitForLog((l) => l.message === 'presence.resumed', 60_000);
    // Absence cannot be awaited: give the returned worker a few beats (1.2 s each) to misbehave.
    await new Promise((r) => setTimeout(r, 4_000));
    const final = await s.db.doc('characters/cut-0').get();
    expect(final.updateTime?.toMillis()).toBe(after.updateTime?.toMillis());
    expect(s.clipdrop.stats.calls).toEqual(callsBefore);
    expect(s.clipdrop.stats.callsByImage.get(hash)?.removeBackground ?? 0).toBe(paidBefore);
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
