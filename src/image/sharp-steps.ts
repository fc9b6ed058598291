import sharp, { type Metadata } from 'sharp';
import { JobError } from '../jobs/errors.js';
import type { Size } from '../jobs/ports.js';
import { CLIPDROP_LIMITS, MIN_SOURCE_SIDE, fitPixels, fitSide } from './limits.js';
import { PixelGate } from './pixel-gate.js';
import { SHARP_FORMATS, sniffImage } from './sniff.js';

/**
 * Pixels decoded at once by all jobs together: one 4096x4096 result (the largest ClipDrop
 * returns) at a time, or several smaller images (see pixel-gate.ts).
 */
export const DECODE_BUDGET_PIXELS = 4096 * 4096;
const decodes = new PixelGate(DECODE_BUDGET_PIXELS);

/** Formats ClipDrop takes as they are; anything else sharp reads is converted to PNG first. */
const CLIPDROP_FORMATS = new Set(['png', 'jpeg', 'webp']);

export interface Prepared {
  data: Buffer;
  size: Size;
}

export interface SharpLimits {
  /** Refuse to decode more pixels than this (decompression bombs). */
  maxInputPixels: number;
}

/**
 * Makes a source acceptable to ClipDrop's remove-background endpoint without spending a
 * credit to find out it is not: reads only the header first, applies EXIF orientation,
 * converts exotic formats and downscales what exceeds the pixel limit.
 */
export async function prepareSource(input: Buffer, limits: SharpLimits): Promise<Prepared> {
  if (input.length === 0) throw new JobError('SOURCE_NOT_IMAGE', { detail: 'empty file' });
  // The magic bytes decide, before any decoder sees the file: an HTML error page served as
  // image/png, an SVG or a PDF stops here.
  const sniffed = sniffImage(input);
  if (!sniffed) throw new JobError('SOURCE_NOT_IMAGE', { detail: 'unknown magic bytes' });
  const meta = await readHeader(input, limits);
  if (meta.format !== SHARP_FORMATS[sniffed]) {
    throw new JobError('SOURCE_NOT_IMAGE', {
      detail: `looks like ${sniffed}, reads as ${String(meta.format)}`,
    });
  }
  const oriented = orientedSize(meta);
  if (oriented.width < MIN_SOURCE_SIDE || oriented.height < MIN_SOURCE_SIDE) {
    throw new JobError('SOURCE_TOO_SMALL', {
      detail: `${oriented.width}x${oriented.height} px`,
    });
  }
  // The showcase is at most 4096 px on its long side whatever the source: a larger source is
  // shrunk here, for free, rather than uploaded whole (and then needs no paid upscale).
  const target = fitSide(
    fitPixels(oriented, CLIPDROP_LIMITS.removeBackgroundMaxPixels),
    CLIPDROP_LIMITS.maxTargetSide,
  );
  const needsWork =
    !CLIPDROP_FORMATS.has(meta.format ?? '') ||
    (meta.orientation ?? 1) !== 1 ||
    target.width !== oriented.width ||
    input.length > CLIPDROP_LIMITS.maxBytes;
  try {
    return await decodes.run(oriented.width * oriented.height, () =>
      decodeSource(input, limits, { needsWork, oriented, target }),
    );
  } catch (err) {
    throw new JobError('SOURCE_NOT_IMAGE', { detail: 'decode failed', cause: err });
  }
}

/** The decode behind prepareSource, inside the pixel gate. */
async function decodeSource(
  input: Buffer,
  limits: SharpLimits,
  plan: { needsWork: boolean; oriented: Size; target: Size },
): Promise<Prepared> {
  const { needsWork, oriented, target } = plan;
  if (!needsWork) {
    // A full (but tiny-output) decode: a truncated or corrupt file fails here, before it
    // can cost a ClipDrop call.
    await sharp(input, { limitInputPixels: limits.maxInputPixels, failOn: 'truncated' })
      .resize(32, 32, { fit: 'inside' })
      .raw()
      .toBuffer();
    return { data: input, size: oriented };
  }
  const { data, info } = await sharp(input, {
    limitInputPixels: limits.maxInputPixels,
    failOn: 'truncated',
  })
    .rotate()
    .resize(target.width, target.height, { fit: 'fill' })
    .png()
    .toBuffer({ resolveWithObject: true });
  return { data, size: { width: info.width, height: info.height } };
}

/**
 * Makes the cut-out ready for the upscale endpoint: within its pixel limit and **opaque**
 * (its alpha dropped, a high-quality JPEG). ClipDrop answers an opaque image with a JPEG,
 * which libvips decodes as a stream, where a transparent input comes back as a WebP that
 * libvips holds whole, twice (~134 MB at 4096x4096); finalizePng puts the cut-out's own alpha
 * back. Returns the (possibly smaller) size that was sent.
 */
export async function prepareForUpscale(input: Buffer, limits: SharpLimits): Promise<Prepared> {
  const meta = await readHeader(input, limits);
  const size = orientedSize(meta);
  const target = fitPixels(size, CLIPDROP_LIMITS.upscaleMaxPixels);
  const resize = target.width !== size.width || target.height !== size.height;
  if (!resize && !meta.hasAlpha && CLIPDROP_FORMATS.has(meta.format ?? '')) {
    return { data: input, size };
  }
  const data = await decodes.run(size.width * size.height, () => {
    const image = sharp(input, { limitInputPixels: limits.maxInputPixels, sequentialRead: true })
      .removeAlpha()
      // One pass (no optimised Huffman tables): the encoder streams instead of holding every
      // coefficient of the picture (~100 MB at 16 MP), for a file a few per cent larger.
      .jpeg({ quality: 95, chromaSubsampling: '4:4:4', optimiseCoding: false });
    return (resize ? image.resize(target.width, target.height, { fit: 'fill' }) : image).toBuffer();
  });
  return { data, size: target };
}

