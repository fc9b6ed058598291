import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { prepareSource } from '../../src/image/sharp-steps.js';
import { sniffImage } from '../../src/image/sniff.js';
import { JobError } from '../../src/jobs/errors.js';
import { HTML_PAGE, SVG_IMAGE, pngBomb, truncated } from '../support/hostile-images.js';
import { characterPicture } from '../support/images.js';

const limits = { maxInputPixels: 100_000_000 };

async function refusal(input: Buffer): Promise<{ error: JobError; ms: number }> {
  const started = performance.now();
  const err = await prepareSource(input, limits).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(JobError);
  return { error: err as JobError, ms: performance.now() - started };
}

describe('sniffImage', () => {
  it('recognises the accepted formats by their magic bytes', async () => {
    const picture = await characterPicture(32, 32);
    const base = sharp(picture);
    expect(sniffImage(picture)).toBe('png');
    expect(sniffImage(await base.clone().jpeg().toBuffer())).toBe('jpeg');
    expect(sniffImage(await base.clone().webp().toBuffer())).toBe('webp');
    expect(sniffImage(await base.clone().gif().toBuffer())).toBe('gif');
    expect(sniffImage(await base.clone().avif().toBuffer())).toBe('avif');
    expect(sniffImage(await base.clone().tiff().toBuffer())).toBe('tiff');
    expect(sniffImage(Buffer.from('\0\0\0\x18ftypheic\0\0\0\0mif1heic'))).toBe('heif');
  });

  it('knows nothing else, whatever a server or a file name claims', () => {
    for (const other of [
      Buffer.alloc(0),
      HTML_PAGE,
      SVG_IMAGE,
      Buffer.from('%PDF-1.7\n'),
      Buffer.from([0x89, 0x50, 0x4e]),
      Buffer.from('\0\0\0\x18ftypmp42\0\0\0\0mp42isom'), // a video
      Buffer.from('RIFF\0\0\0\0WAVEfmt '),
    ]) {
      expect(sniffImage(other)).toBeUndefined();
    }
  });
});

describe('prepareSource refuses hostile files before they cost anything', () => {
  it('refuses a decompression bomb (100000x100000 in a few bytes) from its header, quickly', async () => {
    const bomb = pngBomb();
    expect(bomb.length).toBeLessThan(100);
    const { error, ms } = await refusal(bomb);
    expect(error.code).toBe('SOURCE_TOO_LARGE');
    expect(error.detail).toBe('100000x100000 px');
    expect(ms).toBeLessThan(200);
  });

  it('refuses anything over the pixel limit with the same code', async () => {
    const { error } = await refusal(pngBomb(20_000, 10_000)); // 200 MP > 100 MP
    expect(error.code).toBe('SOURCE_TOO_LARGE');
    const strict = await prepareSource(pngBomb(4_000, 3_000), { maxInputPixels: 1_000_000 }).then(
      () => undefined,
      (e: unknown) => e as JobError,
    );
    expect(strict?.code).toBe('SOURCE_TOO_LARGE');
  });

  it.each([
    ['an empty file', Buffer.alloc(0)],
    ['an HTML page', HTML_PAGE],
    ['an SVG (which could reference other resources)', SVG_IMAGE],
    ['a PDF', Buffer.from('%PDF-1.7\n%âãÏÓ\n1 0 obj\n')],
  ])('refuses %s as SOURCE_NOT_IMAGE', async (_what, input) => {
    expect((await refusal(input)).error.code).toBe('SOURCE_NOT_IMAGE');
  });

  it('refuses a truncated PNG and JPEG (a full decode, tiny output, catches them)', async () => {
    const png = await characterPicture(400, 300);
    expect((await refusal(truncated(png))).error.code).toBe('SOURCE_NOT_IMAGE');
    const jpeg = await characterPicture(400, 300, 'jpeg');
    expect((await refusal(truncated(jpeg, 0.7))).error.code).toBe('SOURCE_NOT_IMAGE');
  });

  it('refuses a PNG signature in front of something else', async () => {
    const fake = Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      HTML_PAGE,
    ]);
    expect((await refusal(fake)).error.code).toBe('SOURCE_NOT_IMAGE');
  });

  it('refuses a TIFF of more than five channels (each would cost what the pixel limit budgets)', async () => {
    // sharp's limitInputChannels (0.35): refused from the header, before any decode.
    const [width, height] = [64, 48];
    const band = Buffer.alloc(width * height, 99);
    const sixChannels = await sharp({ create: { width, height, channels: 3, background: '#0a0' } })
      .joinChannel([band, band, band], { raw: { width, height, channels: 1 } })
      .tiff({ compression: 'none' })
      .toBuffer();
    expect((await sharp(sixChannels, { limitInputChannels: false }).metadata()).channels).toBe(6);
    expect((await refusal(sixChannels)).error.code).toBe('SOURCE_NOT_IMAGE');
  });

  it('accepts the formats it knows; GIF, AVIF and TIFF are converted for ClipDrop', async () => {
    const picture = await characterPicture(64, 48);
    for (const format of ['png', 'jpeg', 'webp', 'gif', 'avif', 'tiff'] as const) {
      const input = await sharp(picture).toFormat(format).toBuffer();
      const prepared = await prepareSource(input, limits);
      expect(prepared.size).toEqual({ width: 64, height: 48 });
      const sent = sniffImage(prepared.data);
      expect(['png', 'jpeg', 'webp']).toContain(sent);
    }
  });
});
