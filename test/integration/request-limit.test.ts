import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { clickProcess } from '../../src/cli/click.js';
import { characterPicture } from '../support/images.js';
import { BUCKET, startStack, type Stack } from '../support/stack.js';
import { statusOf, waitForDoc } from '../support/wait.js';

const isTerminal = (d: FirebaseFirestore.DocumentData | undefined) =>
  ['complete', 'failed'].includes(statusOf(d) ?? '');
const errorOf = (d: FirebaseFirestore.DocumentData | undefined) =>
  (d?.visuals as { showcaseProcessingError?: { code?: string; message?: string } } | undefined)
    ?.showcaseProcessingError;
const jobOf = (d: FirebaseFirestore.DocumentData | undefined) =>
  (d?.visuals as { showcaseJob?: Record<string, unknown> } | undefined)?.showcaseJob;

/** The Storage stand-in's reads of one object's bytes. */
const readsOf = (s: Stack, object: string) =>
  s.storage.requests.filter(
    (r) =>
      r.method === 'GET' &&
      r.path.includes(`/o/${encodeURIComponent(object)}`) &&
      r.path.includes('alt=media'),
  ).length;

const requestsToday = async (s: Stack, userId: string) => {
  const day = new Date().toISOString().slice(0, 10);
  return (await s.db.doc(`showcaseUsage/requests-${day}-${userId}`).get()).data()?.requests as
    number | undefined;
};

describe('USER_DAILY_REQUEST_LIMIT (emulator)', () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.close();
    stack = undefined;
  });

  it('a user clicks 8 characters on one cached picture with the limit at 5: 5 complete, 3 refused before any download', async () => {
    const s = (stack = await startStack({ env: { USER_DAILY_REQUEST_LIMIT: '5' } }));
    const worker = await s.startWorker();
    const object = 'raw-uploads/user-1/shared.png';
    const picture = await characterPicture(32, 32, 'png', 3);
    s.storage.putObject(BUCKET, object, picture);
    const imageUrl = `gs://${BUCKET}/${object}`;
    const characters = s.db.collection('characters');

    // The picture's result is in the cache already: the operator processed it once (an
    // operator's click is not counted).
    await characters.doc('seed').set({ meta: { userId: 'user-1' }, visuals: { imageUrl } });
    expect((await clickProcess(characters, 'seed')).kind).toBe('clicked');
    expect(statusOf(await waitForDoc(s.db, 'characters/seed', isTerminal))).toBe('complete');
    expect(await requestsToday(s, 'user-1')).toBeUndefined();
    const paid = { ...s.clipdrop.stats.calls };
    const readsBefore = readsOf(s, object);

    const ids = Array.from({ length: 8 }, (_, i) => `char-${i}`);
    await Promise.all(ids.map((id) => s.click(id, { imageUrl })));
    const docs = await Promise.all(
      ids.map((id) => waitForDoc(s.db, `characters/${id}`, isTerminal, 60_000)),
    );

    const complete = docs.filter((d) => statusOf(d) === 'complete');
    const refused = ids.filter((_, i) => statusOf(docs[i]) === 'failed');
    expect(complete).toHaveLength(5);
    expect(refused).toHaveLength(3);
    for (const id of refused) {
      const data = docs[ids.indexOf(id)];
      expect(errorOf(data)?.code).toBe('USER_QUOTA_EXCEEDED');
      // The message says which limit (not the paid-jobs one).
      expect(errorOf(data)?.message).toContain('5 showcase requests per day');
      expect(jobOf(data)?.state).toBe('failed');
      expect(jobOf(data)?.owner).toBeNull();
    }
    // Refused before any download: one source read per completed job, none for the three.
    expect(readsOf(s, object) - readsBefore).toBe(5);
    // Cache hits all: nothing paid, and yet counted.
    expect(s.clipdrop.stats.calls).toEqual(paid);
    expect(await requestsToday(s, 'user-1')).toBe(5);
    const failed = worker.outcomes.filter((o) => o.kind === 'failed');
    expect(failed.map((o) => o.code)).toEqual([
      'USER_QUOTA_EXCEEDED',
      'USER_QUOTA_EXCEEDED',
      'USER_QUOTA_EXCEEDED',
    ]);
    expect(worker.logs.some((l) => l.includes('"limit":"requests"'))).toBe(true);

    // The operator's click is not counted: a refused character clicked by the operator runs.
    const again = refused[0]!;
    const firstJobId = jobOf(docs[ids.indexOf(again)])?.jobId;
    expect((await clickProcess(characters, again)).kind).toBe('clicked');
    const rerun = await waitForDoc(
      s.db,
      `characters/${again}`,
      (d) => isTerminal(d) && jobOf(d)?.jobId !== firstJobId,
    );
    expect(statusOf(rerun)).toBe('complete');
    expect(jobOf(rerun)?.requestedBy).toBe('operator');
    expect(jobOf(rerun)?.source).toEqual({
      url: imageUrl,
      sha256: createHash('sha256').update(picture).digest('hex'),
    });
    expect(await requestsToday(s, 'user-1')).toBe(5);
  }, 120_000);
});
