/**
 * A memoising front for the ClipDrop stand-in, for the memory scenario only: the first
 * request for a given (endpoint, image, target size) goes to the stand-in; identical ones
 * get the same answer replayed. ClipDrop runs on someone else's machine in production, so
 * without this the stand-in's own WebP encoding of 12-megapixel images (about 5 s of CPU a
 * call here) would compete with the worker for the bench machine's cores. Everything the
 * worker sees (status, body, headers) is what the stand-in answered.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface MemoClipdrop {
  url: string;
  stats: {
    calls: number;
    forwarded: number;
    replayed: number;
    responses: Record<string, number>;
    inFlight: number;
    maxInFlight: number;
  };
  reset(): void;
  close(): Promise<void>;
}

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

async function readAll(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** The request's meaning, independent of its multipart boundary. */
async function keyOf(path: string, contentType: string, body: Buffer): Promise<string> {
  const hash = createHash('sha256').update(path);
  try {
    const form = await new Request('http://memo/', {
      method: 'POST',
      headers: { 'content-type': contentType },
      body,
    }).formData();
    for (const [name, value] of [...form.entries()].sort(([a], [b]) => a.localeCompare(b))) {
      hash.update(`\0${name}\0`);
      hash.update(typeof value === 'string' ? value : Buffer.from(await value.arrayBuffer()));
    }
  } catch {
    hash.update(body);
  }
  return hash.digest('hex');
}

export async function startMemoClipdrop(target: string): Promise<MemoClipdrop> {
  const answers = new Map<string, Promise<Answer>>();
  const stats: MemoClipdrop['stats'] = {
    calls: 0,
    forwarded: 0,
    replayed: 0,
    responses: {},
    inFlight: 0,
    maxInFlight: 0,
  };
  const sockets = new Set<Socket>();

  async function forward(req: IncomingMessage, body: Buffer): Promise<Answer> {
    stats.forwarded++;
    const headers: Record<string, string> = {};
    for (const name of ['x-api-key', 'content-type', 'accept']) {
      const value = req.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    const response = await fetch(`${target}${req.url ?? '/'}`, {
      method: req.method ?? 'POST',
      headers,
      body,
    });
    const out: Record<string, string> = {};
    response.headers.forEach((value, name) => {
      if (name.startsWith('x-') || name === 'content-type' || name === 'retry-after') {
        out[name] = value;
      }
    });
    return {
      status: response.status,
      headers: out,
      body: Buffer.from(await response.arrayBuffer()),
    };
  }

  const server = createServer((req, res) => {
    stats.calls++;
    stats.inFlight++;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    res.on('close', () => stats.inFlight--);
    void (async () => {
      const body = await readAll(req);
      const key = await keyOf(req.url ?? '', String(req.headers['content-type'] ?? ''), body);
      let answer = answers.get(key);
      if (answer) {
        stats.replayed++;
      } else {
        answer = forward(req, body);
        answers.set(key, answer);
      }
      const { status, headers, body: out } = await answer;
      // Only successes are worth replaying; errors are asked again next time.
      if (status !== 200) answers.delete(key);
      stats.responses[status] = (stats.responses[status] ?? 0) + 1;
      res.writeHead(status, { ...headers, 'content-length': out.length });
      res.end(out);
    })().catch(() => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stats,
    reset() {
      Object.assign(stats, { calls: 0, forwarded: 0, replayed: 0, responses: {} });
      stats.maxInFlight = stats.inFlight;
    },
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
