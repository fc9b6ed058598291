import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { characterPicture } from '../support/images.js';
import { BUCKET, startStack, type Stack } from '../support/stack.js';
import { statusOf, waitForDoc } from '../support/wait.js';
import { spawnWorker, type WorkerProcess } from '../support/worker-process.js';

const isTerminal = (d: FirebaseFirestore.DocumentData | undefined) =>
  ['complete', 'failed'].includes(statusOf(d) ?? '');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

type Visuals = Record<string, unknown> & {
  showcaseJob?: Record<string, unknown>;
  showcaseProcessingError?: Record<string, unknown>;
};
const visualsOf = (d: FirebaseFirestore.DocumentData | undefined) => (d?.visuals ?? {}) as Visuals;

describe('job ownership across worker processes', () => {
  let stack: Stack;
  const processes: WorkerProcess[] = [];
  const spawn = (env: Record<string, string> = {}) => {
    // The stand-in allows 100 000 requests a minute here; the fleet's quota is the key's.
    const p = spawnWorker({ ...stack.env, LOG_LEVEL: 'info', CLIPDROP_RPM: '100000', ...env });
    processes.push(p);
    return p;
  };

  // A fresh project and stand-ins per test: a worker picks up every waiting job it can see.
  beforeEach(async () => {
    stack = await startStack();
  });
  afterEach(async (ctx) => {
    for (const p of processes.splice(0)) {
      if (p.proc.exitCode === null && p.proc.signalCode === null) p.kill('SIGKILL');
      await p.exited;
      if (ctx.task.result?.state === 'fail') {
        process.stderr.write(p.lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
      }
    }
    await stack?.close();
  });

  async function seed(ids: string[]): Promise<Map<string, string>> {
    const hashes = new Map<string, string>();
    await Promise.all(
      ids.map(async (id, i) => {
        const picture = await characterPicture(24, 24, 'png', i + 1);
        stack.storage.putObject(BUCKET, `raw-uploads/user-1/${id}.png`, picture);
        hashes.set(id, sha256(picture));
      }),
    );
    return hashes;
  }

  it('three workers, 100 clicks at once: all complete, one paid call per stage per job', async () => {
    const workers = [spawn(), spawn(), spawn()];
    await Promise.all(workers.map((w) => w.waitForLog((l) => l.message === 'worker.started')));
    const ids = Array.from({ length: 100 }, (_, i) => `fleet-${i}`);
    const hashes = await seed(ids);

    await Promise.all(ids.map((id) => stack.click(id)));
    const docs = await Promise.all(
      ids.map((id) => waitForDoc(stack.db, `characters/${id}`, isTerminal, 90_000)),
    );

    expect(docs.map(statusOf)).toEqual(ids.map(() => 'complete'));
    for (const id of ids) {
      expect(stack.clipdrop.stats.callsByImage.get(hashes.get(id) ?? '')).toEqual({
        removeBackground: 1,
        upscale: 0,
      });
    }
    // Upscale inputs are the cut-outs (other bytes): count them in total.
    expect(stack.clipdrop.stats.calls).toEqual({ removeBackground: 100, upscale: 100 });
    // The work was shared: more than one worker claimed jobs.
    const claimers = workers.filter((w) => w.lines.some((l) => l.message === 'job.claimed'));
    expect(claimers.length).toBeGreaterThan(1);
  }, 120_000);

  it('a SIGKILLed worker’s jobs are taken over after the lease expires', async () => {
    stack.clipdrop.setLatency({ removeBackground: 1500, upscale: 0 });
    const env = { LEASE_MS: '3000' };
    const doomed = spawn(env);
    const ids = ['crash-0', 'crash-1', 'crash-2'];
    await seed(ids);
    await doomed.waitForLog((l) => l.message === 'worker.started');
    await Promise.all(ids.map((id) => stack.click(id)));
    await Promise.all(
      ids.map((id) =>
        doomed.waitForLog((l) => l.message === 'job.claimed' && l.characterId === id),
      ),
    );
    doomed.kill('SIGKILL');
    await doomed.exited;

    const heir = spawn(env);
    const docs = await Promise.all(
      ids.map((id) => waitForDoc(stack.db, `characters/${id}`, isTerminal, 30_000)),
    );
    expect(docs.map(statusOf)).toEqual(ids.map(() => 'complete'));
    for (const d of docs) expect(visualsOf(d).showcaseJob?.attempts).toBe(2);
    expect(heir.lines.filter((l) => l.message === 'job.claimed')).toHaveLength(3);
  }, 60_000);

  it('a job that keeps killing its worker ends ATTEMPTS_EXHAUSTED after the cap', async () => {
    stack.clipdrop.setLatency({ removeBackground: 60_000, upscale: 0 });
    const env = { LEASE_MS: '2000', JOB_MAX_ATTEMPTS: '2' };
    await seed(['poison']);
    await stack.click('poison');
    for (let attempt = 1; attempt <= 2; attempt += 1) {
      const victim = spawn(env);
      await victim.waitForLog((l) => l.message === 'job.claimed' && l.characterId === 'poison');
      victim.kill('SIGKILL');
      await victim.exited;
    }
    spawn(env);
    const data = await waitForDoc(stack.db, 'characters/poison', isTerminal, 30_000);
    expect(statusOf(data)).toBe('failed');
    expect(visualsOf(data).showcaseProcessingError?.code).toBe('ATTEMPTS_EXHAUSTED');
  }, 60_000);

  it('SIGTERM: exits 0 in time, finished jobs complete, the rest are released to a fresh worker', async () => {
    // Long leases: only an explicit release lets the next worker start at once.
    const env = { LEASE_MS: '120000', SHUTDOWN_TIMEOUT_MS: '1500', WORKER_CONCURRENCY: '4' };
    const ids = ['term-fast', 'term-slow-1', 'term-slow-2'];
    await seed(ids);
    const first = spawn(env);
    await first.waitForLog((l) => l.message === 'worker.started');
    await stack.click('term-fast');
    await waitForDoc(stack.db, 'characters/term-fast', isTerminal);

    stack.clipdrop.setLatency({ removeBackground: 0, upscale: 10_000 });
    await stack.click('term-slow-1');
    await stack.click('term-slow-2');
    await Promise.all(
      ['term-slow-1', 'term-slow-2'].map((id) =>
        waitForDoc(stack.db, `characters/${id}`, (d) => statusOf(d) === 'upscaling'),
      ),
    );
    const signalled = Date.now();
    first.kill('SIGTERM');
    const exit = await first.exited;
    expect(exit.code).toBe(0);
    // Bounded by the drain deadline, with room for a loaded machine; never the full 30 s.
    expect(Date.now() - signalled).toBeLessThan(15_000);
    const stopped = first.lines.find((l) => l.message === 'worker.stopped');
    expect(stopped?.released).toBe(2);
    for (const id of ['term-slow-1', 'term-slow-2']) {
      const snap = await stack.db.doc(`characters/${id}`).get();
      expect(visualsOf(snap.data()).showcaseJob?.state).toBe('released');
    }

    stack.clipdrop.setLatency({ removeBackground: 0, upscale: 0 });
    spawn(env);
    const docs = await Promise.all(
      ['term-slow-1', 'term-slow-2'].map((id) =>
        waitForDoc(stack.db, `characters/${id}`, isTerminal, 20_000),
      ),
    );
    expect(docs.map(statusOf)).toEqual(['complete', 'complete']);
    // Released, not crashed: the attempt is not counted against the job.
    for (const d of docs) expect(visualsOf(d).showcaseJob?.attempts).toBe(1);
    // The owner's day has every credit: a released job's cut-out was paid by the first worker.
    for (const d of docs) expect(visualsOf(d).showcaseJob?.credits).toBe(2);
    const days = await stack.db.collection('showcaseUsage').where('userId', '==', 'user-1').get();
    // The user's day of paid jobs (beside it, the request limit's count: requests-{day}-{uid}).
    const paid = days.docs.filter((d) => !d.id.startsWith('requests-'));
    expect(paid.map((d) => d.data())).toEqual([expect.objectContaining({ jobs: 3, credits: 6 })]);
  }, 60_000);

  it('a job released at shutdown is taken at once by a worker already running (its listener sees the release)', async () => {
    // Long leases and sweeps: only the listener on released jobs can hand them over in time.
    const env = { LEASE_MS: '120000', SHUTDOWN_TIMEOUT_MS: '1000', WORKER_CONCURRENCY: '4' };
    const ids = ['handoff-1', 'handoff-2'];
    await seed(ids);
    const leaving = spawn(env);
    await leaving.waitForLog((l) => l.message === 'worker.started');
    stack.clipdrop.setLatency({ removeBackground: 0, upscale: 10_000 });
    await Promise.all(ids.map((id) => stack.click(id)));
    await Promise.all(
      ids.map((id) => waitForDoc(stack.db, `characters/${id}`, (d) => statusOf(d) === 'upscaling')),
    );
    const staying = spawn(env);
    await staying.waitForLog((l) => l.message === 'worker.started');
    stack.clipdrop.setLatency({ removeBackground: 0, upscale: 0 });
    leaving.kill('SIGTERM');
    expect((await leaving.exited).code).toBe(0);
    const releasedAt = Date.now();
    const docs = await Promise.all(
      ids.map((id) => waitForDoc(stack.db, `characters/${id}`, isTerminal, 15_000)),
    );
    expect(docs.map(statusOf)).toEqual(['complete', 'complete']);
    expect(Date.now() - releasedAt).toBeLessThan(15_000);
    const claims = staying.lines.filter(
      (l) => l.message === 'job.claimed' && ids.includes(l.characterId ?? ''),
    );
    expect(claims.map((l) => l.origin)).toEqual(['listener', 'listener']);
  }, 60_000);

  it('a click during a running job is coalesced into it', async () => {
    stack.clipdrop.setLatency({ removeBackground: 0, upscale: 1500 });
    const [hash] = (await seed(['coalesce'])).values();
    const worker = spawn();
    await worker.waitForLog((l) => l.message === 'worker.started');
    await stack.click('coalesce');
    const running = await waitForDoc(
      stack.db,
      'characters/coalesce',
      (d) => statusOf(d) === 'upscaling',
    );
    const jobId = visualsOf(running).showcaseJob?.jobId;

    await stack.click('coalesce'); // the app writes removing-background again, mid-job
    const data = await waitForDoc(stack.db, 'characters/coalesce', isTerminal, 20_000);

    expect(statusOf(data)).toBe('complete');
    expect(visualsOf(data).showcaseJob?.jobId).toBe(jobId);
    expect(stack.clipdrop.stats.callsByImage.get(hash ?? '')?.removeBackground).toBe(1);
    expect(worker.lines.filter((l) => l.message === 'job.claimed')).toHaveLength(1);
  }, 30_000);
});
