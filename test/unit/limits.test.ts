import { describe, expect, it } from 'vitest';
import { CLIPDROP_LIMITS, fitPixels, upscaleTarget } from '../../src/image/limits.js';

describe('upscaleTarget', () => {
  it('doubles a small image', () => {
    expect(upscaleTarget({ width: 1000, height: 800 }, 2)).toEqual({ width: 2000, height: 1600 });
  });

  it('clamps a landscape image to 4096 on the long side, keeping the aspect ratio', () => {
    // 3000x2000 doubled would be 6000x4000; the long side is capped: 4096 x 2000*4096/3000.
    expect(upscaleTarget({ width: 3000, height: 2000 }, 2)).toEqual({ width: 4096, height: 2731 });
  });

  it('clamps a portrait image to 4096 on the long side, keeping the aspect ratio', () => {
    expect(upscaleTarget({ width: 1500, height: 2500 }, 2)).toEqual({ width: 2458, height: 4096 });
  });

  it('clamps a square image exactly to the limit', () => {
    expect(upscaleTarget({ width: 3000, height: 3000 }, 2)).toEqual({ width: 4096, height: 4096 });
  });

  it('with factor 1 returns the same size', () => {
    expect(upscaleTarget({ width: 640, height: 480 }, 1)).toEqual({ width: 640, height: 480 });
  });

  it('leaves an image already 4096 on its long side as it is', () => {
    expect(upscaleTarget({ width: 4096, height: 2048 }, 2)).toEqual({ width: 4096, height: 2048 });
  });

  it('upscales tiny images and never returns a side below 1', () => {
    expect(upscaleTarget({ width: 1, height: 1 }, 2)).toEqual({ width: 2, height: 2 });
    expect(upscaleTarget({ width: 3, height: 2 }, 4)).toEqual({ width: 12, height: 8 });
    // A 20000x3 strip is scaled down to fit 4096; its short side must stay at least 1 pixel.
    expect(upscaleTarget({ width: 20_000, height: 3 }, 2)).toEqual({ width: 4096, height: 1 });
  });

  it('honours a custom maxSide', () => {
    expect(upscaleTarget({ width: 800, height: 400 }, 2, 1000)).toEqual({
      width: 1000,
      height: 500,
    });
  });

  it('never exceeds the limit and keeps the aspect ratio, over many sizes', () => {
    for (const width of [1, 7, 99, 1023, 2047, 2048, 2049, 3001, 4095, 4096, 5000]) {
      for (const height of [1, 13, 512, 2048, 2050, 4096]) {
        for (const factor of [1, 2, 3, 4]) {
          const target = upscaleTarget({ width, height }, factor);
          expect(Math.max(target.width, target.height)).toBeLessThanOrEqual(
            CLIPDROP_LIMITS.maxTargetSide,
          );
          expect(target.width).toBeGreaterThanOrEqual(1);
          expect(target.height).toBeGreaterThanOrEqual(1);
          // Never more than `factor` times larger.
          expect(target.width).toBeLessThanOrEqual(width * factor);
          expect(target.height).toBeLessThanOrEqual(height * factor);
          // The ratio is kept up to one pixel of rounding on the short side.
          if (target.width >= target.height) {
            expect(Math.abs(target.height - (target.width * height) / width)).toBeLessThanOrEqual(
              1,
            );
          } else {
            expect(Math.abs(target.width - (target.height * width) / height)).toBeLessThanOrEqual(
              1,
            );
          }
        }
      }
    }
  });
});

describe('fitPixels', () => {
  it('returns the size unchanged when it is within the budget', () => {
    const size = { width: 4000, height: 4000 };
    expect(fitPixels(size, 16_000_000)).toEqual({ width: 4000, height: 4000 });
    expect(fitPixels({ width: 10, height: 10 }, 100)).toEqual({ width: 10, height: 10 });
  });

  it('shrinks a large image to at most maxPixels, keeping the aspect ratio', () => {
    const fitted = fitPixels({ width: 10_000, height: 5_000 }, CLIPDROP_LIMITS.upscaleMaxPixels);
    expect(fitted).toEqual({ width: 5656, height: 2828 });
    expect(fitted.width * fitted.height).toBeLessThanOrEqual(CLIPDROP_LIMITS.upscaleMaxPixels);
  });

  it('rounds down so the result never exceeds the budget', () => {
    for (const [w, h, max] of [
      [7001, 5003, 25_000_000],
      [4097, 4097, 16_000_000],
      [12_345, 678, 1_000_000],
      [3, 3, 8],
    ] as const) {
      const fitted = fitPixels({ width: w, height: h }, max);
      expect(fitted.width * fitted.height).toBeLessThanOrEqual(max);
      expect(fitted.width).toBeLessThan(w);
      expect(fitted.height).toBeLessThan(h);
    }
  });

  it('handles a long strip within the budget', () => {
    const fitted = fitPixels({ width: 40_000, height: 1_000 }, 25_000_000);
    expect(fitted).toEqual({ width: 31_622, height: 790 });
    expect(fitted.width * fitted.height).toBeLessThanOrEqual(25_000_000);
  });
});
