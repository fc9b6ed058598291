import { JobError } from '../../jobs/errors.js';

export interface SourcePolicy {
  /** The configured bucket: the only one `gs://` may name. */
  bucket: string;
  /** host[:port] allowed besides Google's storage hosts; may use http and private addresses. */
  allowedHosts: readonly string[];
  /** The storage emulator's host:port, trusted like an allowed host when set. */
  storageEmulatorHost: string;
}

export type SourceLocation =
  | { kind: 'gs'; bucket: string; path: string }
  /** `trusted`: explicitly allowed, so private addresses are fine (local development). */
  | { kind: 'http'; url: URL; trusted: boolean };

/**
 * Decides where a document's `imageUrl` may be read from (CONTRACT §2 SOURCE_ALLOWED_HOSTS).
 * Everything not expressly allowed is SOURCE_URL_FORBIDDEN; this is checked again for every
 * redirect.
 */
export function locateSource(imageUrl: string, policy: SourcePolicy): SourceLocation {
  let url: URL;
  try {
    url = new URL(imageUrl);
  } catch {
    throw forbidden('not a URL');
  }
  if (url.protocol === 'gs:') {
    if (url.hostname !== policy.bucket.toLowerCase() || url.port || url.username || url.password) {
      throw forbidden(`gs bucket ${url.hostname}`);
    }
    return { kind: 'gs', bucket: policy.bucket, path: gsObjectName(imageUrl) };
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw forbidden(url.protocol);
  if (url.username || url.password) throw forbidden('credentials in URL');
  // URL drops a scheme's default port; put it back so `host:443` entries match too.
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  const hostPort = `${url.hostname}:${port}`;
  const trusted = isExplicitlyAllowed(hostPort, url, policy);
  if (trusted) return { kind: 'http', url, trusted };
  if (url.protocol === 'https:' && !url.port && isGoogleStorageHost(url.hostname, policy.bucket)) {
    return { kind: 'http', url, trusted: false };
  }
  throw forbidden(`host ${url.host}`);
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * The object name of a `gs://bucket/name` URI, read from the raw text: `URL` would resolve
 * `a/../b` to `b` silently, and a name that needs resolving is not one the app wrote. The name
 * is percent-decoded (`%2F` is a slash); dot segments, empty segments and control characters,
 * plain or encoded, are refused.
 */
function gsObjectName(imageUrl: string): string {
  const raw = /^gs:\/\/[^/?#]*\/([^?#]*)/i.exec(imageUrl.trim())?.[1] ?? '';
  let name: string;
  try {
    name = raw
      .split('/')
      .map((segment) => decodeURIComponent(segment))
      .join('/');
  } catch {
    throw forbidden('gs object name badly encoded');
  }
  const segments = [...raw.split('/'), ...name.split('/')];
  if (!name || CONTROL.test(name) || segments.some((s) => s === '' || s === '.' || s === '..')) {
    throw forbidden('gs object name not canonical');
  }
  return name;
}

function isExplicitlyAllowed(hostPort: string, url: URL, policy: SourcePolicy): boolean {
  const allowed = [...policy.allowedHosts, policy.storageEmulatorHost]
    .filter(Boolean)
    .map((h) => h.toLowerCase());
  // A bare host name allows its scheme's default port only; host:port exactly that port.
  return allowed.includes(hostPort) || (!url.port && allowed.includes(url.hostname));
}

function isGoogleStorageHost(host: string, bucket: string): boolean {
  return (
    host === 'firebasestorage.googleapis.com' ||
    host === 'storage.googleapis.com' ||
    host === `${bucket.toLowerCase()}.storage.googleapis.com`
  );
}

function forbidden(detail: string): JobError {
  return new JobError('SOURCE_URL_FORBIDDEN', { detail });
}
