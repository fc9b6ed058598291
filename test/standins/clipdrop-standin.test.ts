/** The ClipDrop stand-in, over real HTTP: the wire contract the worker's tests rely on. */
import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { startClipdropStandin, type ClipdropStandin } from '../../dev/clipdrop-standin.js';

const KEY = 'test-key';
const REMOVE_BG = '/remove-background/v1';
const UPSCALE = '/image-upscaling/v1/upscale';

/** 64x48 white picture with a 20x20 red square in the middle; RGB, or RGBA all opaque. */
async function redOnWhite(
  opts: { alphaChannel?: boolean; format?: 'png' | 'jpeg' } = {},
): Promise<Buffer> {
  const square = await sharp({
    create: { width: 20, height: 20, channels: 3, background: '#ff0000' },
  })
    .png()
    .toBuffer();
  // composite() always yields an alpha channel, so settle the channels in a second pass.
  const composed = await sharp({
    create: { width: 64, height: 48, channels: 3, background: '#ffffff' },
  })
    .composite([{ input: square, left: 22, top: 14 }])
    .png()
    .toBuffer();
  const base = opts.alphaChannel ? sharp(composed).ensureAlpha() : sharp(composed).removeAlpha();
  return opts.format === 'jpeg' ? base.jpeg().toBuffer() : base.png().toBuffer();
}

interface CallOptions {
  key?: string | null;
  image?: Buffer;
  declaredType?: string;
  fields?: Record<string, string>;
  accept?: string;
}

function call(standin: ClipdropStandin, path: string, o: CallOptions = {}): Promise<Response> {
  const form = new FormData();
  if (o.image) {
    form.append('image_file', new Blob([o.image], { type: o.declaredType ?? 'image/png' }), 'in');
  }
  for (const [name, value] of Object.entries(o.fields ?? {})) form.append(name, value);
  const headers: Record<string, string> = {};
  if (o.key !== null) headers['x-api-key'] = o.key ?? KEY;
  if (o.accept) headers.accept = o.accept;
  return fetch(standin.url + path, { method: 'POST', headers, body: form });
}

async function expectJsonError(res: Response, status: number): Promise<string> {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toBe('application/json');
  const body = (await res.json()) as { error?: unknown };
  expect(typeof body.error).toBe('string');
  expect(body.error).not.toBe('');
  return body.error as string;
}

async function rgbaAt(image: Buffer, x: number, y: number): Promise<number[]> {
  const { data, info } = await sharp(image)
    .ensureAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const i = (y * info.width + x) * 4;
  return [...data.subarray(i, i + 4)];
}

