import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { characterPicture } from '../support/images.js';
import { BUCKET, reclick, startStack, type Stack } from '../support/stack.js';
import { statusOf, until, waitForDoc } from '../support/wait.js';
import { spawnWorker, type WorkerProcess } from '../support/worker-process.js';

const isTerminal = (d: FirebaseFirestore.DocumentData | undefined) =>
  ['complete', 'failed'].includes(statusOf(d) ?? '');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
type Visuals = Record<string, unknown> & {
  showcaseJob?: Record<string, unknown> & { calls?: Record<string, number>; credits?: number };
  showcaseProcessingError?: Record<string, unknown>;
};
const visualsOf = (d: FirebaseFirestore.DocumentData | undefined) => (d?.visuals ?? {}) as Visuals;
const messages = (logs: string[], message: string) =>
  logs.map((l) => JSON.parse(l) as { message: string }).filter((l) => l.message === message);

describe('paying ClipDrop once, and using its whole quota', () => {
  let stack: Stack | undefined;
  const processes: WorkerProcess[] = [];
  afterEach(async () => {
    for (const p of processes.splice(0)) {
      if (p.proc.exitCode === null && p.proc.signalCode === null) p.kill('SIGKILL');
      await p.exited;
    }
    await stack?.close();
    stack = undefined;
  });

  async function seed(s: Stack, ids: string[], size = 24): Promise<Map<string, Buffer>> {
    const pictures = new Map<string, Buffer>();
    await Promise.all(
      ids.map(async (id, i) => {
        const picture = await characterPicture(size, size, 'png', i + 1);
        s.storage.putObject(BUCKET, `raw-uploads/user-1/${id}.png`, picture);
        pictures.set(id, picture);
      }),
    );
    return pictures;
  }

  it('100 jobs against the real 60 requests/minute limit: no 429, all complete', async () => {
    stack = await startStack({ clipdrop: { rpm: 60 } });
    const s = stack;
    await s.startWorker({ CLIPDROP_RPM: '60' });
    const ids = Array.from({ length: 100 }, (_, i) => `quota-${i}`);
    await seed(s, ids);
    await Promise.all(ids.map((id) => s.click(id)));
    const docs = await Promise.all(
      ids.map((id) => waitForDoc(s.db, `characters/${id}`, isTerminal, 280_000)),
    );
    expect(docs.map(statusOf)).toEqual(ids.map(() => 'complete'));
    expect(s.clipdrop.stats.responses['429'] ?? 0).toBe(0);
    expect(s.clipdrop.stats.calls).toEqual({ removeBackground: 100, upscale: 100 });
  }, 300_000);

  it('a 402 window pauses every paid call once, and all jobs complete when credits return', async () => {
    // Enough credits for one job and a half: the next calls meet a 402.
    stack = await startStack({ clipdrop: { credits: 3 } });
    const s = stack;
    const worker = await s.startWorker({ CLIPDROP_PROBE_MS: '300', WORKER_CONCURRENCY: '2' });
    const ids = ['broke-0', 'broke-1', 'broke-2', 'broke-3'];
    await seed(s, ids);
    await Promise.all(ids.map((id) => s.click(id)));

    // Wait for the pause, then refill the account.
    await new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (messages(worker.logs, 'clipdrop.paused').length > 0) {
          clearInterval(check);
          resolve();
        }
      }, 20);
    });
    expect(s.clipdrop.stats.responses['402']).toBeGreaterThan(0);
    s.clipdrop.setCredits(1_000);

    const docs = await Promise.all(
      ids.map((id) => waitForDoc(s.db, `characters/${id}`, isTerminal, 30_000)),
    );
    expect(docs.map(statusOf)).toEqual(ids.map(() => 'complete'));
    expect(messages(worker.logs, 'clipdrop.paused')).toHaveLength(1);
    expect(messages(worker.logs, 'clipdrop.resumed')).toHaveLength(1);
    expect(worker.outcomes.filter((o) => o.kind === 'failed')).toEqual([]);
  }, 60_000);

  it('a worker killed between the stages resumes from the cut-out: one remove-background call', async () => {
    stack = await startStack({ clipdrop: { latencyMs: { upscale: 60_000 } } });
    const s = stack;
    // A bucket without the lifecycle rule: the worker deletes the checkpoints itself.
    s.storage.lifecycles.delete(BUCKET);
    const env = { ...s.env, LEASE_MS: '2000', LOG_LEVEL: 'info' };
    const [picture] = (await seed(s, ['resume'])).values();
    const doomed = spawnWorker(env);
    processes.push(doomed);
    await doomed.waitForLog((l) => l.message === 'worker.started');
    await s.click('resume');
    await waitForDoc(s.db, 'characters/resume', (d) => statusOf(d) === 'upscaling');
    // The cut-out checkpoint is written before the upscale call is made.
    await doomed.waitForLog(
      (l) => l.message === 'clipdrop.call' || l.message === 'job.stage',
      10_000,
    );
    await new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if ([...s.storage.objects.keys()].some((k) => k.includes('showcase-work/resume/'))) {
          clearInterval(check);
          resolve();
        }
      }, 20);
    });
    doomed.kill('SIGKILL');
    await doomed.exited;

    s.clipdrop.setLatency({ upscale: 0 });
    const heir = spawnWorker(env);
    processes.push(heir);
    const data = await waitForDoc(s.db, 'characters/resume', isTerminal, 30_000);
    expect(statusOf(data)).toBe('complete');
    expect(s.clipdrop.stats.callsByImage.get(sha256(picture ?? Buffer.alloc(0)))).toEqual({
      removeBackground: 1,
      upscale: 0,
    });
    const job = visualsOf(data).showcaseJob;
    expect(job?.attempts).toBe(2);
    // The bill covers both attempts: the crashed worker's remove-background was recorded.
    expect(job?.calls).toEqual({ removeBackground: 1, upscale: 1 });
    expect(heir.lines.some((l) => l.message === 'job.checkpoint_used')).toBe(true);
    // Without a lifecycle rule, checkpoints are deleted once the job completes (just after its
    // final write).
    const leftovers = () =>
      [...s.storage.objects.keys()].filter((k) => k.includes('showcase-work/'));
    await until(() => leftovers().length === 0, 10_000, 'checkpoints cleared');
  }, 60_000);

  it('the same unchanged picture clicked again completes with zero ClipDrop calls', async () => {
    stack = await startStack();
    const s = stack;
    await s.startWorker();
    await seed(s, ['same']);
    await s.click('same');
    const first = await waitForDoc(s.db, 'characters/same', isTerminal);
    expect(statusOf(first)).toBe('complete');
    const callsBefore = { ...s.clipdrop.stats.calls };
    const firstJobId = visualsOf(first).showcaseJob?.jobId;

    await reclick(s.db, 'same');
    const second = await waitForDoc(
      s.db,
      'characters/same',
      (d) => isTerminal(d) && visualsOf(d).showcaseJob?.jobId !== firstJobId,
    );
    expect(statusOf(second)).toBe('complete');
    expect(s.clipdrop.stats.calls).toEqual(callsBefore);
    expect(visualsOf(second).showcaseJob?.credits ?? 0).toBe(0);
    const png = Buffer.from(
      await (await fetch(String(visualsOf(second).showcaseImageUrl))).arrayBuffer(),
    );
    expect((await sharp(png).metadata()).width).toBe(48);
  });

  it('prepares what ClipDrop would refuse and refuses the rest before paying', async () => {
    stack = await startStack();
    const s = stack;
    await s.startWorker();
    // 40 megapixels: shrunk to 4096 on the long side before any upload.
    const huge = await sharp({
      create: { width: 7300, height: 5480, channels: 3, background: '#ffffff' },
    })
      .composite([
        {
          input: Buffer.from(
            '<svg xmlns="http://www.w3.org/2000/svg" width="2000" height="2000"><circle cx="1000" cy="1000" r="900" fill="#2e86de"/></svg>',
          ),
          left: 2650,
          top: 1740,
        },
      ])
      .png()
      .toBuffer();
    s.storage.putObject(BUCKET, 'raw-uploads/user-1/huge.png', huge);
    const gif = await sharp(await characterPicture(40, 30))
      .gif()
      .toBuffer();
    s.storage.putObject(BUCKET, 'raw-uploads/user-1/anim.png', gif, 'image/gif');
    const dot = await sharp({ create: { width: 1, height: 1, channels: 3, background: '#000' } })
      .png()
      .toBuffer();
    s.storage.putObject(BUCKET, 'raw-uploads/user-1/dot.png', dot);
    s.storage.putObject(BUCKET, 'raw-uploads/user-1/empty.png', Buffer.alloc(0));

    for (const id of ['huge', 'anim', 'dot', 'empty']) await s.click(id);
    const [hugeDoc, gifDoc, dotDoc, emptyDoc] = await Promise.all(
      ['huge', 'anim', 'dot', 'empty'].map((id) =>
        waitForDoc(s.db, `characters/${id}`, isTerminal, 60_000),
      ),
    );
    expect(statusOf(hugeDoc)).toBe('complete');
    const hugePng = Buffer.from(
      await (await fetch(String(visualsOf(hugeDoc).showcaseImageUrl))).arrayBuffer(),
    );
    const hugeMeta = await sharp(hugePng).metadata();
    expect(Math.max(hugeMeta.width ?? 0, hugeMeta.height ?? 0)).toBe(4096);
    expect(statusOf(gifDoc)).toBe('complete');
    expect(visualsOf(dotDoc).showcaseProcessingError?.code).toBe('SOURCE_TOO_SMALL');
    expect(visualsOf(emptyDoc).showcaseProcessingError?.code).toBe('SOURCE_NOT_IMAGE');
    // Two jobs completed: the huge one needed no upscale (already 4096), the GIF both calls.
    expect(s.clipdrop.stats.calls).toEqual({ removeBackground: 2, upscale: 1 });
  }, 90_000);
});
