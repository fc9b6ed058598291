import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { alphaMask, finalizePng, prepareForUpscale } from '../../src/image/sharp-steps.js';

const limits = { maxInputPixels: 100_000_000 };

/** A cut-out as ClipDrop answers it: a red disc on a transparent background. */
function cutout(width = 64, height = 48): Promise<Buffer> {
  const disc = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><circle cx="${width / 2}" cy="${height / 2}" r="${Math.floor(height / 3)}" fill="red"/></svg>`;
  return sharp({
    create: { width, height, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } },
  })
    .composite([{ input: Buffer.from(disc) }])
    .png()
    .toBuffer();
}

async function alphaAt(png: Buffer, points: [number, number][]): Promise<number[]> {
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  return points.map(([x, y]) => data[(y * info.width + x) * info.channels + 3]!);
}

describe('the opaque upscale', () => {
  it('keeps the cut-out’s alpha aside as a one-channel PNG of the same size', async () => {
    // A photo-like cut-out: noisy colour (as a picture is), a disc of opaque pixels.
    const [w, h] = [640, 480];
    const rgba = Buffer.alloc(w * h * 4);
    for (let i = 0; i < w * h; i++) {
      const [x, y] = [i % w, Math.floor(i / w)];
      rgba.writeUInt32LE(((i * 2654435761) >>> 8) & 0xffffff, i * 4);
      rgba[i * 4 + 3] = (x - w / 2) ** 2 + (y - h / 2) ** 2 < (h / 3) ** 2 ? 255 : 0;
    }
    const cut = await sharp(rgba, { raw: { width: w, height: h, channels: 4 } })
      .png()
      .toBuffer();
    const mask = await alphaMask(cut, limits);
    const meta = await sharp(mask).metadata();
    expect({ format: meta.format, channels: meta.channels, w: meta.width, h: meta.height }).toEqual(
      { format: 'png', channels: 1, w: 640, h: 480 },
    );
    const { data } = await sharp(mask)
      .extractChannel(0)
      .raw()
      .toBuffer({ resolveWithObject: true });
    // Corner: background, transparent; centre: the disc, opaque.
    expect([data[0], data[240 * 640 + 320]]).toEqual([0, 255]);
    // What the job holds from stage 2 on, instead of the cut-out.
    expect(mask.length).toBeLessThan(cut.length / 4);
  });

  it('sends the upscaler an opaque JPEG of the cut-out, so it answers a JPEG', async () => {
    const prepared = await prepareForUpscale(await cutout(), limits);
    const meta = await sharp(prepared.data).metadata();
    expect({ format: meta.format, hasAlpha: meta.hasAlpha }).toEqual({
      format: 'jpeg',
      hasAlpha: false,
    });
    expect(prepared.size).toEqual({ width: 64, height: 48 });
  });

  it.each(['jpeg', 'webp'] as const)(
    'puts the cut-out’s alpha, scaled, back on a %s answer: a PNG with alpha',
    async (format) => {
      const cut = await cutout();
      const prepared = await prepareForUpscale(cut, limits);
      const answer = await sharp(prepared.data)
        .resize(128, 96)
        .ensureAlpha(1)
        .toFormat(format)
        .toBuffer();
      const final = await finalizePng(answer, limits, await alphaMask(cut, limits));
      const meta = await sharp(final.data).metadata();
      expect({ format: meta.format, hasAlpha: meta.hasAlpha, channels: meta.channels }).toEqual({
        format: 'png',
        hasAlpha: true,
        channels: 4,
      });
      expect(final.size).toEqual({ width: 128, height: 96 });
      // Corner: background, transparent; centre: the disc, opaque.
      expect(
        await alphaAt(final.data, [
          [0, 0],
          [64, 48],
        ]),
      ).toEqual([0, 255]);
    },
  );
});

describe('the alpha handed to the final PNG', () => {
  it('is the mask scaled to the answer’s size, value for value (a lossless hand-off)', async () => {
    // A radial ramp: most alpha values from 0 to 255 occur, so a lossy or rounded hand-off
    // (a JPEG, a quantised palette) would change some of them.
    const [w, h] = [96, 64];
    const rgba = Buffer.alloc(w * h * 4, 0x80);
    for (let i = 0; i < w * h; i++) {
      const [x, y] = [i % w, Math.floor(i / w)];
      const ramp = 1 - Math.hypot(x - w / 2, y - h / 2) / (h / 2);
      rgba[i * 4 + 3] = Math.max(0, Math.round(255 * ramp));
    }
    const cut = await sharp(rgba, { raw: { width: w, height: h, channels: 4 } })
      .png()
      .toBuffer();
    const mask = await alphaMask(cut, limits);
    const [W, H] = [w * 2 + 1, h * 2 + 1];
    const answer = await sharp({
      create: { width: W, height: H, channels: 3, background: '#3366aa' },
    })
      .jpeg()
      .toBuffer();
    const final = await finalizePng(answer, limits, mask);
    const alpha = await sharp(final.data).extractChannel(3).raw().toBuffer();
    const expected = await sharp(mask)
      .extractChannel(0)
      .resize(W, H, { fit: 'fill' })
      .raw()
      .toBuffer();
    expect(new Set(expected).size).toBeGreaterThan(100);
    expect(alpha.equals(expected)).toBe(true);
  });
});

describe('the result PNG’s row filters (PNG_FILTERS)', () => {
  it('adaptive: the same pixels in a smaller file for a picture with gradients', async () => {
    const [w, h] = [256, 192];
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}">
      <defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">
        <stop offset="0%" stop-color="#f5b041"/><stop offset="100%" stop-color="#1b2631"/>
      </linearGradient></defs><rect width="100%" height="100%" fill="url(#g)"/></svg>`;
    const answer = await sharp(Buffer.from(svg)).jpeg({ quality: 90 }).toBuffer();
    const mask = await alphaMask(await cutout(w, h), limits);
    const plain = await finalizePng(answer, limits, mask);
    const filtered = await finalizePng(answer, limits, mask, { adaptiveFiltering: true });
    const pixels = (png: Buffer) => sharp(png).raw().toBuffer();
    expect(await pixels(filtered.data)).toEqual(await pixels(plain.data));
    expect(filtered.data.length).toBeLessThan(plain.data.length * 0.9);
  });
});
