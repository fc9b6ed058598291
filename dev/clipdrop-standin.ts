/**
 * A local ClipDrop stand-in: the real wire contract (CONTRACT.md section 3) plus fault
 * injection, so tests and the demo never call (or pay) the real service.
 *
 * Checks run in the real API's order: auth, rate limit, credits, then injected faults,
 * latency and the image work. The request body is read before the checks so that an
 * early answer never races an upload still in progress.
 */
import { createHash } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import {
  dimensions,
  removeBackground,
  sniffFormat,
  upscale,
  type EncodedImage,
  type ImageFormat,
} from './clipdrop-standin/pixels.js';
import { RateWindow } from './clipdrop-standin/rate-window.js';

export type Endpoint = 'removeBackground' | 'upscale';

export interface ClipdropStandinOptions {
  /** The valid key, default 'test-key'; a missing or unknown `x-api-key` gets 401. */
  apiKey?: string;
  /** Keys that exist but may not call the API: 403. */
  forbiddenKeys?: string[];
  /** Starting balance, default Infinity; a call costing more than remains gets 402. */
  credits?: number;
  /** Requests per minute per key (sliding 60 s window), default 60; over it: 429 + Retry-After. */
  rpm?: number;
  /** Delay added before the image work, per endpoint, default 0. */
  latencyMs?: Partial<Record<Endpoint, number>>;
  /** Default 0 (ephemeral); listens on 127.0.0.1 only. */
  port?: number;
  /** The stand-in's clock (ms), default Date.now: timed faults follow it. */
  now?: () => number;
}

/** A stretch of the stand-in's clock, as returned by `noCreditsWindow`. */
export interface TimeWindow {
  startsAt: number;
  endsAt: number;
}

export type Fault =
  /** Answer this status with JSON {error} (and Retry-After when given). */
  | { kind: 'status'; status: number; retryAfterSeconds?: number; endpoint?: Endpoint }
  /** Destroy the socket without answering (a reset connection). */
  | { kind: 'drop'; endpoint?: Endpoint }
  /** Never answer, until close(). */
  | { kind: 'hang'; endpoint?: Endpoint };

export interface ClipdropStandinStats {
  /** Every POST to the endpoint, whatever its outcome. */
  calls: Record<Endpoint, number>;
  /** Answers by HTTP status, e.g. {"200": 3, "429": 1}; drops and hangs have none. */
  responses: Record<string, number>;
  /** sha256 hex of the uploaded image_file → successful (200, paid) calls. */
  callsByImage: Map<string, Record<Endpoint, number>>;
  /**
   * Every successful (200, paid) call in order: the uploaded picture's size ("WxH"), the
   * endpoint, and when it was answered (`now()`). The size follows one picture through both
   * endpoints (the upscale input is its cut-out, re-encoded at the same size), which the hash
   * cannot: a test that gives each job's picture its own size counts each job's calls.
   */
  paid: PaidCall[];
  /** Requests past the checks and faults, waiting out latency or being processed. */
  inFlight: number;
  /** The same, by picture size as in `paid` (a request whose image does not parse has none). */
  inFlightBySize: Map<string, Record<Endpoint, number>>;
  maxInFlight: number;
  creditsUsed: number;
  /** Faults applied so far (queued or random), by kind: lets a test await a hang. */
  faultsApplied: Record<Fault['kind'], number>;
}

export interface PaidCall {
  size: string;
  endpoint: Endpoint;
  at: number;
}

export interface ClipdropStandin {
  /** Base URL, no trailing slash, e.g. http://127.0.0.1:PORT */
  url: string;
  stats: ClipdropStandinStats;
  setCredits(n: number): void;
  /** Merges: endpoints not named keep their latency. */
  setLatency(l: Partial<Record<Endpoint, number>>): void;
  /** Queue of faults for the next matching requests, in order; each entry is used once. */
  injectFaults(...faults: Fault[]): void;
  /** Probabilities (0..1) applied to every request until changed; merges, 0 = off. */
  setFaultRates(r: { serverError?: number; drop?: number }): void;
  /**
   * From `startInMs` from now, for `durationMs`, the account has no credits: every call past
   * the rate limit gets 402, whatever the balance; afterwards the balance applies again.
   */
  noCreditsWindow(startInMs: number, durationMs: number): TimeWindow;
  /** Zeroes the stats (same objects, so held references stay valid), clears faults, no-credit and rate windows. */
  reset(): void;
  /** Stops listening and destroys open sockets, hanging requests included. */
  close(): Promise<void>;
}

