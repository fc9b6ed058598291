import { createHash } from 'node:crypto';
import { Timestamp } from 'firebase-admin/firestore';
import { afterEach, describe, expect, it } from 'vitest';
import { clickProcess } from '../../src/cli/click.js';
import { characterPicture } from '../support/images.js';
import { BUCKET, reclick, startStack, type Stack } from '../support/stack.js';
import { statusOf, waitForDoc } from '../support/wait.js';
import { endAll, spawnWorker, type WorkerProcess } from '../support/worker-process.js';

const isTerminal = (d: FirebaseFirestore.DocumentData | undefined) =>
  ['complete', 'failed'].includes(statusOf(d) ?? '');
const visualsOf = (d: FirebaseFirestore.DocumentData | undefined) =>
  (d?.visuals ?? {}) as {
    showcaseJob?: {
      jobId?: string;
      source?: { url: string; sha256?: string };
      requestedBy?: string;
      attempts?: number;
    };
    showcaseProcessingError?: { code?: string };
  };
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** The Storage stand-in's reads of one object's bytes. */
const readsOf = (s: Stack, object: string) =>
  s.storage.requests.filter(
    (r) =>
      r.method === 'GET' &&
      r.path.includes(`/o/${encodeURIComponent(object)}`) &&
      r.path.includes('alt=media'),
  ).length;

const requestsToday = async (s: Stack, userId = 'user-1') => {
  const day = new Date().toISOString().slice(0, 10);
  const data = (await s.db.doc(`showcaseUsage/requests-${day}-${userId}`).get()).data();
  return (data?.requests as number | undefined) ?? 0;
};

/** Two pictures of one owner: the one clicked, and the one the owner changes to. */
async function twoPictures(s: Stack, id: string) {
  const a = { object: `raw-uploads/user-1/${id}-a.png`, bytes: await characterPicture(40, 30) };
  const b = {
    object: `raw-uploads/user-1/${id}-b.png`,
    bytes: await characterPicture(40, 30, 'png', 9),
  };
  s.storage.putObject(BUCKET, a.object, a.bytes);
  s.storage.putObject(BUCKET, b.object, b.bytes);
  const url = (o: string) => `gs://${BUCKET}/${o}`;
  return { a: { ...a, url: url(a.object) }, b: { ...b, url: url(b.object) } };
}

