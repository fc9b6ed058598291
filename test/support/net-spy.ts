/**
 * Preload for a worker process under test (`spawnWorker(env, { nodeArgs: ['--import',
 * './test/support/net-spy.ts'] })`): reports every outgoing socket connection, before its DNS
 * look-up, as one stderr line `{"netSpy":{"host":"…","port":…}}`, and every DNS question as
 * `{"dnsSpy":{"host":"…","via":"lookup"}}`. Every client in Node (http, https, http2/gRPC,
 * tls, undici's fetch) connects through `net.Socket.prototype.connect` and resolves through
 * the `dns` module (`lookup`, `resolve*`, their promise forms or a `Resolver`), so nothing the
 * SDKs do escapes it: a test can prove which hosts the worker tried to reach or even name.
 */
import dns from 'node:dns';
import { syncBuiltinESMExports } from 'node:module';
import net from 'node:net';

export const NET_SPY_PREFIX = '{"netSpy":';
export const DNS_SPY_PREFIX = '{"dnsSpy":';

type Connect = (this: net.Socket, ...args: unknown[]) => net.Socket;
type AnyFn = (this: unknown, ...args: unknown[]) => unknown;

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

/** Wraps every look-up function of `holder` (lookup, lookupService, resolve, resolve4, …). */
function spyOnDns(holder: object, label: string): void {
  const table = holder as Record<string, unknown>;
  for (const name of Object.getOwnPropertyNames(holder)) {
    const fn = table[name];
    if (typeof fn !== 'function' || !/^(lookup|resolve|reverse)/.test(name)) continue;
    const real = fn as AnyFn;
    table[name] = function spiedDns(this: unknown, ...args: unknown[]) {
      const host = typeof args[0] === 'string' ? args[0] : String(args[0]);
      process.stderr.write(`${JSON.stringify({ dnsSpy: { host, via: `${label}${name}` } })}\n`);
      return real.apply(this, args);
    };
  }
}

spyOnDns(dns, 'dns.');
spyOnDns(dns.promises, 'dns.promises.');
spyOnDns(dns.Resolver.prototype, 'Resolver#');
spyOnDns(dns.promises.Resolver.prototype, 'promises.Resolver#');
// `import { lookup } from 'node:dns'` binds once; this makes such imports see the spies too.
syncBuiltinESMExports();
