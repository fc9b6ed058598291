import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import got, { type Got } from 'got';
import { JobError, classify } from '../../jobs/errors.js';
import { isForbiddenAddress } from './address-policy.js';
import { locateSource, type SourcePolicy } from './url-policy.js';

export interface DownloadLimits {
  maxBytes: number;
  timeoutMs: number;
  maxRedirects: number;
}

/** Resolves a host name to every address it has (the system resolver unless injected). */
export type Resolver = (
  hostname: string,
  callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
) => void;

export const systemResolver: Resolver = (hostname, callback) =>
  dnsLookup(hostname, { all: true, verbatim: true }, callback);

export interface LookupGuardOptions {
  /** Default: the system resolver (getaddrinfo, as Node's sockets use). */
  resolve?: Resolver;
  /** Default: `isForbiddenAddress`; a test may widen it to reach a loopback server. */
  isForbidden?: (address: string) => boolean;
}

/**
 * A `lookup` for the socket itself: resolves the name once and refuses it when any address is
 * forbidden (a name with one private address among public ones is an attack, not a CDN).
 * Because the socket connects to exactly the addresses handed back here, the address checked
 * is the address connected to: there is no second resolution for DNS rebinding to win.
 */
export function createGuardedLookup(opts: LookupGuardOptions = {}): LookupFunction {
  const resolve = opts.resolve ?? systemResolver;
  const isForbidden = opts.isForbidden ?? isForbiddenAddress;
  return (hostname, options, callback) => {
    resolve(hostname, (err, addresses) => {
      if (err) return callback(err, []);
      const forbidden = addresses.find((a) => isForbidden(a.address));
      if (forbidden) {
        const refusal = new JobError('SOURCE_URL_FORBIDDEN', {
          detail: `${hostname} resolves to a forbidden address (${forbidden.address})`,
        });
        return callback(refusal, []);
      }
      const family = options.family === 4 || options.family === 6 ? options.family : undefined;
      const usable = addresses.filter((a) => family === undefined || a.family === family);
      const [first] = usable;
      if (!first) {
        const missing: NodeJS.ErrnoException = new Error(`${hostname} has no usable address`);
        missing.code = 'ENOTFOUND';
        return callback(missing, []);
      }
      if (options.all) return callback(null, usable);
      callback(null, first.address, first.family);
    });
  };
}

/**
 * Downloads an http(s) source under the policy: every hop (at most `maxRedirects`) is checked,
 * names are resolved through the guard, reading stops at `maxBytes`, and one timeout bounds it.
 */
export function createSafeDownloader(
  policy: SourcePolicy,
  limits: DownloadLimits,
  guard: LookupGuardOptions = {},
) {
  const lookup = createGuardedLookup(guard);
  const base = got.extend({
    retry: { limit: 0 },
    followRedirect: false,
    throwHttpErrors: false,
    // Images are already compressed; refusing encodings keeps the byte cap honest (no zip bombs).
    decompress: false,
    responseType: 'buffer',
    headers: { 'user-agent': 'showcase-worker', accept: 'image/*', 'accept-encoding': 'identity' },
  });

  return async function download(imageUrl: string, signal: AbortSignal): Promise<Buffer> {
    const timeout = AbortSignal.timeout(limits.timeoutMs);
    const deadline = AbortSignal.any([signal, timeout]);
    let current = imageUrl;
    for (let hop = 0; hop <= limits.maxRedirects; hop += 1) {
      const location = locateSource(current, policy);
      if (location.kind !== 'http') {
        throw new JobError('SOURCE_URL_FORBIDDEN', { detail: 'redirect out of http(s)' });
      }
      const response = await fetchOnce(
        base,
        location.url,
        location.trusted ? undefined : lookup,
        deadline,
        limits,
      ).catch((err: unknown) => {
        if (timeout.aborted) {
          throw new JobError('TIMEOUT', { detail: 'source download timed out', cause: err });
        }
        throw err;
      });
      if (response.redirect === undefined) return response.body;
      current = resolveRedirect(response.redirect, location.url);
    }
    throw new JobError('SOURCE_URL_FORBIDDEN', { detail: 'too many redirects' });
  };
}

/** The next hop's absolute URL; a Location that is not a URL ends the download. */
function resolveRedirect(location: string, base: URL): string {
  try {
    return new URL(location, base).toString();
  } catch {
    throw new JobError('SOURCE_URL_FORBIDDEN', { detail: 'redirect to an invalid URL' });
  }
}

/** One hop. `lookup` is the guard for hosts that were not explicitly allowed. */
async function fetchOnce(
  http: Got,
  url: URL,
  lookup: LookupFunction | undefined,
  signal: AbortSignal,
  limits: DownloadLimits,
): Promise<{ body: Buffer; redirect?: string }> {
  // Sockets skip `lookup` for an IP literal: judge it here (the URL policy already refuses
  // them for hosts that are not allowed; this keeps the guard whole on its own).
  const literal = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (lookup && isIP(literal) && isForbiddenAddress(literal)) {
    throw new JobError('SOURCE_URL_FORBIDDEN', { detail: `address ${literal}` });
  }
  let overCap = false;
  // Stops the download past the cap (got's requests have no cancel() of their own).
  const cap = new AbortController();
  const request = http.get(url, {
    signal: AbortSignal.any([signal, cap.signal]),
    ...(lookup ? { dnsLookup: lookup } : {}),
  });
  void request.on('downloadProgress', (progress: { transferred: number; total?: number }) => {
    if (progress.transferred > limits.maxBytes || (progress.total ?? 0) > limits.maxBytes) {
      overCap = true;
      cap.abort();
    }
  });
  try {
    const response = await request;
    const status = response.statusCode;
    if (status >= 300 && status < 400 && response.headers.location) {
      return { body: Buffer.alloc(0), redirect: response.headers.location };
    }
    if (status === 200) {
      // got reads the body as a plain Uint8Array: a Buffer over the same bytes, not a copy.
      const raw = response.rawBody;
      return { body: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength) };
    }
    if (status === 408 || status === 429 || status >= 500) {
      throw new JobError('SOURCE_UNAVAILABLE', { detail: `source answered ${status}` });
    }
    throw new JobError('SOURCE_NOT_FOUND', { detail: `source answered ${status}` });
  } catch (err) {
    if (overCap) {
      throw new JobError('SOURCE_TOO_LARGE', { detail: `over ${limits.maxBytes} bytes` });
    }
    const cause = (err as { cause?: unknown }).cause;
    if (cause instanceof JobError) throw cause;
    if (err instanceof JobError || signal.aborted) throw err;
    if ((err as { code?: unknown }).code === 'ENOTFOUND') {
      throw new JobError('SOURCE_NOT_FOUND', { detail: `no such host ${url.hostname}` });
    }
    throw classify(err);
  }
}