/** One credit per call: a simplification of the real pricing, kept in one place. */
export const CREDITS_PER_CALL = 1;
/** What `x-remaining-credits` says when the balance is unlimited. */
const UNLIMITED_CREDITS_HEADER = 1_000_000;
const MAX_FILE_BYTES = 30 * 1024 * 1024;
/** Room for the multipart framing and text fields around a maximal file. */
const MAX_BODY_BYTES = MAX_FILE_BYTES + 1024 * 1024;
const MAX_TARGET_SIDE = 4096;
const MAX_PIXELS: Record<Endpoint, number> = { removeBackground: 25_000_000, upscale: 16_000_000 };
const FAULT_KINDS = ['status', 'drop', 'hang'] as const;
const ROUTES = new Map<string, Endpoint>([
  ['/remove-background/v1', 'removeBackground'],
  ['/image-upscaling/v1/upscale', 'upscale'],
]);

type Outcome = ({ ok: true; imageHash: string } & EncodedImage) | { ok: false; error: string };
/** An upload read and checked, before the image work; `error`: the 400 to answer after latency. */
type Upload =
  | {
      ok: true;
      image: Buffer;
      size: string;
      target: { width: number; height: number } | undefined;
    }
  | { ok: false; error: string };

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export async function startClipdropStandin(
  opts: ClipdropStandinOptions = {},
): Promise<ClipdropStandin> {
  const apiKey = opts.apiKey ?? 'test-key';
  const forbiddenKeys = new Set(opts.forbiddenKeys ?? []);
  const rateWindow = new RateWindow(opts.rpm ?? 60);
  const latency: Record<Endpoint, number> = {
    removeBackground: opts.latencyMs?.removeBackground ?? 0,
    upscale: opts.latencyMs?.upscale ?? 0,
  };
  const faultRates = { serverError: 0, drop: 0 };
  const now = opts.now ?? Date.now;
  let noCredits: TimeWindow[] = [];
  let faultQueue: Fault[] = [];
  let credits = opts.credits ?? Infinity;
  // Credits held by requests in progress: concurrent calls cannot overspend the balance.
  let reserved = 0;
  // Aborted by close(): ends latency waits and hangs so no handler outlives the server.
  const lifetime = new AbortController();
  // Every request in its latency wait listens on it: a fleet's dozens at once are no leak.
  setMaxListeners(0, lifetime.signal);
  const sockets = new Set<Socket>();

  const stats: ClipdropStandinStats = {
    calls: { removeBackground: 0, upscale: 0 },
    responses: {},
    callsByImage: new Map(),
    paid: [],
    inFlight: 0,
    inFlightBySize: new Map(),
    maxInFlight: 0,
    creditsUsed: 0,
    faultsApplied: { status: 0, drop: 0, hang: 0 },
  };

  function send(
    res: ServerResponse,
    status: number,
    body: Buffer | string,
    headers: Record<string, string | number>,
  ): void {
    if (res.headersSent || res.destroyed) return;
    stats.responses[status] = (stats.responses[status] ?? 0) + 1;
    res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  function sendError(res: ServerResponse, err: HttpError): void {
    const body = JSON.stringify({ error: err.message });
    send(res, err.status, body, { ...err.headers, 'content-type': 'application/json' });
  }

  /** The first queued fault for this endpoint, else a random one from the rates. */
  function takeFault(endpoint: Endpoint): Fault | undefined {
    const i = faultQueue.findIndex((f) => !f.endpoint || f.endpoint === endpoint);
    if (i >= 0) return faultQueue.splice(i, 1)[0];
    if (Math.random() < faultRates.serverError) return { kind: 'status', status: 500 };
    if (Math.random() < faultRates.drop) return { kind: 'drop' };
    return undefined;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const endpoint = ROUTES.get(new URL(req.url ?? '/', 'http://standin').pathname);
    if (!endpoint) throw new HttpError(404, 'Not found');
    if (req.method !== 'POST') throw new HttpError(405, 'Method not allowed', { allow: 'POST' });
    stats.calls[endpoint]++;
    const body = await readBody(req, MAX_BODY_BYTES);

    const key = req.headers['x-api-key'];
    if (typeof key === 'string' && forbiddenKeys.has(key)) {
      throw new HttpError(403, 'This API key is not allowed to use this endpoint');
    }
    if (key !== apiKey) throw new HttpError(401, 'Missing or invalid API key');

    const rate = rateWindow.take(key);
    if (!rate.ok) {
      throw new HttpError(429, 'Too many requests', {
        'retry-after': String(rate.retryAfterSeconds),
      });
    }
    const t = now();
    const broke = noCredits.some((w) => w.startsAt <= t && t < w.endsAt);
    if (broke || credits - reserved < CREDITS_PER_CALL) {
      throw new HttpError(402, 'No credits remaining');
    }

    reserved += CREDITS_PER_CALL;
    try {
      const fault = takeFault(endpoint);
      if (fault) {
        stats.faultsApplied[fault.kind]++;
        if (fault.kind === 'drop') return void req.socket.destroy();
        if (fault.kind === 'hang') return await untilAborted(lifetime.signal);
        const headers: Record<string, string> =
          fault.retryAfterSeconds === undefined
            ? {}
            : { 'retry-after': String(fault.retryAfterSeconds) };
        throw new HttpError(fault.status, `Injected fault: HTTP ${fault.status}`, headers);
      }

      // Read before the latency (so the request in flight has its picture), answered after it.
      const upload = await readUpload(endpoint, req.headers, body);
      const size = upload.ok ? upload.size : undefined;
      stats.inFlight++;
      stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
      if (size) countBySize(stats.inFlightBySize, size, endpoint, 1);
      try {
        await delay(latency[endpoint], undefined, { signal: lifetime.signal });
        const outcome = upload.ok
          ? await processImage(endpoint, upload, req.headers.accept)
          : upload;
        if (!outcome.ok) throw new HttpError(400, outcome.error);

        // Charged once the work is done, even if the client has gone: a real server would.
        credits -= CREDITS_PER_CALL;
        stats.creditsUsed += CREDITS_PER_CALL;
        const perImage = stats.callsByImage.get(outcome.imageHash) ?? {
          removeBackground: 0,
          upscale: 0,
        };
        perImage[endpoint]++;
        stats.callsByImage.set(outcome.imageHash, perImage);
        if (size) stats.paid.push({ size, endpoint, at: now() });

        send(res, 200, outcome.body, {
          'content-type': outcome.contentType,
          'x-remaining-credits': Number.isFinite(credits)
            ? Math.max(0, Math.floor(credits))
            : UNLIMITED_CREDITS_HEADER,
          'x-credits-consumed': String(CREDITS_PER_CALL),
        });
      } finally {
        stats.inFlight--;
        if (size) countBySize(stats.inFlightBySize, size, endpoint, -1);
      }
    } finally {
      reserved -= CREDITS_PER_CALL;
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (err instanceof HttpError) return sendError(res, err);
      // Aborted by close(), a client gone mid-upload, or a bug: never crash the server.
      if (res.headersSent || lifetime.signal.aborted) return void res.destroy();
      sendError(res, new HttpError(500, 'Internal error in the ClipDrop stand-in'));
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    stats,
    setCredits(n) {
      credits = n;
    },
    setLatency(l) {
      latency.removeBackground = l.removeBackground ?? latency.removeBackground;
      latency.upscale = l.upscale ?? latency.upscale;
    },
    injectFaults(...faults) {
      faultQueue.push(...faults);
    },
    setFaultRates(r) {
      faultRates.serverError = r.serverError ?? faultRates.serverError;
      faultRates.drop = r.drop ?? faultRates.drop;
    },
    noCreditsWindow(startInMs, durationMs) {
      const startsAt = now() + startInMs;
      const window = { startsAt, endsAt: startsAt + durationMs };
      noCredits.push(window);
      return { ...window };
    },
    reset() {
      stats.calls.removeBackground = 0;
      stats.calls.upscale = 0;
      for (const status of Object.keys(stats.responses)) delete stats.responses[status];
      stats.callsByImage.clear();
      stats.paid.length = 0;
      // inFlight reflects live requests, so only its high-water mark restarts.
      stats.maxInFlight = stats.inFlight;
      stats.creditsUsed = 0;
      for (const kind of FAULT_KINDS) stats.faultsApplied[kind] = 0;
      faultQueue = [];
      faultRates.serverError = 0;
      faultRates.drop = 0;
      noCredits = [];
      rateWindow.clear();
    },
    async close() {
      lifetime.abort();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

/** The whole body, or undefined when it exceeds the limit (the rest is drained, not kept). */
async function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= limit) chunks.push(chunk);
  }
  return size <= limit ? Buffer.concat(chunks) : undefined;
}

function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

/** Reads and validates the upload like the real API (an error: the 400's message). */
async function readUpload(
  endpoint: Endpoint,
  headers: IncomingHttpHeaders,
  body: Buffer | undefined,
): Promise<Upload> {
  const fail = (error: string): Upload => ({ ok: false, error });
  if (!body) return fail('Request body too large: image_file must be at most 30 MB');
  const form = await parseMultipart(headers['content-type'], body);
  if (!form) return fail('Expected a multipart/form-data body');

  const file = form.get('image_file');
  if (file === null || typeof file === 'string') return fail('Missing file field image_file');
  const image = Buffer.from(await file.arrayBuffer());
  if (image.length > MAX_FILE_BYTES) return fail('image_file must be at most 30 MB');
  if (!sniffFormat(image)) return fail('image_file must be a PNG, JPEG or WebP image');

  let target: { width: number; height: number } | undefined;
  if (endpoint === 'upscale') {
    const width = targetSide(form.get('target_width'));
    const height = targetSide(form.get('target_height'));
    if (!width || !height) {
      return fail(`target_width and target_height must be integers from 1 to ${MAX_TARGET_SIDE}`);
    }
    target = { width, height };
  }

  let size: { width: number; height: number };
  try {
    size = await dimensions(image);
  } catch {
    return fail('image_file could not be decoded');
  }
  if (size.width * size.height > MAX_PIXELS[endpoint]) {
    return fail(`image_file must be at most ${MAX_PIXELS[endpoint] / 1_000_000} megapixels`);
  }
  return { ok: true, image, size: `${size.width}x${size.height}`, target };
}

/** The image work on a valid upload. */
async function processImage(
  endpoint: Endpoint,
  upload: Extract<Upload, { ok: true }>,
  accept: string | undefined,
): Promise<Outcome> {
  const { image, target } = upload;
  try {
    const encoded =
      endpoint === 'upscale' && target
        ? await upscale(image, target.width, target.height)
        : await removeBackground(image, negotiateFormat(accept));
    const imageHash = createHash('sha256').update(image).digest('hex');
    return { ok: true, imageHash, ...encoded };
  } catch {
    // sharp refused the bytes: a corrupt or truncated image is bad input, not a server error.
    return { ok: false, error: 'image_file could not be decoded' };
  }
}

function countBySize(
  counts: Map<string, Record<Endpoint, number>>,
  size: string,
  endpoint: Endpoint,
  by: number,
): void {
  const entry = counts.get(size) ?? { removeBackground: 0, upscale: 0 };
  entry[endpoint] += by;
  if (entry.removeBackground === 0 && entry.upscale === 0) counts.delete(size);
  else counts.set(size, entry);
}

async function parseMultipart(
  contentType: string | undefined,
  body: Buffer,
): Promise<FormData | undefined> {
  if (!contentType?.toLowerCase().startsWith('multipart/form-data')) return undefined;
  try {
    const request = new Request('http://standin/', {
      method: 'POST',
      headers: { 'content-type': contentType },
      body,
      duplex: 'half',
    });
    return await request.formData();
  } catch {
    return undefined;
  }
}

function targetSide(value: ReturnType<FormData['get']>): number | undefined {
  if (typeof value !== 'string' || !/^\d{1,4}$/.test(value.trim())) return undefined;
  const n = Number(value.trim());
  return n >= 1 && n <= MAX_TARGET_SIDE ? n : undefined;
}

/** The first of PNG, WebP or JPEG that the Accept header names; PNG by default. */
function negotiateFormat(accept: string | undefined): ImageFormat {
  const formats: Record<string, ImageFormat> = {
    'image/png': 'png',
    'image/webp': 'webp',
    'image/jpeg': 'jpeg',
  };
  for (const part of (accept ?? '').split(',')) {
    const format = formats[part.split(';')[0]!.trim().toLowerCase()];
    if (format) return format;
  }
  return 'png';
}