/**
 * zlib level 3: within 1 % of level 6's size on an upscaled cut-out (a textured subject on a flat
 * background) for a third less encode time (6.5 against 9.7 ms at 512x384, 61 against 95 ms at
 * 2048x1536). Adaptive row filters (`PNG_FILTERS=adaptive`) make the result 20-40 % smaller
 * (half, for a whole photo) for 1.6-2x the time; the mask, flat, gains nothing from them.
 */
const PNG = { compressionLevel: 3, adaptiveFiltering: false } as const;

/** The scaled alpha handed from one sharp pipeline to the next: fast, and small all the same. */
const ALPHA_PNG = { compressionLevel: 1, adaptiveFiltering: false } as const;

/** How the result PNG is encoded (config `image.pngFilters`). */
export interface PngSettings {
  adaptiveFiltering: boolean;
}

/**
 * The cut-out's alpha alone, as a one-channel PNG: a cut-out's mask is mostly 0 and 255 and
 * compresses to a few per cent of the cut-out (~0.3 MB against 11.7 MB at 4000x4000). The job
 * keeps this until finalizePng instead of the whole cut-out, made while the upscale call runs.
 */
export async function alphaMask(cutout: Buffer, limits: SharpLimits): Promise<Buffer> {
  const meta = await readHeader(cutout, limits);
  return decodes.run(meta.width * meta.height, () =>
    sharp(cutout, { limitInputPixels: limits.maxInputPixels, sequentialRead: true })
      .ensureAlpha()
      .extractChannel(3)
      .png(PNG)
      .toBuffer(),
  );
}

/**
 * The final PNG: whatever ClipDrop answered (JPEG or WebP), re-encoded as a real PNG with an
 * alpha channel and no metadata (sharp drops EXIF/ICC unless asked to keep them). With `mask`
 * (alphaMask of the cut-out), it is the alpha, scaled to the answer's size, in place of the
 * answer's own: the upscaler was sent an opaque picture (prepareForUpscale).
 */
export async function finalizePng(
  input: Buffer,
  limits: SharpLimits,
  mask?: Buffer,
  settings: PngSettings = { adaptiveFiltering: false },
): Promise<Prepared> {
  const png = { ...PNG, adaptiveFiltering: settings.adaptiveFiltering };
  try {
    const meta = await sharp(input, { limitInputPixels: false }).metadata();
    const { width = 0, height = 0 } = meta;
    const { data, info } = await decodes.run(width * height, async () => {
      const options = { limitInputPixels: limits.maxInputPixels, sequentialRead: true };
      if (!mask) {
        return sharp(input, options).ensureAlpha().png(png).toBuffer({ resolveWithObject: true });
      }
      // The alpha at the answer's size, as a one-channel PNG (a few KB to a few hundred: a
      // cut-out's mask is mostly 0 and 255) that the join decodes as it streams. As raw
      // pixels it was a whole frame, 16.8 MB at 4096x4096, beside the PNG being encoded: this
      // step's peak at 4096x4096 went from about 40 to 28 MB (docs/performance.md), same pixels.
      const alpha = await sharp(mask, options)
        .extractChannel(0)
        .resize(width, height, { fit: 'fill' })
        .png(ALPHA_PNG)
        .toBuffer();
      // sharp removes alpha after joining channels, so an answer that has one (a WebP) is
      // reduced to its colour first; a JPEG answer, the usual case, streams as it is.
      const colour = meta.hasAlpha
        ? await sharp(input, options).removeAlpha().raw().toBuffer({ resolveWithObject: true })
        : undefined;
      const image = colour
        ? sharp(colour.data, { raw: { width, height, channels: colour.info.channels } })
        : sharp(input, options);
      return image.joinChannel(alpha, options).png(png).toBuffer({ resolveWithObject: true });
    });
    return { data, size: { width: info.width, height: info.height } };
  } catch (err) {
    throw new JobError('CLIPDROP_BAD_RESPONSE', { detail: 'result decode failed', cause: err });
  }
}

/**
 * Header-only read: format and dimensions, without decoding a single pixel. A decompression
 * bomb (a few bytes declaring 100000x100000) is refused here as SOURCE_TOO_LARGE, before any
 * decode; every decode after this also carries `limitInputPixels`. (The limit is not given to
 * `metadata()` itself: sharp would refuse the header with an error indistinguishable from a
 * corrupt file, and the bomb would read as SOURCE_NOT_IMAGE.)
 */
export async function readHeader(input: Buffer, limits: SharpLimits): Promise<Metadata> {
  let meta: Metadata;
  try {
    meta = await sharp(input, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw new JobError('SOURCE_NOT_IMAGE', { detail: 'unreadable header', cause: err });
  }
  if (!meta.width || !meta.height || !meta.format) {
    throw new JobError('SOURCE_NOT_IMAGE', { detail: 'no dimensions' });
  }
  if (meta.width * meta.height > limits.maxInputPixels) {
    throw new JobError('SOURCE_TOO_LARGE', { detail: `${meta.width}x${meta.height} px` });
  }
  return meta;
}

function orientedSize(meta: Metadata): Size {
  const w = meta.width ?? 0;
  const h = meta.height ?? 0;
  // EXIF orientations 5-8 swap the axes.
  return (meta.orientation ?? 1) >= 5 ? { width: h, height: w } : { width: w, height: h };
}
