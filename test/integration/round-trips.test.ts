import { afterEach, describe, expect, it } from 'vitest';
import { characterPicture } from '../support/images.js';
import { BUCKET, startStack, type RunningWorker, type Stack } from '../support/stack.js';
import { statusOf, until, waitForDoc } from '../support/wait.js';
import type { JobOutcome } from '../../src/jobs/ports.js';

/** The budget: Google round trips one after another on a fresh job's path. */
const BUDGET = 6;

const isTerminal = (d: FirebaseFirestore.DocumentData | undefined) =>
  statusOf(d) === 'complete' || statusOf(d) === 'failed';

async function outcomeOf(worker: RunningWorker, id: string): Promise<JobOutcome> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const found = worker.outcomes.find((o) => o.characterId === id && o.kind !== 'skipped');
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no outcome for ${id}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('round trips of a fresh job', () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.close();
    stack = undefined;
  });

  it(`stays within ${BUDGET} sequential Google round trips, counted by the worker and seen by Storage`, async () => {
    stack = await startStack();
    const s = stack;
    const worker = await s.startWorker();
    s.storage.putObject(BUCKET, 'raw-uploads/user-1/fresh.png', await characterPicture(64, 48));
    // Wait for the listener's first snapshot, so the click arrives as a live change.
    await until(() => worker.app.health.listenerAttached, 10_000, 'listener attached');
    const before = s.storage.requests.length;
    await s.click('fresh');
    const data = await waitForDoc(s.db, 'characters/fresh', isTerminal);
    expect(statusOf(data)).toBe('complete');
    const outcome = await outcomeOf(worker, 'fresh');
    expect(outcome.kind).toBe('complete');

    // Storage, from the stand-in's own log: one ranged read of the source (no metadata
    // request), one result-cache look-up, two checkpoints, the PNG, the cache entry. The
    // bucket has the lifecycle rule (read once, off the job's path), so the checkpoints are
    // left to it: no DELETE.
    const storage = s.storage.requests.slice(before);
    expect(storage.filter((r) => r.method === 'DELETE')).toEqual([]);
    const onPath = storage.filter((r) => !/\/b\/[^/]+$|\/b\/[^/?]+\?/.test(r.path));
    expect(
      onPath.filter((r) => r.method === 'GET' && /\/o\/[^?]+\?alt=media/.test(r.path)),
    ).toHaveLength(2); // source + result-cache look-up (a 404)
    expect(onPath.filter((r) => r.method === 'POST')).toHaveLength(4);
    expect(onPath, JSON.stringify(onPath)).toHaveLength(6);
    expect(storage.some((r) => r.method === 'GET' && /\/o(\?|$)/.test(r.path))).toBe(false); // no list

    // The worker's own count: every Storage request above plus four Firestore writes (claim,
    // upscaling, finalizing, complete), each one RPC, no transaction, no read.
    expect(outcome.roundTrips?.total).toBe(onPath.length + 4);
    expect(outcome.roundTrips?.sequential).toBeGreaterThanOrEqual(4);
    expect(outcome.roundTrips?.sequential).toBeLessThanOrEqual(BUDGET);

    // The same numbers on the job.finished line a log drain indexes.
    const finished = worker.logs
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.message === 'job.finished' && l.characterId === 'fresh');
    expect(finished?.roundTrips).toBe(outcome.roundTrips?.sequential);
    expect(finished?.googleRequests).toBe(outcome.roundTrips?.total);

    // The request was counted (USER_DAILY_REQUEST_LIMIT, default 500) in the claim's own
    // commit: no write or read of its own above.
    const day = new Date().toISOString().slice(0, 10);
    const counted = await s.db.doc(`showcaseUsage/requests-${day}-user-1`).get();
    expect(counted.data()?.requests).toBe(1);
  });

  it('a document the app changes mid-job still completes: the owned write falls back to a read', async () => {
    stack = await startStack({ clipdrop: { latencyMs: { upscale: 400 } } });
    const s = stack;
    const worker = await s.startWorker();
    s.storage.putObject(
      BUCKET,
      'raw-uploads/user-1/edited.png',
      await characterPicture(64, 48, 'png', 7),
    );
    await s.click('edited');
    await waitForDoc(s.db, 'characters/edited', (d) => statusOf(d) === 'upscaling');
    // The app renames the character while ClipDrop upscales: the worker's next write finds a
    // newer version than its own last write.
    await s.db.doc('characters/edited').update({ 'core.name': 'Renamed' });
    const data = await waitForDoc(s.db, 'characters/edited', isTerminal);
    expect(statusOf(data)).toBe('complete');
    expect((data?.core as { name?: string }).name).toBe('Renamed');
    const job = (data?.visuals as { showcaseJob?: Record<string, unknown> }).showcaseJob;
    expect(job?.calls).toEqual({ removeBackground: 1, upscale: 1 });
    const outcome = await outcomeOf(worker, 'edited');
    // Two more than a fresh job: the update its precondition refused, and the read that
    // proved the job still ours before the write went through.
    expect(outcome.roundTrips?.total).toBe(12);
  });
});
