import type { Config } from '../config/load.js';
import type { SourceFetcher } from '../jobs/ports.js';
import { createSafeDownloader, type DownloadLimits } from './http/safe-download.js';
import { locateSource, type SourcePolicy } from './http/url-policy.js';
import { googleRequest } from './round-trip-scope.js';

/** The source policy a configuration sets: the worker's and the CLI's (they must agree). */
export function sourcePolicyOf(config: Config): SourcePolicy {
  return {
    bucket: config.firebase.storageBucket,
    allowedHosts: config.source.allowedHosts,
    storageEmulatorHost: config.firebase.storageEmulatorHost,
    gsPaths: config.source.gsPaths,
  };
}

/**
 * `gs://` sources through the Storage SDK (admin rights: only the owner's objects, checked
 * before any read), http(s) ones through the guarded downloader (no credentials: a Firebase
 * download URL is read through its token, never through the SDK).
 */
export function createSourceFetcher(
  policy: SourcePolicy,
  limits: DownloadLimits,
  readBucket: (path: string, signal: AbortSignal) => Promise<Buffer>,
): SourceFetcher {
  const download = createSafeDownloader(policy, limits);
  return {
    // async: a refusal is a rejected promise, as the port promises, never a synchronous throw.
    async fetch(imageUrl, ownerId, signal) {
      const location = locateSource(imageUrl, policy, ownerId);
      // Counted as a round trip either way: a download URL is Google's storage host too (and
      // any other allowed host delays the job just the same).
      return location.kind === 'gs'
        ? readBucket(location.path, signal)
        : googleRequest(() => download(imageUrl, signal));
    },
  };
}
