import { afterEach, describe, expect, it } from 'vitest';
import { characterPicture } from '../support/images.js';
import { BUCKET, startStack, type Stack } from '../support/stack.js';
import { statusOf, waitForDoc } from '../support/wait.js';

const isTerminal = (d: FirebaseFirestore.DocumentData | undefined) =>
  ['complete', 'failed'].includes(statusOf(d) ?? '');
const creditsOf = (d: FirebaseFirestore.DocumentData | undefined) =>
  (d?.visuals as { showcaseJob?: { credits?: number } } | undefined)?.showcaseJob?.credits;

describe('RESULT_CACHE_SCOPE', () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.close();
    stack = undefined;
  });

  it.each([
    { scope: 'owner', paidTwice: true },
    { scope: 'global', paidTwice: false },
  ])(
    '$scope: the same bytes from two users, one after the other (paid twice: $paidTwice)',
    async ({ scope, paidTwice }) => {
      const s = (stack = await startStack());
      // One picture, uploaded by each user to their own folder: the same bytes.
      const picture = await characterPicture(24, 24, 'png', 7);
      for (const user of ['alice', 'bob']) {
        s.storage.putObject(BUCKET, `raw-uploads/${user}/p.png`, picture);
      }
      await s.startWorker({ RESULT_CACHE_SCOPE: scope });
      const process = async (user: string) => {
        await s.click(`char-${user}`, {
          userId: user,
          imageUrl: `gs://${BUCKET}/raw-uploads/${user}/p.png`,
        });
        return waitForDoc(s.db, `characters/char-${user}`, isTerminal, 60_000);
      };

      const alice = await process('alice');
      expect(statusOf(alice)).toBe('complete');
      expect(s.clipdrop.stats.calls).toEqual({ removeBackground: 1, upscale: 1 });
      const bob = await process('bob');
      expect(statusOf(bob)).toBe('complete');

      const calls = paidTwice ? 2 : 1;
      expect(s.clipdrop.stats.calls).toEqual({ removeBackground: calls, upscale: calls });
      expect(creditsOf(alice)).toBeGreaterThan(0);
      if (paidTwice) expect(creditsOf(bob)).toBe(creditsOf(alice));
      // A cache hit records no credits.
      else expect(creditsOf(bob) ?? 0).toBe(0);
      // Where the results are kept: per owner, or one for everyone.
      const cached = [...s.storage.objects.keys()]
        .filter((k) => k.startsWith(`${BUCKET}/showcase-cache/`))
        .map((k) => k.slice(`${BUCKET}/showcase-cache/`.length).replace(/\/.*|\.png$/, ''))
        .sort();
      expect(cached).toEqual(
        paidTwice ? ['alice', 'bob'] : [expect.stringMatching(/^[0-9a-f]{64}-/)],
      );
    },
    90_000,
  );
});
