import type { SourceFetcher } from '../jobs/ports.js';
import { createSafeDownloader, type DownloadLimits } from './http/safe-download.js';
import { locateSource, type SourcePolicy } from './http/url-policy.js';

/** `gs://` sources through the Storage SDK, http(s) ones through the guarded downloader. */
export function createSourceFetcher(
  policy: SourcePolicy,
  limits: DownloadLimits,
  readBucket: (path: string) => Promise<Buffer>,
): SourceFetcher {
  const download = createSafeDownloader(policy, limits);
  return {
    fetch(imageUrl, signal) {
      const location = locateSource(imageUrl, policy);
      return location.kind === 'gs' ? readBucket(location.path) : download(imageUrl, signal);
    },
  };
}
