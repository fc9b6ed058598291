import type { DocumentData } from 'firebase-admin/firestore';
import { afterEach, describe, expect, it } from 'vitest';
import { runCliCaptured } from '../support/cli.js';
import { characterPicture } from '../support/images.js';
import { BUCKET, startStack, type Stack } from '../support/stack.js';
import { statusOf, waitForDoc } from '../support/wait.js';
import { endAll, spawnWorker, type WorkerProcess } from '../support/worker-process.js';

/**
 * The operator's intake pause (`showcase-worker intake pause|resume`, the console's buttons):
 * a flag in the fleet collection that a worker process follows, with the real emulator.
 */
describe("the operator's intake pause", () => {
  let stack: Stack | undefined;
  const processes: WorkerProcess[] = [];

  afterEach(async (ctx) => {
    await endAll(processes, ctx.task.result?.state === 'fail');
    await stack?.close();
    stack = undefined;
  });

  const jobOf = (d: DocumentData | undefined): unknown =>
    (d?.visuals as { showcaseJob?: unknown } | undefined)?.showcaseJob;

  it('a running job finishes, a new click stays unclaimed while paused (no job, no call); resume completes it', async () => {
    // A slow upscale keeps the first job running while the pause arrives.
    const s = (stack = await startStack({ clipdrop: { latencyMs: { upscale: 3_000 } } }));
    for (const [i, id] of ['pause-a', 'pause-b'].entries()) {
      const picture = await characterPicture(24 + i, 24, 'png', i + 1);
      s.storage.putObject(BUCKET, `raw-uploads/u-${id}/${id}.png`, picture);
    }
    const click = (id: string) =>
      s.click(id, { userId: `u-${id}`, imageUrl: `gs://${BUCKET}/raw-uploads/u-${id}/${id}.png` });
    const w = spawnWorker({ ...s.env, WORKER_ID: 'pause-w' });
    processes.push(w);

    await click('pause-a');
    await w.waitForLog((l) => l.message === 'job.claimed' && l.characterId === 'pause-a', 60_000);

    const paused = await runCliCaptured(['intake', 'pause', '--note', 'checking the key'], s.env);
    expect(paused.code).toBe(0);
    expect(paused.out).toMatch(/^intake: PAUSED by cli at .*\(checking the key\)/);
    const log = await w.waitForLog(
      (l) => l.message === 'intake.paused' && l.reason === 'operator',
      30_000,
    );
    expect(log.detail).toBe('paused by cli: checking the key');

    // The job claimed before the pause finishes under it.
    await waitForDoc(s.db, 'characters/pause-a', (d) => statusOf(d) === 'complete', 60_000);
    const callsBefore = s.clipdrop.stats.calls.removeBackground;

    await click('pause-b');
    // The worker has the click (its demand) and runs nothing: it waits before its claim.
    const idle = (d: DocumentData | undefined) =>
      d?.intakePausedBy === 'operator' && d.demand === 1 && d.running === 0;
    const first = await waitForDoc(s.db, 'showcaseWorkers/pause-w', idle, 30_000);
    // Two beats later it still has not claimed it.
    const beatOf = (d: DocumentData | undefined) =>
      (d?.beatAt as { toMillis(): number } | undefined)?.toMillis() ?? 0;
    const second = await waitForDoc(
      s.db,
      'showcaseWorkers/pause-w',
      (d) => idle(d) && beatOf(d) > beatOf(first),
      30_000,
    );
    await waitForDoc(
      s.db,
      'showcaseWorkers/pause-w',
      (d) => idle(d) && beatOf(d) > beatOf(second),
      30_000,
    );
    const waiting = (await s.db.doc('characters/pause-b').get()).data();
    expect([statusOf(waiting), jobOf(waiting)]).toEqual(['removing-background', undefined]);
    expect(s.clipdrop.stats.calls.removeBackground).toBe(callsBefore);
    expect(w.lines.filter((l) => l.message === 'job.claimed').map((l) => l.characterId)).toEqual([
      'pause-a',
    ]);
    const status = await runCliCaptured(['status'], s.env);
    expect(status.out).toContain('intake: PAUSED by cli');
    expect(status.out).toMatch(/pause-w .* intake paused \(operator\)/);

    const resumed = await runCliCaptured(['intake', 'resume'], s.env);
    expect(resumed.out).toMatch(/^intake: open \(resumed by cli at /);
    await waitForDoc(s.db, 'characters/pause-b', (d) => statusOf(d) === 'complete', 60_000);
    await w.waitForLog((l) => l.message === 'intake.resumed' && l.reason === 'operator');
    expect(w.lines.filter((l) => l.level === 'error')).toEqual([]);
  }, 180_000);
});
