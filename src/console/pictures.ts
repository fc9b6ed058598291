import type { DocumentData } from 'firebase-admin/firestore';
import type { DownloadLimits } from '../adapters/http/safe-download.js';
import type { SourcePolicy } from '../adapters/http/url-policy.js';
import { createSourceFetcher } from '../adapters/source-fetcher.js';
import { createBucketReader, type BucketLike } from '../adapters/storage/bucket.js';
import { parseJobDocument, showcasePath } from '../jobs/document.js';
import { sniffImage } from '../image/sniff.js';

/** Formats a browser shows in an <img>: anything else is not served. */
const SHOWN = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp', gif: 'image/gif' };

export type Picture = { type: string; body: Buffer } | { missing: string };

/**
 * A job's source and result pictures, read by the console and served from its own origin
 * (CSP `img-src 'self'`): the browser never fetches a URL a user chose. The source is read
 * exactly as the worker reads it (the same policy: allowed hosts through the address guard,
 * a `gs://` object only under its owner's paths, the same size cap), the result from the
 * output path. Only a raster format a browser shows, by its first bytes, is served.
 */
export function createPictureReader(
  bucket: BucketLike,
  policy: SourcePolicy,
  limits: DownloadLimits,
) {
  const readBucket = createBucketReader(bucket, limits.maxBytes);
  const sources = createSourceFetcher(policy, limits, readBucket);

  function shown(body: Buffer): Picture {
    const format = sniffImage(body);
    const type = format && format in SHOWN ? SHOWN[format as keyof typeof SHOWN] : undefined;
    return type ? { type, body } : { missing: 'not a picture a browser shows' };
  }

  return {
    async source(data: DocumentData | undefined, signal: AbortSignal): Promise<Picture> {
      const visuals = (data?.visuals ?? {}) as {
        imageUrl?: unknown;
        showcaseJob?: { source?: { url?: unknown } };
      };
      const userId = (data?.meta as { userId?: unknown } | undefined)?.userId;
      // The picture the job is bound to (its claim recorded it), not what the owner names now.
      const bound = visuals.showcaseJob?.source?.url;
      const url = typeof bound === 'string' ? bound : visuals.imageUrl;
      if (typeof url !== 'string') return { missing: 'no source' };
      const owner = typeof userId === 'string' ? userId : '';
      return shown(await sources.fetch(url, owner, signal));
    },
    async result(
      id: string,
      data: DocumentData | undefined,
      signal: AbortSignal,
    ): Promise<Picture> {
      const visuals = (data?.visuals ?? {}) as { showcaseProcessingStatus?: unknown };
      if (visuals.showcaseProcessingStatus !== 'complete') return { missing: 'no result yet' };
      // The worker's own check of the path's segments (INVALID_DOCUMENT when one could escape).
      const spec = parseJobDocument(id, data);
      return shown(await readBucket(showcasePath(spec), signal));
    },
  };
}
