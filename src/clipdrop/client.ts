import got, { type Got } from 'got';
import { JobError, classify } from '../jobs/errors.js';
import type { ImageService, PaidCallOptions, PaidImage, Size } from '../jobs/ports.js';
import type { AccountGate } from './account-gate.js';
import { httpStatusError, type ClipdropAnswer } from './errors.js';
import type { SlidingWindowLimiter } from './rate-limiter.js';

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
  timeoutMs: Record<ClipdropEndpoint, number>;
  limiter: SlidingWindowLimiter;
  gate: AccountGate;
  onCall?: (call: ClipdropCall) => void;
}

const PATHS: Record<ClipdropEndpoint, string> = {
  'remove-background': 'remove-background/v1',
  upscale: 'image-upscaling/v1/upscale',
};

/**
 * The ClipDrop HTTP API (CONTRACT §3) as an ImageService.
 *
 * Every call waits for the account gate and the shared rate limiter. Account trouble (402,
 * 401/403, an outage) pauses the gate and the call waits to be sent again: it is never the
 * job's failure. Other errors go to the pipeline, the one place that retries jobs' calls;
 * got itself never retries, so logs tell the truth about every request.
 */
export function createClipdropClient(opts: ClipdropOptions): ImageService {
  const http: Got = got.extend({
    prefixUrl: opts.apiUrl.replace(/\/+$/, ''),
    headers: { 'x-api-key': opts.apiKey, 'user-agent': 'showcase-worker' },
    retry: { limit: 0 },
    throwHttpErrors: false,
  });

  async function send(
    endpoint: ClipdropEndpoint,
    form: () => FormData,
    signal: AbortSignal,
    callOpts: PaidCallOptions,
  ): Promise<ClipdropAnswer> {
    const started = performance.now();
    const report = (status: ClipdropCall['status'], response?: ClipdropAnswer) => {
      const consumed = Number(response?.headers['x-credits-consumed'] ?? 0);
      const remaining = response?.headers['x-remaining-credits'];
      opts.onCall?.({
        endpoint,
        status,
        durationMs: performance.now() - started,
        creditsConsumed: Number.isFinite(consumed) ? consumed : 0,
        remainingCredits: remaining === undefined ? undefined : Number(remaining),
      });
    };
    const permit = await opts.limiter.acquire(signal, callOpts);
    try {
      const { statusCode, headers, body } = await http.post(PATHS[endpoint], {
        body: form(),
        signal,
        responseType: 'buffer',
        timeout: { request: opts.timeoutMs[endpoint] },
      });
      // got reads the body as a plain Uint8Array: a Buffer over the same bytes, not a copy.
      const answer = {
        statusCode,
        headers,
        body: Buffer.from(body.buffer, body.byteOffset, body.byteLength),
      };
      report(statusCode, answer);
      return answer;
    } catch (err) {
      report('network-error');
      throw err;
    } finally {
      permit.done();
    }
  }

  async function call(
    endpoint: ClipdropEndpoint,
    form: () => FormData,
    signal: AbortSignal,
    callOpts: PaidCallOptions = {},
  ): Promise<PaidImage> {
    for (;;) {
      const { probe, pauses } = await opts.gate.enter(signal);
      let settled = false;
      try {
        let response: ClipdropAnswer;
        try {
          response = await send(endpoint, form, signal, callOpts);
        } catch (err) {
          if (signal.aborted) throw err;
          const error = classify(err);
          settled = true;
          if (opts.gate.transientFailure(error.detail ?? error.code, probe)) continue;
          throw error;
        }
        const status = response.statusCode;
        if (status === 402 || status === 401 || status === 403) {
          settled = true;
          opts.gate.accountRefused(
            status === 402 ? 'no-credits' : 'unauthorized',
            httpStatusError(response).detail ?? String(status),
            probe,
          );
          continue;
        }
        if (status >= 500) {
          settled = true;
          if (opts.gate.transientFailure(`ClipDrop ${status}`, probe)) continue;
          throw httpStatusError(response);
        }
        settled = true;
        if (status === 200) {
          opts.gate.succeeded(probe, pauses);
          return { image: checkedImage(endpoint, response), credits: creditsOf(response) };
        }
        // ClipDrop is up, but only a 200 proves a paused account usable again.
        opts.gate.reachable(probe);
        if (status === 429) {
          // Another client on the key: slow everyone down, then let the pipeline retry.
          const error = httpStatusError(response);
          opts.limiter.pause(error.retryAfterMs ?? 1_000);
          throw error;
        }
        throw httpStatusError(response);
      } finally {
        if (!settled) opts.gate.abandoned(probe);
      }
    }
  }

  return {
    removeBackground(image, signal, callOpts) {
      return call(
        'remove-background',
        () => {
          const form = new FormData();
          form.set('image_file', new Blob([image]), 'image');
          return form;
        },
        signal,
        callOpts,
      );
    },
    upscale(image, size: Size, signal, callOpts) {
      return call(
        'upscale',
        () => {
          const form = new FormData();
          form.set('image_file', new Blob([image]), 'image');
          form.set('target_width', String(size.width));
          form.set('target_height', String(size.height));
          return form;
        },
        signal,
        callOpts,
      );
    },
  };
}

function checkedImage(endpoint: ClipdropEndpoint, response: ClipdropAnswer): Buffer {
  const type = String(response.headers['content-type'] ?? '');
  if (!type.startsWith('image/') || response.body.length === 0) {
    throw new JobError('CLIPDROP_BAD_RESPONSE', {
      detail: `${endpoint} answered ${type || 'no content type'}, ${response.body.length} bytes`,
    });
  }
  return response.body;
}

function creditsOf(response: ClipdropAnswer): number {
  const consumed = Number(response.headers['x-credits-consumed'] ?? 1);
  return Number.isFinite(consumed) ? consumed : 1;
}
