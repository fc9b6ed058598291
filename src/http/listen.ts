import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Log } from '../jobs/ports.js';

/** A listening HTTP server: its port, and a close that ends open connections too. */
export interface HttpServer {
  port: number;
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

/**
 * Serves `route` on node:http (the worker's probes and the console): resolves once listening;
 * a route that throws is logged as `{prefix}.failed` and answered 500 (or cut if it had
 * started answering), so one bad request never takes the process down.
 */
export async function listen(
  route: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
  opts: {
    port: number;
    host?: string;
    log: Log;
    prefix: string;
    describe: (err: unknown) => string;
  },
): Promise<HttpServer> {
  const server = createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      opts.log.error(`${opts.prefix}.failed`, { path: req.url, detail: opts.describe(err) });
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
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
  server.on('error', (err) => opts.log.error(`${opts.prefix}.error`, { detail: String(err) }));
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

/** A JSON answer, never cached; HEAD gets the headers alone. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}
