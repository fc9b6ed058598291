import type { LookupAddress } from 'node:dns';
import { createServer, get, type Server } from 'node:http';
import type { AddressInfo, LookupFunction } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createGuardedLookup,
  createSafeDownloader,
  type Resolver,
} from '../../src/adapters/http/safe-download.js';
import type { SourcePolicy } from '../../src/adapters/http/url-policy.js';
import { JobError } from '../../src/jobs/errors.js';

const v4 = (address: string): LookupAddress => ({ address, family: 4 });
const v6 = (address: string): LookupAddress => ({ address, family: 6 });

/** A resolver answering from a table, recording every question. */
function fakeResolver(table: Record<string, LookupAddress[] | LookupAddress[][]>) {
  const asked: string[] = [];
  const resolve: Resolver = (hostname, callback) => {
    const n = asked.filter((h) => h === hostname).length;
    asked.push(hostname);
    const entry = table[hostname];
    if (!entry) {
      const err: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
      err.code = 'ENOTFOUND';
      setImmediate(() => callback(err, []));
      return;
    }
    // A list of lists is a sequence of answers: the first question gets the first, and so on.
    const answer = Array.isArray(entry[0]) ? (entry as LookupAddress[][])[n] : entry;
    setImmediate(() => callback(null, (answer ?? []) as LookupAddress[]));
  };
  return { resolve, asked };
}

interface LookupResult {
  err: NodeJS.ErrnoException | null;
  address: string | LookupAddress[];
  family: number | undefined;
}

function lookup(
  fn: LookupFunction,
  hostname: string,
  options: { all?: boolean; family?: number } = { all: true },
): Promise<LookupResult> {
  return new Promise((resolve) =>
    fn(hostname, options, (err, address, family) => resolve({ err, address, family })),
  );
}

describe('createGuardedLookup (injected resolver)', () => {
  it.each([
    ['loopback', [v4('127.0.0.1')]],
    ['cloud metadata', [v4('169.254.169.254')]],
    ['IPv6 loopback', [v6('::1')]],
    ['IPv4-mapped loopback', [v6('::ffff:127.0.0.1')]],
    ['private', [v4('10.1.2.3')]],
    ['unique local', [v6('fd00::1')]],
    ['unspecified', [v4('0.0.0.0')]],
    ['a mix: public first, metadata second', [v4('8.8.8.8'), v4('169.254.169.254')]],
    ['a mix: public IPv6, loopback IPv4', [v6('2607:f8b0:4004:c1b::80'), v4('127.0.0.1')]],
  ])('refuses a name resolving to %s, whatever the caller asks', async (_what, addresses) => {
    const { resolve } = fakeResolver({ 'storage.googleapis.com': addresses });
    const guard = createGuardedLookup({ resolve });
    for (const options of [{ all: true }, { all: false }, { all: false, family: 4 }]) {
      const result = await lookup(guard, 'storage.googleapis.com', options);
      expect(result.err).toBeInstanceOf(JobError);
      expect((result.err as unknown as JobError).code).toBe('SOURCE_URL_FORBIDDEN');
      // Nothing to connect to is handed back.
      expect(result.address).toEqual([]);
    }
  });

  it('hands public addresses through: all of them, or the first', async () => {
    const addresses = [v4('142.250.64.91'), v6('2607:f8b0:4004:c1b::80')];
    const { resolve, asked } = fakeResolver({ 'storage.googleapis.com': addresses });
    const guard = createGuardedLookup({ resolve });
    expect(await lookup(guard, 'storage.googleapis.com', { all: true })).toEqual({
      err: null,
      address: addresses,
      family: undefined,
    });
    expect(await lookup(guard, 'storage.googleapis.com', { all: false })).toEqual({
      err: null,
      address: '142.250.64.91',
      family: 4,
    });
    expect(await lookup(guard, 'storage.googleapis.com', { all: false, family: 6 })).toEqual({
      err: null,
      address: '2607:f8b0:4004:c1b::80',
      family: 6,
    });
    expect(asked).toEqual(Array(3).fill('storage.googleapis.com'));
  });

  it('passes resolver errors through, and treats no usable address as not found', async () => {
    const { resolve } = fakeResolver({ 'v6only.example': [v6('2607:f8b0:4004:c1b::80')] });
    const guard = createGuardedLookup({ resolve });
    expect((await lookup(guard, 'nowhere.example')).err?.code).toBe('ENOTFOUND');
    const noV4 = await lookup(guard, 'v6only.example', { all: false, family: 4 });
    expect(noV4.err?.code).toBe('ENOTFOUND');
  });
});

