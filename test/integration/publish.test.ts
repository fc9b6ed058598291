import type { DocumentData, Timestamp } from 'firebase-admin/firestore';
import { afterEach, describe, expect, it } from 'vitest';
import { characterPicture } from '../support/images.js';
import { BUCKET, startStack, type Stack } from '../support/stack.js';
import { statusOf, waitForDoc } from '../support/wait.js';
import { endAll, spawnWorker, type WorkerProcess } from '../support/worker-process.js';

/**
 * What the workers publish for the console (docs/console.md), with no write of their own:
 * the ClipDrop gate and the window's use in the heartbeat, stage times on the job's writes,
 * round trips and credits in its final write. A worker process, as on a dyno.
 */

const isTerminal = (d: DocumentData | undefined) =>
  ['complete', 'failed'].includes(statusOf(d) ?? '');
const STAGES = ['removing-background', 'upscaling', 'finalizing'] as const;

interface JobRec {
  claimedAt: Timestamp;
  finishedAt: Timestamp;
  credits: number;
  calls: { removeBackground: number; upscale: number };
  roundTrips: { sequential: number; total: number };
  stages: Partial<{ [K in (typeof STAGES)[number]]: { startedAt: Timestamp; ms: number } }>;
}
const recordOf = (d: DocumentData | undefined) =>
  (d?.visuals as { showcaseJob: JobRec }).showcaseJob;

describe('what a worker publishes for the console', () => {
  let stack: Stack | undefined;
  const processes: WorkerProcess[] = [];
  afterEach(async (ctx) => {
    await endAll(processes, ctx.task.result?.state === 'fail');
    await stack?.close();
    stack = undefined;
  });

  it('a 402 shows in the heartbeat (paused, why, since when) until it passes; the job records its stages, round trips and credits', async () => {
    stack = await startStack();
    const s = stack;
    const worker = spawnWorker({
      ...s.env,
      WORKER_ID: 'publish-w',
      LOG_LEVEL: 'info',
      // Beats every second while busy; the gate probes every second while paused.
      PRESENCE_TIMEOUT_MS: '5000',
      CLIPDROP_FIRST_PROBE_MS: '1000',
      CLIPDROP_PROBE_MS: '1000',
    });
    processes.push(worker);
    await worker.waitForLog((l) => l.message === 'worker.started');
    const beatPath = 'showcaseWorkers/publish-w';
    const open = await waitForDoc(s.db, beatPath, (d) => d !== undefined);
    expect(open).toMatchObject({ clipdropPaused: 0, clipdropWindowUsed: 0 });
    expect(open).not.toHaveProperty('clipdropPausedBy');

    // A fresh job: its record tells each stage, its round trips and its credits.
    s.storage.putObject(BUCKET, 'raw-uploads/user-1/pub-ok.png', await characterPicture(48, 32));
    await s.click('pub-ok');
    const done = await waitForDoc(s.db, 'characters/pub-ok', isTerminal);
    expect(statusOf(done)).toBe('complete');
    const job = recordOf(done);
    expect(job.credits).toBe(2);
    expect(job.calls).toEqual({ removeBackground: 1, upscale: 1 });
    // Stage by stage, in order, on Firestore's clock between the claim and the final write.
    const starts = STAGES.map((st) => job.stages[st]?.startedAt.toMillis() ?? NaN);
    expect(starts).toEqual([...starts].sort((a, b) => a - b));
    expect(starts[0]).toBeGreaterThanOrEqual(job.claimedAt.toMillis() - 1);
    expect(starts[2]).toBeLessThanOrEqual(job.finishedAt.toMillis() + 1);
    for (const st of STAGES) expect(job.stages[st]?.ms).toBeGreaterThanOrEqual(0);
    // The whole job took at least its stages (durations on the worker's monotonic clock).
    const took = job.finishedAt.toMillis() - job.claimedAt.toMillis();
    expect(STAGES.reduce((n, st) => n + (job.stages[st]?.ms ?? 0), 0)).toBeLessThanOrEqual(
      took + 50,
    );
    // The same round trips as the worker's own job.finished line (round-trips.test.ts: a fresh
    // job makes 10 Google requests, at most 6 one after another).
    const finished = await worker.waitForLog(
      (l) => l.message === 'job.finished' && l.characterId === 'pub-ok',
    );
    expect(job.roundTrips).toEqual({
      sequential: finished.roundTrips,
      total: finished.googleRequests,
    });
    expect(job.roundTrips.total).toBe(10);

    // ClipDrop answers 402 to every call (and probe) until the faults run out: the gate holds.
    s.clipdrop.injectFaults(
      ...Array.from({ length: 60 }, () => ({ kind: 'status' as const, status: 402 })),
    );
    s.storage.putObject(BUCKET, 'raw-uploads/user-1/pub-402.png', await characterPicture(40, 40));
    await s.click('pub-402');
    const paused = await waitForDoc(s.db, beatPath, (d) => d?.clipdropPaused === 1);
    expect(paused?.clipdropPausedBy).toBe('no-credits');
    const beat = await s.db.doc(beatPath).get();
    const claimed = await waitForDoc(s.db, 'characters/pub-402', (d) => !!recordOf(d)?.claimedAt);
    // Since when: on Firestore's clock, after the job's claim and before the beat that told it.
    const since = paused?.clipdropPausedSince as number;
    expect(since).toBeGreaterThanOrEqual(recordOf(claimed).claimedAt.toMillis() - 1);
    expect(since).toBeLessThanOrEqual(beat.updateTime!.toMillis());
    expect(s.clipdrop.stats.responses['402']).toBeGreaterThan(0);

    // Credits are back: the next probe goes through, the job completes, the gate opens.
    // (Read and cleared at once: no call can come between.)
    const refused = s.clipdrop.stats.responses['402'] ?? 0;
    s.clipdrop.reset();
    const after = await waitForDoc(s.db, 'characters/pub-402', isTerminal);
    expect(statusOf(after)).toBe('complete');
    expect(recordOf(after).credits).toBe(2);
    // Its first stage waited out the pause: it took longer than the pause had lasted when seen.
    expect(recordOf(after).stages['removing-background']?.ms).toBeGreaterThanOrEqual(
      beat.updateTime!.toMillis() - since - 50,
    );
    const reopened = await waitForDoc(s.db, beatPath, (d) => d?.clipdropPaused === 0);
    expect(reopened).not.toHaveProperty('clipdropPausedSince');
    // Within the minute every call of the test is still in the worker's window: the 402s and
    // the four paid calls, as the key's window counts them (a beat after the last call).
    const expected = 4 + refused;
    const used = await waitForDoc(s.db, beatPath, (d) => d?.clipdropWindowUsed === expected);
    expect(used?.clipdropWindowUsed).toBe(expected);
  }, 120_000);
});
