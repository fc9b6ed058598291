import type { Size } from '../jobs/ports.js';

/** ClipDrop's documented input limits (CONTRACT §3). */
export const CLIPDROP_LIMITS = {
  removeBackgroundMaxPixels: 25_000_000,
  upscaleMaxPixels: 16_000_000,
  maxBytes: 30 * 1024 * 1024,
  maxTargetSide: 4096,
} as const;

/** Below this a picture has nothing to cut out, and ClipDrop would bill us for noise. */
export const MIN_SOURCE_SIDE = 8;

/**
 * Output size for upscaling by `factor`, keeping the aspect ratio and fitting the long side
 * within `maxSide` (ClipDrop answers at most 4096 per side).
 */
export function upscaleTarget(
  size: Size,
  factor: number,
  maxSide: number = CLIPDROP_LIMITS.maxTargetSide,
): Size {
  const scale = Math.min(factor, maxSide / Math.max(size.width, size.height));
  return {
    width: clampSide(Math.round(size.width * scale), maxSide),
    height: clampSide(Math.round(size.height * scale), maxSide),
  };
}

/** Largest size with the same aspect ratio and at most `maxPixels` pixels. */
export function fitPixels(size: Size, maxPixels: number): Size {
  const pixels = size.width * size.height;
  if (pixels <= maxPixels) return size;
  const scale = Math.sqrt(maxPixels / pixels);
  return {
    width: Math.max(1, Math.floor(size.width * scale)),
    height: Math.max(1, Math.floor(size.height * scale)),
  };
}

/** Largest size with the same aspect ratio and at most `maxSide` on the long side. */
export function fitSide(size: Size, maxSide: number): Size {
  const long = Math.max(size.width, size.height);
  if (long <= maxSide) return size;
  const scale = maxSide / long;
  return {
    width: Math.max(1, Math.round(size.width * scale)),
    height: Math.max(1, Math.round(size.height * scale)),
  };
}

function clampSide(side: number, maxSide: number): number {
  return Math.min(maxSide, Math.max(1, side));
}