describe('the socket connects to the address that was checked', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(
      servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
    );
  });

  /** An HTTP server on `host`, recording the local address each request arrived on. */
  async function serve(host: string, port = 0) {
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(req.socket.localAddress ?? '?');
      res.end('hello');
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(port, host, resolve));
    return { seen, port: (server.address() as AddressInfo).port };
  }

  function fetchWith(guard: LookupFunction, port: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = get(
        { host: 'rebind.example', port, path: '/', lookup: guard, agent: false },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        },
      );
      req.on('error', reject);
    });
  }

  // Two servers on one port: 127.0.0.2 stands for the public address the guard approves (the
  // test widens the policy to exactly that address), 127.0.0.1 for the address a rebinding DNS
  // answers with next. (127.0.0.0/8 is all loopback on Linux, where CI runs.)
  it('resolves once per connection; a rebinding second answer is never connected to', async () => {
    const checked = await serve('127.0.0.2');
    const canary = await serve('127.0.0.1', checked.port);
    const { resolve, asked } = fakeResolver({
      'rebind.example': [[v4('127.0.0.2')], [v4('127.0.0.1')]],
    });
    const approved: string[] = [];
    const guard = createGuardedLookup({
      resolve,
      isForbidden: (address) => {
        const forbidden = address !== '127.0.0.2';
        if (!forbidden) approved.push(address);
        return forbidden;
      },
    });

    expect(await fetchWith(guard, checked.port)).toBe('hello');
    expect(asked).toEqual(['rebind.example']);
    expect(approved).toEqual(['127.0.0.2']);
    expect(checked.seen).toEqual(['127.0.0.2']);

    // The name now answers with the forbidden address: refused before any connection.
    const refused = await fetchWith(guard, checked.port).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(JobError);
    expect((refused as JobError).code).toBe('SOURCE_URL_FORBIDDEN');
    expect(asked).toEqual(['rebind.example', 'rebind.example']);
    expect(canary.seen).toEqual([]);
    expect(checked.seen).toEqual(['127.0.0.2']);
  });
});

describe('createSafeDownloader uses the guard for hosts that are not explicitly allowed', () => {
  const policy = (allowedHosts: string[] = []): SourcePolicy => ({
    bucket: 'my-app.appspot.com',
    allowedHosts,
    storageEmulatorHost: '',
    gsPaths: [],
  });
  const limits = { maxBytes: 1024 * 1024, timeoutMs: 5_000, maxRedirects: 3 };
  const signal = new AbortController().signal;

  async function codeOf(promise: Promise<unknown>): Promise<string> {
    const err = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(JobError);
    return (err as JobError).code;
  }

  it.each([
    ['loopback', [v4('127.0.0.1')]],
    ['cloud metadata', [v4('169.254.169.254')]],
    ['IPv6 loopback', [v6('::1')]],
    ['a mix', [v4('142.250.64.91'), v4('10.0.0.7')]],
  ])('refuses a Google storage name that resolves to %s', async (_what, addresses) => {
    const { resolve, asked } = fakeResolver({ 'firebasestorage.googleapis.com': addresses });
    const download = createSafeDownloader(policy(), limits, { resolve });
    const url = 'https://firebasestorage.googleapis.com/v0/b/my-app.appspot.com/o/a.png?alt=media';
    expect(await codeOf(download(url, signal))).toBe('SOURCE_URL_FORBIDDEN');
    expect(asked).toEqual(['firebasestorage.googleapis.com']);
  });

  it('checks the name of a redirect target, from an allowed host', async () => {
    const server = createServer((_req, res) => {
      res.writeHead(302, { location: 'https://storage.googleapis.com/my-app.appspot.com/a.png' });
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
      const { resolve, asked } = fakeResolver({
        'storage.googleapis.com': [v4('169.254.169.254')],
      });
      const download = createSafeDownloader(policy([host]), limits, { resolve });
      expect(await codeOf(download(`http://${host}/start`, signal))).toBe('SOURCE_URL_FORBIDDEN');
      // The allowed host itself was not resolved through the guard; the redirect target was.
      expect(asked).toEqual(['storage.googleapis.com']);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('a name that does not resolve is SOURCE_NOT_FOUND', async () => {
    const { resolve } = fakeResolver({});
    const download = createSafeDownloader(policy(), limits, { resolve });
    const url = 'https://storage.googleapis.com/my-app.appspot.com/a.png';
    expect(await codeOf(download(url, signal))).toBe('SOURCE_NOT_FOUND');
  });
});
