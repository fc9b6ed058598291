import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { characterPicture } from '../support/images.js';
import { BUCKET, startStack, type Stack } from '../support/stack.js';
import { statusOf, until, waitForDoc } from '../support/wait.js';

describe('many clicks at once', () => {
  let stack: Stack;

  beforeAll(async () => {
    // Latency keeps jobs in flight long enough for the cap to matter.
    stack = await startStack({ clipdrop: { latencyMs: { removeBackground: 100, upscale: 100 } } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('completes 20 clicks with never more than WORKER_CONCURRENCY jobs in flight', async () => {
    const worker = await stack.startWorker({ WORKER_CONCURRENCY: '3' });
    const ids = Array.from({ length: 20 }, (_, i) => `many-${i}`);
    // Distinct pictures: identical ones would be served from the result cache.
    for (const [i, id] of ids.entries()) {
      const picture = await characterPicture(32, 32, 'png', i + 1);
      stack.storage.putObject(BUCKET, `raw-uploads/user-1/${id}.png`, picture);
    }

    await Promise.all(ids.map((id) => stack.click(id)));
    const results = await Promise.all(
      ids.map((id) =>
        waitForDoc(stack.db, `characters/${id}`, (d) =>
          ['complete', 'failed'].includes(statusOf(d) ?? ''),
        ),
      ),
    );

    expect(results.map(statusOf)).toEqual(ids.map(() => 'complete'));
    expect(stack.clipdrop.stats.maxInFlight).toBeLessThanOrEqual(3);
    // And the cap was actually reached: the jobs did run side by side.
    expect(stack.clipdrop.stats.maxInFlight).toBeGreaterThanOrEqual(2);
    expect(stack.clipdrop.stats.calls).toEqual({ removeBackground: 20, upscale: 20 });
    // The app can see `complete` a moment before the worker's write call returns. A request
    // seen twice ends once more as `skipped` (its claim finds the job done), possibly before
    // the last `complete`: wait for the completes themselves, not for 20 outcomes of any kind.
    const completes = () => worker.outcomes.filter((o) => o.kind === 'complete');
    await until(() => completes().length >= 20, 10_000, 'all outcomes');
    expect(completes()).toHaveLength(20);
  });
});
