import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { characterPicture } from '../support/images.js';
import { BUCKET, reclick, startStack, type RunningWorker, type Stack } from '../support/stack.js';
import { statusOf, waitForDoc } from '../support/wait.js';

const terminal = (d: FirebaseFirestore.DocumentData | undefined) =>
  statusOf(d) === 'complete' || statusOf(d) === 'failed';

describe('a click, end to end', () => {
  let stack: Stack;
  let worker: RunningWorker;
  let seeded = 0;

  beforeAll(async () => {
    stack = await startStack();
    worker = await stack.startWorker();
  });
  afterAll(async () => {
    await stack?.close();
  });

  async function seed(id: string, width = 64, height = 48): Promise<void> {
    stack.storage.putObject(
      BUCKET,
      `raw-uploads/user-1/${id}.png`,
      // Distinct bytes per character: identical pictures would be served from the result cache.
      await characterPicture(width, height, 'png', (seeded += 1)),
    );
  }

  async function expectShowcase(id: string, source: { width: number; height: number }) {
    const data = await waitForDoc(stack.db, `characters/${id}`, terminal);
    expect(statusOf(data), JSON.stringify(data?.visuals)).toBe('complete');
    const visuals = data?.visuals as Record<string, unknown>;
    expect(visuals.isShowcaseProcessed).toBe(true);

    const stored = stack.storage.objects.get(
      `${BUCKET}/showcase-images/user-1/${id}/showcase_${id}.png`,
    );
    expect(stored?.contentType).toBe('image/png');
    const response = await fetch(String(visuals.showcaseImageUrl));
    expect(response.status).toBe(200);
    const png = Buffer.from(await response.arrayBuffer());
    expect(png.equals(stored?.data ?? Buffer.alloc(0))).toBe(true);

    const meta = await sharp(png).metadata();
    expect(meta.format).toBe('png');
    expect(meta.hasAlpha).toBe(true);
    expect({ width: meta.width, height: meta.height }).toEqual({
      width: source.width * 2,
      height: source.height * 2,
    });
    // The corner was background: it must be transparent; the centre was the character.
    const { data: raw, info } = await sharp(png)
      .ensureAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    const alphaAt = (x: number, y: number) => raw[(y * info.width + x) * info.channels + 3];
    expect(alphaAt(0, 0)).toBe(0);
    expect(alphaAt(Math.floor(info.width / 2), Math.floor(info.height / 2))).toBe(255);
    return visuals;
  }

  it('turns a gs:// upload into a 2x transparent PNG at the contract path', async () => {
    await seed('gs-1');
    await stack.click('gs-1');
    const visuals = await expectShowcase('gs-1', { width: 64, height: 48 });
    expect(visuals.showcaseProcessingError).toBeUndefined();
    const job = visuals.showcaseJob as Record<string, unknown>;
    expect(job.state).toBe('complete');
    expect(job.attempts).toBe(1);
  });

  it('fetches an http(s) source from an allowed host', async () => {
    stack.images.set('/pics/http-1.jpg', await characterPicture(40, 30, 'jpeg'), 'image/jpeg');
    await stack.click('http-1', { imageUrl: stack.images.url('/pics/http-1.jpg') });
    await expectShowcase('http-1', { width: 40, height: 30 });
  });

  it('writes the stages in order and an observer never sees them go backwards', async () => {
    await seed('order-1');
    const seen: string[] = [];
    let unsubscribe = () => {};
    const settled = new Promise<void>((resolve) => {
      unsubscribe = stack.db.doc('characters/order-1').onSnapshot((s) => {
        const status = statusOf(s.data());
        if (status && status !== seen.at(-1)) seen.push(status);
        if (terminal(s.data())) resolve();
      });
    });
    // A little latency makes each stage visible to the observer.
    stack.clipdrop.setLatency({ removeBackground: 150, upscale: 150 });
    try {
      await stack.click('order-1');
      await settled;
    } finally {
      stack.clipdrop.setLatency({ removeBackground: 0, upscale: 0 });
      unsubscribe();
    }
    const order = ['removing-background', 'upscaling', 'finalizing', 'complete'];
    const ranks = seen.map((s) => order.indexOf(s));
    expect(ranks.every((r) => r >= 0)).toBe(true);
    expect(ranks).toEqual([...ranks].sort((a, b) => a - b));
    expect(seen).toContain('upscaling');
    expect(seen.at(-1)).toBe('complete');
    // And the worker itself wrote every stage, in order.
    const stages = worker.logs
      .map((l) => JSON.parse(l) as { message: string; characterId?: string; stage?: string })
      .filter((l) => l.message === 'job.stage' && l.characterId === 'order-1')
      .map((l) => l.stage);
    expect(stages).toEqual(['removing-background', 'upscaling', 'finalizing']);
  });

  it('retries a 503 from ClipDrop and completes', async () => {
    await seed('retry-1');
    const before = stack.clipdrop.stats.calls.removeBackground;
    stack.clipdrop.injectFaults({ kind: 'status', status: 503, endpoint: 'removeBackground' });
    await stack.click('retry-1');
    await expectShowcase('retry-1', { width: 64, height: 48 });
    expect(stack.clipdrop.stats.calls.removeBackground - before).toBe(2);
  });

  it('fails a 400 at once with a code, without retrying', async () => {
    await seed('reject-1');
    const before = stack.clipdrop.stats.calls.removeBackground;
    stack.clipdrop.injectFaults({ kind: 'status', status: 400, endpoint: 'removeBackground' });
    await stack.click('reject-1');
    const data = await waitForDoc(stack.db, 'characters/reject-1', terminal);
    expect(statusOf(data)).toBe('failed');
    const error = (data?.visuals as Record<string, unknown>).showcaseProcessingError as Record<
      string,
      unknown
    >;
    expect(error.code).toBe('CLIPDROP_REJECTED');
    expect(error.stage).toBe('removing-background');
    expect(typeof error.message).toBe('string');
    expect(error.at).toBeDefined();
    expect(stack.clipdrop.stats.calls.removeBackground - before).toBe(1);
  });

  it('fails a source that is not an image with SOURCE_NOT_IMAGE, paying nothing', async () => {
    stack.storage.putObject(
      BUCKET,
      'raw-uploads/user-1/text-1.png',
      Buffer.from('<html>hello</html>'),
      'image/png',
    );
    const before = { ...stack.clipdrop.stats.calls };
    await stack.click('text-1');
    const data = await waitForDoc(stack.db, 'characters/text-1', terminal);
    expect(statusOf(data)).toBe('failed');
    const error = (data?.visuals as Record<string, unknown>).showcaseProcessingError as Record<
      string,
      unknown
    >;
    expect(error.code).toBe('SOURCE_NOT_IMAGE');
    expect(stack.clipdrop.stats.calls).toEqual(before);
  });

  it('processes again when Process is clicked after complete', async () => {
    await seed('again-1');
    await stack.click('again-1');
    const first = await waitForDoc(stack.db, 'characters/again-1', terminal);
    const firstJob = (first?.visuals as Record<string, Record<string, unknown>>).showcaseJob;
    await reclick(stack.db, 'again-1');
    const second = await waitForDoc(
      stack.db,
      'characters/again-1',
      (d) =>
        statusOf(d) === 'complete' &&
        (d?.visuals as Record<string, Record<string, unknown>>).showcaseJob?.jobId !==
          firstJob?.jobId,
    );
    const secondVisuals = second?.visuals as Record<string, unknown>;
    expect(secondVisuals.showcaseImageUrl).not.toBe(
      (first?.visuals as Record<string, unknown>).showcaseImageUrl,
    );
  });
});