describe('a job is bound to its picture (emulator)', () => {
  let stack: Stack | undefined;
  const processes: WorkerProcess[] = [];
  afterEach(async (ctx) => {
    await endAll(processes, ctx.task.result?.state === 'fail');
    await stack?.close();
    stack = undefined;
  });

  it('after an operator click, the owner changes imageUrl before the claim: the clicked picture is processed, then the new one as a counted request', async () => {
    const s = (stack = await startStack());
    const { a, b } = await twoPictures(s, 'op');
    const characters = s.db.collection('characters');
    await characters.doc('op').set({ meta: { userId: 'user-1' }, visuals: { imageUrl: a.url } });
    expect((await clickProcess(characters, 'op')).kind).toBe('clicked');
    // No worker yet: the owner's change lands before any claim.
    await characters.doc('op').update({ 'visuals.imageUrl': b.url });

    await s.startWorker();
    // The operator's job processes the clicked picture; the document asked for another
    // meanwhile, so a user request for it runs after (counted, unlike the operator's).
    const done = await waitForDoc(
      s.db,
      'characters/op',
      (d) => isTerminal(d) && visualsOf(d).showcaseJob?.source?.url === b.url,
      60_000,
    );
    expect(statusOf(done)).toBe('complete');
    // (The stand-in keys calls by the picture sent: the upscale gets the cut-out.)
    expect(s.clipdrop.stats.callsByImage.get(sha256(a.bytes))?.removeBackground).toBe(1);
    expect(s.clipdrop.stats.callsByImage.get(sha256(b.bytes))?.removeBackground).toBe(1);
    expect(readsOf(s, a.object)).toBe(1);
    expect(readsOf(s, b.object)).toBe(1);
    expect(visualsOf(done).showcaseJob?.requestedBy).toBe('user');
    expect(visualsOf(done).showcaseJob?.source).toEqual({ url: b.url, sha256: sha256(b.bytes) });
    expect(await requestsToday(s)).toBe(1);
  }, 90_000);

  it('a click with a new picture during a running job runs after it as a new counted request; one with the same picture is coalesced', async () => {
    const s = (stack = await startStack({ clipdrop: { latencyMs: { upscale: 1_500 } } }));
    await s.startWorker();
    const { a, b } = await twoPictures(s, 'swap');
    await s.click('swap', { imageUrl: a.url });
    const running = await waitForDoc(s.db, 'characters/swap', (d) => statusOf(d) === 'upscaling');
    const firstJob = visualsOf(running).showcaseJob?.jobId;
    // The same picture clicked again mid-job: coalesced into the running job.
    await reclick(s.db, 'swap');
    // The app clicks again with a new picture, while ClipDrop upscales the first.
    await s.db.doc('characters/swap').update({
      'visuals.imageUrl': b.url,
      'visuals.showcaseProcessingStatus': 'removing-background',
    });
    const done = await waitForDoc(
      s.db,
      'characters/swap',
      (d) => isTerminal(d) && visualsOf(d).showcaseJob?.source?.url === b.url,
      60_000,
    );
    expect(statusOf(done)).toBe('complete');
    expect(visualsOf(done).showcaseJob?.jobId).not.toBe(firstJob);
    // Each picture processed once, in turn: the first job was not given the new picture.
    // (The stand-in keys calls by the picture sent: the upscale gets the cut-out.)
    expect(s.clipdrop.stats.callsByImage.get(sha256(a.bytes))?.removeBackground).toBe(1);
    expect(s.clipdrop.stats.callsByImage.get(sha256(b.bytes))?.removeBackground).toBe(1);
    expect(s.clipdrop.stats.paid.map((p) => p.endpoint)).toHaveLength(4);
    // Two requests counted: the first click and the new picture's (the coalesced one not).
    expect(await requestsToday(s)).toBe(2);
  }, 90_000);

  it('a job recovered after a SIGKILL processes its recorded picture, not the one the owner changed to', async () => {
    const s = (stack = await startStack({ clipdrop: { latencyMs: { upscale: 60_000 } } }));
    const env = { ...s.env, LEASE_MS: '2000', LOG_LEVEL: 'info' };
    const { a, b } = await twoPictures(s, 'kill');
    const doomed = spawnWorker(env);
    processes.push(doomed);
    await doomed.waitForLog((l) => l.message === 'worker.started');
    await s.click('kill', { imageUrl: a.url });
    // `upscaling` is written after the source is read: with its hash.
    const running = await waitForDoc(
      s.db,
      'characters/kill',
      (d) => statusOf(d) === 'upscaling' && visualsOf(d).showcaseJob?.source?.sha256 !== undefined,
    );
    expect(visualsOf(running).showcaseJob?.source).toEqual({ url: a.url, sha256: sha256(a.bytes) });
    // The owner changes the picture (no click) while the job waits on ClipDrop; then the
    // worker dies.
    await s.db.doc('characters/kill').update({ 'visuals.imageUrl': b.url });
    doomed.kill('SIGKILL');
    await doomed.exited;

    s.clipdrop.setLatency({ upscale: 0 });
    await s.startWorker(env);
    const done = await waitForDoc(s.db, 'characters/kill', isTerminal, 60_000);
    expect(statusOf(done)).toBe('complete');
    expect(visualsOf(done).showcaseJob?.attempts).toBe(2);
    expect(visualsOf(done).showcaseJob?.source).toEqual({ url: a.url, sha256: sha256(a.bytes) });
    expect(readsOf(s, b.object)).toBe(0);
    expect(s.clipdrop.stats.callsByImage.get(sha256(b.bytes))).toBeUndefined();
    expect(await requestsToday(s)).toBe(1);
  }, 120_000);

  it('a released job resumes on its recorded picture, and fails SOURCE_CHANGED when those bytes changed', async () => {
    const s = (stack = await startStack());
    const { a, b } = await twoPictures(s, 'rel');
    const now = Timestamp.now();
    // Released mid-job (status `upscaling`: no click since), with their recorded source.
    const released = (id: string, imageUrl: string, recorded: string) => ({
      core: { name: id },
      meta: { userId: 'user-1' },
      visuals: {
        imageUrl,
        showcaseProcessingStatus: 'upscaling',
        showcaseJob: {
          jobId: `job-${id}`,
          state: 'released',
          owner: null,
          leaseExpiresAt: null,
          attempts: 1,
          requestedAt: now,
          claimedAt: now,
          requestedBy: 'operator',
          source: { url: a.url, sha256: recorded },
        },
      },
    });
    // The owner changed the picture since the job read it: not processed by this job.
    await s.db.doc('characters/kept').set(released('kept', b.url, sha256(a.bytes)));
    // The object at the recorded URL was overwritten since the job read it.
    await s.db
      .doc('characters/swapped')
      .set(released('swapped', a.url, sha256(Buffer.from('before'))));
    await s.startWorker();

    const kept = await waitForDoc(s.db, 'characters/kept', isTerminal, 60_000);
    const swapped = await waitForDoc(s.db, 'characters/swapped', isTerminal, 60_000);
    expect(visualsOf(swapped).showcaseProcessingError?.code, JSON.stringify(swapped)).toBe(
      'SOURCE_CHANGED',
    );
    expect(statusOf(kept)).toBe('complete');
    expect(visualsOf(kept).showcaseJob?.jobId).toBe('job-kept');
    // Only the recorded picture was read and paid for, once (the swapped job paid nothing).
    expect(readsOf(s, b.object)).toBe(0);
    expect(s.clipdrop.stats.callsByImage.get(sha256(a.bytes))?.removeBackground).toBe(1);
    expect(s.clipdrop.stats.callsByImage.get(sha256(b.bytes))).toBeUndefined();
  }, 90_000);
});
