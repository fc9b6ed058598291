import { afterEach, describe, expect, it } from 'vitest';
import { dealtTo } from '../../src/jobs/deal.js';
import { characterPicture } from '../support/images.js';
import { BUCKET, startStack, type RunningWorker, type Stack } from '../support/stack.js';
import { statusOf, until, waitForDoc } from '../support/wait.js';

const isTerminal = (d: FirebaseFirestore.DocumentData | undefined) =>
  ['complete', 'failed'].includes(statusOf(d) ?? '');

/**
 * Two worker ids between which the clicks are dealt at least two each: one worker alone runs
 * an owner's jobs one after another (its own queue holds them back, no deferral); two that both
 * hold some compete for the owner's one slot, and the loser defers.
 */
function splittingIds(clicks: string[]): [string, string] {
  for (let n = 0; ; n++) {
    const ids: [string, string] = [`defer-a-${n}`, `defer-b-${n}`];
    const toFirst = clicks.filter((c) => dealtTo(c, ids) === ids[0]).length;
    if (toFirst >= 2 && clicks.length - toFirst >= 2) return ids;
  }
}

const sawFleetOf = (w: RunningWorker, size: number) =>
  w.logs.some((line) => {
    const l = JSON.parse(line) as { message?: string; workers?: number };
    return l.message === 'quota.share' && l.workers === size;
  });

describe('deferral costs nothing', () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.close();
    stack = undefined;
  });

  it('USER_MAX_ACTIVE=1, 5 clicks of one user: one source read per job, however often it was deferred', async () => {
    const s = (stack = await startStack());
    // Each job holds the user's one slot long enough for the others to be deferred again and again.
    s.clipdrop.setLatency({ removeBackground: 300, upscale: 300 });
    const ids = ['d-0', 'd-1', 'd-2', 'd-3', 'd-4'];
    const sourceOf = (id: string) => `raw-uploads/user-d/${id}.png`;
    await Promise.all(
      ids.map(async (id, i) =>
        // Distinct pictures: no result-cache hits, every job downloads and pays.
        s.storage.putObject(BUCKET, sourceOf(id), await characterPicture(24, 24, 'png', 40 + i)),
      ),
    );
    const env = { USER_MAX_ACTIVE: '1', USER_DEFERRED_RETRY_MS: '100', LOG_LEVEL: 'info' };
    const workers = await Promise.all(
      splittingIds(ids).map((id) => s.startWorker({ ...env, WORKER_ID: id })),
    );
    // Each sees the other before the clicks: they are dealt between the two, as computed.
    await until(() => workers.every((w) => sawFleetOf(w, 2)), 60_000, 'a fleet of two');

    await Promise.all(
      ids.map((id) =>
        s.click(id, { userId: 'user-d', imageUrl: `gs://${BUCKET}/${sourceOf(id)}` }),
      ),
    );
    const docs = await Promise.all(
      ids.map((id) => waitForDoc(s.db, `characters/${id}`, isTerminal, 60_000)),
    );
    expect(docs.map(statusOf)).toEqual(ids.map(() => 'complete'));

    // The limit held jobs back: the test did meet deferral.
    const deferred = workers.flatMap((w) => w.outcomes).filter((o) => o.kind === 'deferred');
    expect(deferred.length).toBeGreaterThan(0);
    // Each source was read once, by the attempt that had the slot: not by a deferred attempt,
    // nor by the other worker's request for a click whose slot the first had taken.
    const reads = (id: string) =>
      s.storage.requests.filter(
        (r) => r.method === 'GET' && r.path.includes(encodeURIComponent(sourceOf(id))),
      ).length;
    expect(Object.fromEntries(ids.map((id) => [id, reads(id)]))).toEqual(
      Object.fromEntries(ids.map((id) => [id, 1])),
    );
  }, 90_000);
});
