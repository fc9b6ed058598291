import { JobError } from '../../jobs/errors.js';
import { judgeGsSource } from '../../jobs/gs-paths.js';

export interface SourcePolicy {
  /** The configured bucket: the only one `gs://` may name. */
  bucket: string;
  /** host[:port] allowed besides Google's storage hosts; may use http and private addresses. */
  allowedHosts: readonly string[];
  /** The storage emulator's host:port: its Firebase download endpoint (`/v0/b/`) only. */
  storageEmulatorHost: string;
  /** SOURCE_GS_PATHS: patterns (`{userId}`, `*`, `**`) binding a `gs://` object to its owner. */
  gsPaths: readonly string[];
}

export type SourceLocation =
  | { kind: 'gs'; bucket: string; path: string }
  /** `trusted`: explicitly allowed, so private addresses are fine (local development). */
  | { kind: 'http'; url: URL; trusted: boolean };

/**
 * Decides where a document's `imageUrl` may be read from (CONTRACT §2 SOURCE_ALLOWED_HOSTS,
 * SOURCE_GS_PATHS). Everything not expressly allowed is SOURCE_URL_FORBIDDEN; this is checked
 * again for every redirect. A `gs://` object is read with the worker's admin rights, so it must
 * belong to `ownerId` (the document's `meta.userId`); without an owner none is allowed. An
 * http(s) URL is fetched with no credentials at all: a Firebase download URL's token is the
 * capability, whoever's object it names.
 */
export function locateSource(
  imageUrl: string,
  policy: SourcePolicy,
  ownerId?: string,
): SourceLocation {
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
    const path = gsObjectName(imageUrl);
    const verdict = judgeGsSource(path, ownerId, policy.gsPaths);
    if (!verdict.ok) throw forbidden(verdict.reason);
    return { kind: 'gs', bucket: policy.bucket, path };
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw forbidden(url.protocol);
  if (url.username || url.password) throw forbidden('credentials in URL');
  // URL drops a scheme's default port; put it back so `host:443` entries match too.
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  const hostPort = `${url.hostname}:${port}`;
  if (isAllowedHost(hostPort, url, policy.allowedHosts))
    return { kind: 'http', url, trusted: true };
  if (isAllowedHost(hostPort, url, [policy.storageEmulatorHost])) {
    // An emulator answers its JSON API to anyone as if to an admin (no credentials exist
    // there): only its Firebase download endpoint, which checks the token, is a source.
    if (!url.pathname.startsWith('/v0/b/')) throw forbidden('storage emulator API path');
    return { kind: 'http', url, trusted: true };
  }
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

function isAllowedHost(hostPort: string, url: URL, hosts: readonly string[]): boolean {
  const allowed = hosts.filter(Boolean).map((h) => h.toLowerCase());
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
