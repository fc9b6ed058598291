import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createSafeDownloader,
  type DownloadLimits,
} from '../../src/adapters/http/safe-download.js';
import { JobError } from '../../src/jobs/errors.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** One allowed test host; each test mounts its own paths. */
let server: Server;
let host: string;
const routes = new Map<string, Handler>();
const hits: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    hits.push(req.url ?? '');
    const handler = routes.get((req.url ?? '').split('?')[0] ?? '');
    if (handler) handler(req, res);
    else res.writeHead(404).end('no');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

const limits: DownloadLimits = { maxBytes: 64 * 1024, timeoutMs: 2_000, maxRedirects: 3 };

function downloader(overrides: Partial<DownloadLimits> = {}) {
  return createSafeDownloader(
    { bucket: 'my-app.appspot.com', allowedHosts: [host], storageEmulatorHost: '', gsPaths: [] },
    { ...limits, ...overrides },
  );
}

async function failure(url: string, overrides: Partial<DownloadLimits> = {}) {
  const started = Date.now();
  const err = await downloader(overrides)(url, new AbortController().signal).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, url).toBeInstanceOf(JobError);
  return { error: err as JobError, ms: Date.now() - started };
}

describe('createSafeDownloader', () => {
  it('follows up to three redirects on allowed hosts', async () => {
    routes.set('/r1', (_q, s) => s.writeHead(302, { location: '/r2' }).end());
    routes.set('/r2', (_q, s) => s.writeHead(301, { location: `http://${host}/r3` }).end());
    routes.set('/r3', (_q, s) => s.writeHead(307, { location: '/final' }).end());
    routes.set('/final', (_q, s) => s.writeHead(200).end('bytes'));
    const body = await downloader()(`http://${host}/r1`, new AbortController().signal);
    expect(body.toString()).toBe('bytes');
  });

  it('refuses a fourth redirect, and a loop', async () => {
    routes.set('/r0', (_q, s) => s.writeHead(302, { location: '/r1' }).end());
    expect((await failure(`http://${host}/r0`)).error.code).toBe('SOURCE_URL_FORBIDDEN');
    routes.set('/loop', (_q, s) => s.writeHead(302, { location: '/loop' }).end());
    const before = hits.length;
    const { error } = await failure(`http://${host}/loop`);
    expect(error.code).toBe('SOURCE_URL_FORBIDDEN');
    expect(error.detail).toContain('too many redirects');
    expect(hits.length - before).toBe(4);
  });

  it.each([
    ['file:///etc/passwd', 'a file: URL'],
    ['http://169.254.169.254/latest/meta-data/', 'cloud metadata'],
    ['http://127.0.0.1:1/', 'another port on loopback'],
    ['gs://my-app.appspot.com/raw-uploads/a.png', 'a gs:// URI'],
    ['http://[::1', 'not a URL'],
  ])('refuses a redirect to %s (%s)', async (location) => {
    routes.set('/hop', (_q, s) => s.writeHead(302, { location }).end());
    expect((await failure(`http://${host}/hop`)).error.code).toBe('SOURCE_URL_FORBIDDEN');
  });

  it('refuses a declared Content-Length over the cap before reading the body', async () => {
    routes.set('/huge', (_q, s) => {
      s.writeHead(200, { 'content-length': String(10 * 1024 ** 3) });
      s.write(Buffer.alloc(16));
      // Never ends: only the cap can stop this download in time.
    });
    const { error, ms } = await failure(`http://${host}/huge`);
    expect(error.code).toBe('SOURCE_TOO_LARGE');
    expect(ms).toBeLessThan(1_000);
  });

  it('stops reading a chunked body at the cap, long before the timeout', async () => {
    routes.set('/slow', (_q, s) => {
      s.writeHead(200, { 'content-type': 'image/png' });
      const timer = setInterval(() => s.write(Buffer.alloc(16 * 1024)), 20);
      s.on('close', () => clearInterval(timer));
    });
    const { error, ms } = await failure(`http://${host}/slow`, { timeoutMs: 10_000 });
    expect(error.code).toBe('SOURCE_TOO_LARGE');
    expect(ms).toBeLessThan(2_000);
  });

  it('gives up at the total timeout, even while bytes keep trickling', async () => {
    routes.set('/trickle', (_q, s) => {
      s.writeHead(200);
      const timer = setInterval(() => s.write('x'), 50);
      s.on('close', () => clearInterval(timer));
    });
    const { error, ms } = await failure(`http://${host}/trickle`, { timeoutMs: 400 });
    expect(error.code).toBe('TIMEOUT');
    expect(ms).toBeLessThan(1_500);
  });

  it.each([
    [500, 'SOURCE_UNAVAILABLE', true],
    [503, 'SOURCE_UNAVAILABLE', true],
    [429, 'SOURCE_UNAVAILABLE', true],
    [404, 'SOURCE_NOT_FOUND', false],
    [403, 'SOURCE_NOT_FOUND', false],
    [204, 'SOURCE_NOT_FOUND', false],
  ])('maps status %i to %s (transient: %s)', async (status, code, transient) => {
    routes.set(`/status-${status}`, (_q, s) => s.writeHead(status).end());
    const { error } = await failure(`http://${host}/status-${status}`);
    expect(error.code).toBe(code);
    expect(error.transient).toBe(transient);
  });
});
