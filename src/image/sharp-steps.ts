import sharp from 'sharp';
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
 * Makes the image ready for the upscale endpoint: within its pixel limit, and in a format
 * it takes. Returns the (possibly smaller) size that was sent.
 */
export async function prepareForUpscale(input: Buffer, limits: SharpLimits): Promise<Prepared> {
  const meta = await readHeader(input, limits);
  const size = orientedSize(meta);
  const target = fitPixels(size, CLIPDROP_LIMITS.upscaleMaxPixels);
  if (target.width === size.width && CLIPDROP_FORMATS.has(meta.format ?? '')) {
    return { data: input, size };
  }
  const data = await decodes.run(size.width * size.height, () =>
    sharp(input, { limitInputPixels: limits.maxInputPixels })
      .resize(target.width, target.height, { fit: 'fill' })
      .png()
      .toBuffer(),
  );
  return { data, size: target };
}

/**
 * The final PNG: whatever ClipDrop answered (WebP or JPEG), re-encoded as a real PNG with an
 * alpha channel and no metadata (sharp drops EXIF/ICC unless asked to keep them).
 */
export async function finalizePng(input: Buffer, limits: SharpLimits): Promise<Prepared> {
  try {
    const { width = 0, height = 0 } = await sharp(input, { limitInputPixels: false }).metadata();
    const { data, info } = await decodes.run(width * height, () =>
      sharp(input, { limitInputPixels: limits.maxInputPixels })
        .ensureAlpha()
        .png({ compressionLevel: 6, adaptiveFiltering: false })
        .toBuffer({ resolveWithObject: true }),
    );
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
export async function readHeader(input: Buffer, limits: SharpLimits): Promise<sharp.Metadata> {
  let meta: sharp.Metadata;
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

function orientedSize(meta: sharp.Metadata): Size {
  const w = meta.width ?? 0;
  const h = meta.height ?? 0;
  // EXIF orientations 5-8 swap the axes.
  return (meta.orientation ?? 1) >= 5 ? { width: h, height: w } : { width: w, height: h };
}