const bytes = async (res: Response): Promise<Buffer> => Buffer.from(await res.arrayBuffer());
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('ClipDrop stand-in', () => {
  let standin: ClipdropStandin;
  let opaque: Buffer;

  beforeAll(async () => {
    // A high rpm: the shared instance must not rate-limit the suite itself.
    standin = await startClipdropStandin({ rpm: 10_000, forbiddenKeys: ['banned-key'] });
    opaque = await redOnWhite();
    expect((await sharp(opaque).metadata()).channels).toBe(3);
    expect((await sharp(await redOnWhite({ alphaChannel: true })).metadata()).channels).toBe(4);
  });
  afterAll(() => standin.close());
  beforeEach(() => standin.reset());

  describe('remove-background', () => {
    it('answers a PNG of the same size with a transparent background and an opaque subject', async () => {
      const res = await call(standin, REMOVE_BG, { image: opaque });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/png');
      expect(res.headers.get('x-credits-consumed')).toBe('1');
      expect(res.headers.get('x-remaining-credits')).toBe('1000000');
      const out = await bytes(res);
      const meta = await sharp(out).metadata();
      expect(meta).toMatchObject({ format: 'png', width: 64, height: 48, hasAlpha: true });
      expect((await rgbaAt(out, 0, 0))[3]).toBe(0);
      expect((await rgbaAt(out, 63, 47))[3]).toBe(0);
      expect(await rgbaAt(out, 32, 24)).toEqual([255, 0, 0, 255]);
    });

    it('answers the format the Accept header asks for', async () => {
      const webp = await call(standin, REMOVE_BG, { image: opaque, accept: 'image/webp' });
      expect(webp.headers.get('content-type')).toBe('image/webp');
      expect(await sharp(await bytes(webp)).metadata()).toMatchObject({
        format: 'webp',
        width: 64,
        height: 48,
      });
      const jpeg = await call(standin, REMOVE_BG, { image: opaque, accept: 'image/jpeg' });
      expect(jpeg.headers.get('content-type')).toBe('image/jpeg');
      expect((await sharp(await bytes(jpeg)).metadata()).format).toBe('jpeg');
    });

    it('detects the format from the bytes, not the declared content type', async () => {
      const jpegAsPng = await redOnWhite({ format: 'jpeg' });
      const ok = await call(standin, REMOVE_BG, { image: jpegAsPng, declaredType: 'text/plain' });
      expect(ok.status).toBe(200);
      const text = Buffer.from('definitely not a picture');
      await expectJsonError(await call(standin, REMOVE_BG, { image: text }), 400);
    });
  });

  describe('upscale', () => {
    it('answers WebP at the target size when the input has transparency', async () => {
      const cutout = await bytes(await call(standin, REMOVE_BG, { image: opaque }));
      const res = await call(standin, UPSCALE, {
        image: cutout,
        fields: { target_width: '128', target_height: '96' },
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/webp');
      expect(res.headers.get('x-credits-consumed')).toBe('1');
      const out = await bytes(res);
      expect(await sharp(out).metadata()).toMatchObject({
        format: 'webp',
        width: 128,
        height: 96,
        hasAlpha: true,
      });
      expect((await rgbaAt(out, 0, 0))[3]).toBe(0);
    });

    it('answers JPEG at the target size when the input is opaque, even with an alpha channel', async () => {
      for (const image of [opaque, await redOnWhite({ alphaChannel: true })]) {
        const res = await call(standin, UPSCALE, {
          image,
          fields: { target_width: '100', target_height: '30' },
        });
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')).toBe('image/jpeg');
        expect(await sharp(await bytes(res)).metadata()).toMatchObject({
          format: 'jpeg',
          width: 100,
          height: 30,
        });
      }
    });

    it.each([
      [{ target_width: '128' }],
      [{ target_width: '0', target_height: '96' }],
      [{ target_width: '4097', target_height: '96' }],
      [{ target_width: '12.5', target_height: '96' }],
      [{ target_width: 'abc', target_height: '96' }],
    ])('refuses bad target sizes %j with 400', async (fields) => {
      await expectJsonError(await call(standin, UPSCALE, { image: opaque, fields }), 400);
      expect(standin.stats.creditsUsed).toBe(0);
    });

    it('refuses images over 16 megapixels with 400', async () => {
      const big = await sharp({
        create: { width: 4100, height: 4000, channels: 3, background: '#ffffff' },
      })
        .png()
        .toBuffer();
      const res = await call(standin, UPSCALE, {
        image: big,
        fields: { target_width: '64', target_height: '64' },
      });
      expect(await expectJsonError(res, 400)).toMatch(/megapixels/);
    });
  });

  describe('errors', () => {
    it('answers 400 without an image_file, or without a multipart body', async () => {
      await expectJsonError(await call(standin, REMOVE_BG), 400);
      const json = await fetch(standin.url + REMOVE_BG, {
        method: 'POST',
        headers: { 'x-api-key': KEY, 'content-type': 'application/json' },
        body: '{"image_file":"x"}',
      });
      await expectJsonError(json, 400);
      expect(standin.stats.responses).toEqual({ '400': 2 });
    });

    it('answers 401 for a missing or unknown key and 403 for a forbidden one', async () => {
      await expectJsonError(await call(standin, REMOVE_BG, { image: opaque, key: null }), 401);
      await expectJsonError(await call(standin, UPSCALE, { image: opaque, key: 'nope' }), 401);
      await expectJsonError(await call(standin, REMOVE_BG, { key: 'banned-key' }), 403);
      expect(standin.stats.creditsUsed).toBe(0);
    });

    it('answers 404 for other paths and 405 for other methods', async () => {
      await expectJsonError(await call(standin, '/remove-background/v2'), 404);
      const get = await fetch(standin.url + REMOVE_BG, { headers: { 'x-api-key': KEY } });
      await expectJsonError(get, 405);
    });
  });

  describe('credits', () => {
    it('answers 402 once the balance is spent, and counts remaining credits down', async () => {
      const s = await startClipdropStandin({ credits: 2 });
      try {
        const first = await call(s, REMOVE_BG, { image: opaque });
        expect(first.status).toBe(200);
        expect(first.headers.get('x-remaining-credits')).toBe('1');
        const second = await call(s, REMOVE_BG, { image: opaque });
        expect(second.headers.get('x-remaining-credits')).toBe('0');
        await expectJsonError(await call(s, REMOVE_BG, { image: opaque }), 402);
        expect(s.stats.creditsUsed).toBe(2);

        s.setCredits(5);
        const topped = await call(s, REMOVE_BG, { image: opaque });
        expect(topped.headers.get('x-remaining-credits')).toBe('4');
      } finally {
        await s.close();
      }
    });

    it('does not let concurrent calls overspend the balance', async () => {
      const s = await startClipdropStandin({ credits: 1, latencyMs: { removeBackground: 100 } });
      try {
        const answers = await Promise.all(
          [1, 2, 3].map(() => call(s, REMOVE_BG, { image: opaque })),
        );
        expect(answers.map((r) => r.status).sort()).toEqual([200, 402, 402]);
        expect(s.stats.creditsUsed).toBe(1);
      } finally {
        await s.close();
      }
    });

    it('answers 402 inside a no-credits window only, whatever the balance', async () => {
      let clock = 1_000;
      const s = await startClipdropStandin({ now: () => clock });
      try {
        expect(s.noCreditsWindow(500, 10_000)).toEqual({ startsAt: 1_500, endsAt: 11_500 });
        expect((await call(s, REMOVE_BG, { image: opaque })).status).toBe(200);
        clock = 1_500;
        await expectJsonError(await call(s, REMOVE_BG, { image: opaque }), 402);
        clock = 11_499;
        await expectJsonError(await call(s, UPSCALE, { image: opaque }), 402);
        clock = 11_500;
        expect((await call(s, REMOVE_BG, { image: opaque })).status).toBe(200);
        expect(s.stats.responses).toEqual({ '200': 2, '402': 2 });
        expect(s.stats.creditsUsed).toBe(2);
        // reset() forgets windows.
        s.noCreditsWindow(0, 1_000);
        s.reset();
        expect((await call(s, REMOVE_BG, { image: opaque })).status).toBe(200);
      } finally {
        await s.close();
      }
    });

    it('does not charge for a refused image', async () => {
      const s = await startClipdropStandin({ credits: 1 });
      try {
        await expectJsonError(await call(s, REMOVE_BG), 400);
        expect((await call(s, REMOVE_BG, { image: opaque })).status).toBe(200);
      } finally {
        await s.close();
      }
    });
  });

  describe('rate limit', () => {
    it('answers 429 with Retry-After past rpm requests of a key; refused keys do not count', async () => {
      const s = await startClipdropStandin({ rpm: 2 });
      try {
        for (let i = 0; i < 3; i++) {
          await expectJsonError(await call(s, REMOVE_BG, { key: 'wrong' }), 401);
        }
        await expectJsonError(await call(s, REMOVE_BG), 400); // counts although refused later
        expect((await call(s, REMOVE_BG, { image: opaque })).status).toBe(200);
        const limited = await call(s, UPSCALE, { image: opaque });
        await expectJsonError(limited, 429);
        const retryAfter = Number(limited.headers.get('retry-after'));
        expect(Number.isInteger(retryAfter)).toBe(true);
        expect(retryAfter).toBeGreaterThanOrEqual(1);
        expect(retryAfter).toBeLessThanOrEqual(60);
        expect(s.stats.responses).toEqual({ '401': 3, '400': 1, '200': 1, '429': 1 });
      } finally {
        await s.close();
      }
    });
  });

  describe('faults', () => {
    it('answers an injected 503 (with Retry-After) once, then succeeds without charging twice', async () => {
      standin.injectFaults({ kind: 'status', status: 503, retryAfterSeconds: 7 });
      const failed = await call(standin, REMOVE_BG, { image: opaque });
      await expectJsonError(failed, 503);
      expect(failed.headers.get('retry-after')).toBe('7');
      expect((await call(standin, REMOVE_BG, { image: opaque })).status).toBe(200);
      expect(standin.stats.responses).toEqual({ '503': 1, '200': 1 });
      expect(standin.stats.creditsUsed).toBe(1);
      expect(standin.stats.callsByImage.get(sha256(opaque))).toEqual({
        removeBackground: 1,
        upscale: 0,
      });
    });

    it('applies an endpoint-specific fault only to that endpoint', async () => {
      standin.injectFaults({ kind: 'status', status: 500, endpoint: 'upscale' });
      expect((await call(standin, REMOVE_BG, { image: opaque })).status).toBe(200);
      const up = await call(standin, UPSCALE, {
        image: opaque,
        fields: { target_width: '8', target_height: '8' },
      });
      await expectJsonError(up, 500);
    });

    it('makes fetch reject on a drop, and serves the next request', async () => {
      standin.injectFaults({ kind: 'drop' });
      await expect(call(standin, REMOVE_BG, { image: opaque })).rejects.toThrow();
      expect(standin.stats.callsByImage.size).toBe(0);
      expect((await call(standin, REMOVE_BG, { image: opaque })).status).toBe(200);
      expect(standin.stats.faultsApplied.drop).toBe(1);
    });

    it('applies fault rates to every request until turned off', async () => {
      standin.setFaultRates({ serverError: 1 });
      await expectJsonError(await call(standin, REMOVE_BG, { image: opaque }), 500);
      standin.setFaultRates({ serverError: 0, drop: 1 });
      await expect(call(standin, REMOVE_BG, { image: opaque })).rejects.toThrow();
      standin.setFaultRates({ drop: 0 });
      expect((await call(standin, REMOVE_BG, { image: opaque })).status).toBe(200);
    });

    it('terminates close() with a hanging request, which then fails', async () => {
      const s = await startClipdropStandin();
      s.injectFaults({ kind: 'hang' });
      const pending = call(s, REMOVE_BG, { image: opaque });
      const outcome = pending.then(
        () => 'answered',
        () => 'rejected',
      );
      await vi.waitFor(() => expect(s.stats.faultsApplied.hang).toBe(1));
      await s.close();
      expect(await outcome).toBe('rejected');
    });
  });

  describe('stats', () => {
    it('counts successful paid calls per image', async () => {
      const other = await redOnWhite({ alphaChannel: true });
      const fields = { target_width: '32', target_height: '32' };
      await call(standin, REMOVE_BG, { image: opaque });
      await call(standin, REMOVE_BG, { image: opaque });
      await call(standin, UPSCALE, { image: opaque, fields });
      await call(standin, UPSCALE, { image: other, fields });
      await call(standin, UPSCALE, { image: other }); // 400: not paid, not counted
      expect(standin.stats.callsByImage.get(sha256(opaque))).toEqual({
        removeBackground: 2,
        upscale: 1,
      });
      expect(standin.stats.callsByImage.get(sha256(other))).toEqual({
        removeBackground: 0,
        upscale: 1,
      });
      expect(standin.stats.calls).toEqual({ removeBackground: 2, upscale: 3 });
      expect(standin.stats.creditsUsed).toBe(4);
    });

    it('follows a picture through both endpoints by its size: paid calls and calls in flight', async () => {
      // What the worker sends upscale: the cut-out re-encoded (other bytes), the same size.
      const cutout = await sharp(
        await bytes(await call(standin, REMOVE_BG, { image: opaque, accept: 'image/png' })),
      )
        .removeAlpha()
        .jpeg()
        .toBuffer();
      const fields = { target_width: '128', target_height: '96' };
      standin.setLatency({ upscale: 300 });
      try {
        const pending = call(standin, UPSCALE, { image: cutout, fields });
        await vi.waitFor(() =>
          expect(standin.stats.inFlightBySize.get('64x48')).toEqual({
            removeBackground: 0,
            upscale: 1,
          }),
        );
        expect((await pending).status).toBe(200);
      } finally {
        standin.setLatency({ upscale: 0 });
      }
      expect(standin.stats.inFlightBySize.size).toBe(0);
      await call(standin, UPSCALE, { image: cutout }); // 400: not paid, not counted
      const small = await sharp(opaque).resize(32, 24).png().toBuffer();
      await call(standin, REMOVE_BG, { image: small });
      expect(standin.stats.paid.map(({ size, endpoint }) => `${size} ${endpoint}`)).toEqual([
        '64x48 removeBackground',
        '64x48 upscale',
        '32x24 removeBackground',
      ]);
      const times = standin.stats.paid.map((p) => p.at);
      expect(times).toEqual([...times].sort((a, b) => a - b));
    });

    it('tracks concurrent requests during latency', async () => {
      standin.setLatency({ removeBackground: 200 });
      try {
        const started = Date.now();
        const answers = await Promise.all(
          Array.from({ length: 4 }, () => call(standin, REMOVE_BG, { image: opaque })),
        );
        expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200]);
        expect(Date.now() - started).toBeGreaterThanOrEqual(200);
        expect(standin.stats.maxInFlight).toBe(4);
        expect(standin.stats.inFlight).toBe(0);
      } finally {
        standin.setLatency({ removeBackground: 0 });
      }
    });

    it('reset() zeroes the stats in place', async () => {
      const stats = standin.stats;
      await call(standin, REMOVE_BG, { image: opaque });
      standin.reset();
      expect(stats).toMatchObject({
        calls: { removeBackground: 0, upscale: 0 },
        responses: {},
        creditsUsed: 0,
        maxInFlight: 0,
      });
      expect(stats.callsByImage.size).toBe(0);
      expect(stats.paid).toEqual([]);
    });
  });
});
