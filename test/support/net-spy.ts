/**
 * Preload for a worker process under test (`spawnWorker(env, { nodeArgs: ['--import',
 * './test/support/net-spy.ts'] })`): reports every outgoing socket connection, before its DNS
 * look-up, as one stderr line `{"netSpy":{"host":"…","port":…}}`. Every client in Node (http,
 * https, http2/gRPC, tls, undici's fetch) connects through `net.Socket.prototype.connect`, so
 * nothing the SDKs do escapes it: a test can prove which hosts the worker tried to reach.
 */
import net from 'node:net';

export const NET_SPY_PREFIX = '{"netSpy":';

type Connect = (this: net.Socket, ...args: unknown[]) => net.Socket;

const original = (net.Socket.prototype as unknown as { connect: Connect }).connect;

function target(args: unknown[]): { host?: string; port?: unknown; path?: string } {
  // Node normalises connect's overloads into an array whose first element is the options.
  const first: unknown = Array.isArray(args[0]) ? (args[0] as unknown[])[0] : args[0];
  if (first && typeof first === 'object') {
    const o = first as { host?: string; port?: unknown; path?: string };
    return { host: o.host ?? (o.path ? undefined : 'localhost'), port: o.port, path: o.path };
  }
  if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    return { host: typeof args[1] === 'string' ? args[1] : 'localhost', port: first };
  }
  return { path: typeof first === 'string' ? first : undefined };
}

(net.Socket.prototype as unknown as { connect: Connect }).connect = function spiedConnect(
  this: net.Socket,
  ...args: unknown[]
) {
  const { host, port, path } = target(args);
  if (!path) process.stderr.write(`${JSON.stringify({ netSpy: { host, port } })}\n`);
  return original.apply(this, args);
};
