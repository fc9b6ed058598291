import { afterEach, describe, expect, it } from 'vitest';
import { characterPicture } from '../support/images.js';
import { BUCKET, startStack, type Stack } from '../support/stack.js';
import { statusOf, waitForDoc } from '../support/wait.js';

const isTerminal = (d: FirebaseFirestore.DocumentData | undefined) =>
  ['complete', 'failed'].includes(statusOf(d) ?? '');

describe('fair to every user', () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.close();
    stack = undefined;
  });

  /** Uploads a distinct picture for each id (no result-cache hits) under the owner's folder. */
  async function seed(s: Stack, userId: string, ids: string[], first = 1): Promise<void> {
    await Promise.all(
      ids.map(async (id, i) => {
        const picture = await characterPicture(24, 24, 'png', first + i);
        s.storage.putObject(BUCKET, `raw-uploads/${userId}/${id}.png`, picture);
      }),
    );
  }
  const clickAs = (s: Stack, userId: string, id: string) =>
    s.click(id, { userId, imageUrl: `gs://${BUCKET}/raw-uploads/${userId}/${id}.png` });

  it("a second user's clicks are not stuck behind the first user's 40 (60 rpm, 500 ms a call)", async () => {
    const s = (stack = await startStack({ clipdrop: { rpm: 60 } }));
    s.clipdrop.setLatency({ removeBackground: 500, upscale: 500 });
    const a = Array.from({ length: 40 }, (_, i) => `a-${i}`);
    const b = ['b-0', 'b-1', 'b-2'];
    await seed(s, 'user-a', a, 1);
    await seed(s, 'user-b', b, 100);
    await s.startWorker({ CLIPDROP_RPM: '60' });

    await Promise.all(a.map((id) => clickAs(s, 'user-a', id)));
    await new Promise((r) => setTimeout(r, 2_000));
    const clickedAt = Date.now();
    await Promise.all(b.map((id) => clickAs(s, 'user-b', id)));
    const waits = await Promise.all(
      b.map(async (id) => {
        const doc = await waitForDoc(s.db, `characters/${id}`, isTerminal, 60_000);
        return { status: statusOf(doc), ms: Date.now() - clickedAt };
      }),
    );
    process.stdout.write(`fairness: user B's jobs completed after ${JSON.stringify(waits)}\n`);
    expect(waits.map((w) => w.status)).toEqual(['complete', 'complete', 'complete']);
    // Arrival order would make each of them wait behind all 40 of user A's (about a minute).
    for (const w of waits) expect(w.ms).toBeLessThan(15_000);
  }, 120_000);
});
