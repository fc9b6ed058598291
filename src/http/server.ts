import type { IncomingMessage, ServerResponse } from 'node:http';
import { monotonic } from '../jobs/clock.js';
import type { Log } from '../jobs/ports.js';
import { readinessOf, type HealthState } from '../observability/health.js';
import { listen, sendJson as send, type HttpServer } from './listen.js';

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

export type { HttpServer } from './listen.js';

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

  return listen(route, { ...opts, prefix: 'http', describe: String });
}
