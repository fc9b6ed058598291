import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { monotonic } from '../jobs/clock.js';
import type { Log } from '../jobs/ports.js';
import { readinessOf, type HealthState } from '../observability/health.js';

export interface HttpServerOptions {
  /** 0 picks a free port (tests); the worker only starts a server when PORT > 0. */
  port: number;
  /** Interface to bind; default all (what Heroku, Render and containers need). */
  host?: string;
  health: HealthState;
  metrics: { render(): Promise<{ contentType: string; body: string }> };
  log: Log;
  now?: () => number;
}

export interface HttpServer {
  port: number;
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

/**
 * The operator's window into a running worker, on node:http (no framework for three routes):
 * - `GET /healthz`: 200 while the process runs (liveness: restart it when this fails);
 * - `GET /readyz`: 200 when it is ready to work, else 503 with the reasons (observability/health.ts);
 * - `GET /metrics`: Prometheus text format (observability/metrics.ts).
 * HEAD works on each; other methods get 405, other paths 404.
 */
export async function startHttpServer(opts: HttpServerOptions): Promise<HttpServer> {
  // Readiness is about durations: the monotonic clock (the health times are on it too).
  const now = opts.now ?? monotonic;

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://worker').pathname;
    if (!['/healthz', '/readyz', '/metrics'].includes(path)) {
      return send(res, 404, { error: 'not found', routes: ['/healthz', '/readyz', '/metrics'] });
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return send(res, 405, { error: 'method not allowed' });
    }
    if (path === '/healthz') return send(res, 200, { status: 'ok' });
    if (path === '/readyz') {
      const readiness = readinessOf(opts.health, now());
      return send(res, readiness.ready ? 200 : 503, {
        status: readiness.ready ? 'ready' : 'not ready',
        ...readiness,
      });
    }
    const { contentType, body } = await opts.metrics.render();
    res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  const server = createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      opts.log.error('http.failed', { path: req.url, detail: String(err) });
      if (!res.headersSent) send(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => opts.log.error('http.error', { detail: String(err) }));
  const { port } = server.address() as AddressInfo;

  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}
