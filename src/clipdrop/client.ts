import got, { type Got, type Response } from 'got';
import { JobError, classify } from '../jobs/errors.js';
import type { ImageService, Size } from '../jobs/ports.js';
import { httpStatusError } from './errors.js';

export type ClipdropEndpoint = 'remove-background' | 'upscale';

/** One finished HTTP exchange with ClipDrop, for logs, metrics and accounting. */
export interface ClipdropCall {
  endpoint: ClipdropEndpoint;
  status: number | 'network-error';
  durationMs: number;
  creditsConsumed: number;
  remainingCredits: number | undefined;
}

export interface ClipdropOptions {
  apiUrl: string;
  apiKey: string;
  timeoutMs: number;
  onCall?: (call: ClipdropCall) => void;
}

const PATHS: Record<ClipdropEndpoint, string> = {
  'remove-background': 'remove-background/v1',
  upscale: 'image-upscaling/v1/upscale',
};

/**
 * The ClipDrop HTTP API (CONTRACT §3) as an ImageService. got never retries on its own here:
 * retries are decided in one place, the pipeline, so logs tell the truth about every call.
 */
export function createClipdropClient(opts: ClipdropOptions): ImageService {
  const http: Got = got.extend({
    prefixUrl: opts.apiUrl.replace(/\/+$/, ''),
    headers: { 'x-api-key': opts.apiKey, 'user-agent': 'showcase-worker' },
    retry: { limit: 0 },
    timeout: { request: opts.timeoutMs },
    throwHttpErrors: false,
    responseType: 'buffer',
  });

  async function call(
    endpoint: ClipdropEndpoint,
    form: FormData,
    signal: AbortSignal,
  ): Promise<Buffer> {
    const started = performance.now();
    let response: Response<Buffer>;
    try {
      response = await http.post(PATHS[endpoint], { body: form, signal, responseType: 'buffer' });
    } catch (err) {
      opts.onCall?.({
        endpoint,
        status: 'network-error',
        durationMs: performance.now() - started,
        creditsConsumed: 0,
        remainingCredits: undefined,
      });
      throw classify(err);
    }
    const consumed = Number(response.headers['x-credits-consumed'] ?? 0);
    const remaining = response.headers['x-remaining-credits'];
    opts.onCall?.({
      endpoint,
      status: response.statusCode,
      durationMs: performance.now() - started,
      creditsConsumed: Number.isFinite(consumed) ? consumed : 0,
      remainingCredits: remaining === undefined ? undefined : Number(remaining),
    });
    if (response.statusCode !== 200) throw httpStatusError(response);
    const type = String(response.headers['content-type'] ?? '');
    if (!type.startsWith('image/') || response.body.length === 0) {
      throw new JobError('CLIPDROP_BAD_RESPONSE', {
        detail: `${endpoint} answered ${type || 'no content type'}, ${response.body.length} bytes`,
      });
    }
    return response.body;
  }

  return {
    removeBackground(image, signal) {
      const form = new FormData();
      form.set('image_file', new Blob([image]), 'image');
      return call('remove-background', form, signal);
    },
    upscale(image, size: Size, signal) {
      const form = new FormData();
      form.set('image_file', new Blob([image]), 'image');
      form.set('target_width', String(size.width));
      form.set('target_height', String(size.height));
      return call('upscale', form, signal);
    },
  };
}
