import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import got, { type Got } from 'got';
import { JobError, classify } from '../../jobs/errors.js';
import { isForbiddenAddress } from './address-policy.js';
import { locateSource, type SourcePolicy } from './url-policy.js';

export interface DownloadLimits {
  maxBytes: number;
  timeoutMs: number;
  maxRedirects: number;
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/**
 * Resolves a name and refuses forbidden addresses. Passed to the socket itself, so the address
 * checked is the address connected to: no window for DNS rebinding.
 */
function guardedLookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, []);
    const allowed = addresses.filter((a) => !isForbiddenAddress(a.address));
    if (allowed.length === 0) {
      const refusal = new JobError('SOURCE_URL_FORBIDDEN', {
        detail: `${hostname} resolves to a forbidden address`,
      });
      return callback(refusal, []);
    }
    if (options.all) return callback(null, allowed);
    const [first] = allowed;
    if (first) callback(null, first.address, first.family);
  });
}

/**
 * Downloads an http(s) source under the policy: every hop (at most `maxRedirects`) is checked,
 * names are resolved through the guard, reading stops at `maxBytes`, and one timeout bounds it.
 */
export function createSafeDownloader(policy: SourcePolicy, limits: DownloadLimits) {
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
        location.trusted,
        deadline,
        limits,
      ).catch((err: unknown) => {
        if (timeout.aborted) {
          throw new JobError('TIMEOUT', { detail: 'source download timed out', cause: err });
        }
        throw err;
      });
      if (response.redirect === undefined) return response.body;
      current = new URL(response.redirect, location.url).toString();
    }
    throw new JobError('SOURCE_URL_FORBIDDEN', { detail: 'too many redirects' });
  };
}

async function fetchOnce(
  http: Got,
  url: URL,
  trusted: boolean,
  signal: AbortSignal,
  limits: DownloadLimits,
): Promise<{ body: Buffer; redirect?: string }> {
  let overCap = false;
  const request = http.get(url, {
    signal,
    ...(trusted ? {} : { dnsLookup: guardedLookup }),
  });
  void request.on('downloadProgress', (progress: { transferred: number; total?: number }) => {
    if (progress.transferred > limits.maxBytes || (progress.total ?? 0) > limits.maxBytes) {
      overCap = true;
      request.cancel();
    }
  });
  try {
    const response = await request;
    const status = response.statusCode;
    if (status >= 300 && status < 400 && response.headers.location) {
      return { body: Buffer.alloc(0), redirect: response.headers.location };
    }
    if (status === 200) return { body: response.rawBody };
    if (status === 429 || status >= 500) {
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
    throw classify(err);
  }
}
