import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUCKET, startStack, type Stack } from '../support/stack.js';
import { statusOf, waitForDoc } from '../support/wait.js';

/** A large picture the stand-in can cut out: a disc on white. */
async function bigPicture(side: number): Promise<Buffer> {
  const r = Math.floor(side / 3);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${side}" height="${side}">
    <rect width="100%" height="100%" fill="#ffffff"/>
    <circle cx="${side / 2}" cy="${side / 2}" r="${r}" fill="#2e86c1"/>
  </svg>`;
  return sharp(Buffer.from(svg)).jpeg({ quality: 90 }).toBuffer();
}

describe('a 16-megapixel source', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
    await stack.startWorker();
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('4000x4000 completes as a 4096x4096 PNG with alpha: transparent corner, opaque subject', async () => {
    const side = 4000;
    stack.storage.putObject(
      BUCKET,
      'raw-uploads/user-1/big.jpg',
      await bigPicture(side),
      'image/jpeg',
    );
    await stack.click('big', { imageUrl: `gs://${BUCKET}/raw-uploads/user-1/big.jpg` });
    const data = await waitForDoc(
      stack.db,
      'characters/big',
      (d) => statusOf(d) === 'complete' || statusOf(d) === 'failed',
      120_000,
    );
    expect(statusOf(data), JSON.stringify(data?.visuals)).toBe('complete');

    const stored = stack.storage.objects.get(
      `${BUCKET}/showcase-images/user-1/big/showcase_big.png`,
    );
    expect(stored?.contentType).toBe('image/png');
    const png = stored?.data ?? Buffer.alloc(0);
    const meta = await sharp(png).metadata();
    expect(meta.format).toBe('png');
    expect(meta.hasAlpha).toBe(true);
    // 2x, clamped to ClipDrop's 4096 px per side.
    expect({ width: meta.width, height: meta.height }).toEqual({ width: 4096, height: 4096 });
    // Alpha sampled on a small grid: the background (corner) transparent, the disc opaque.
    const alpha = await sharp(png).extractChannel(3).resize(64, 64).raw().toBuffer();
    expect(alpha[0]).toBe(0);
    expect(alpha[32 * 64 + 32]).toBe(255);
    // One paid call each (test/unit/opaque-upscale.test.ts: the upscaler gets an opaque JPEG).
    expect(stack.clipdrop.stats.calls).toEqual({ removeBackground: 1, upscale: 1 });
  }, 180_000);
});
