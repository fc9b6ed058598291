import { ReplaySubject, type Observable } from 'rxjs';
import { parseJobDocument, type JobSpec } from '../jobs/document.js';
import type { JobRequest } from '../jobs/ports.js';

/** A source download started before the claim answers; see prefetchSource. */
export interface Prefetched {
  url: string;
  userId: string;
  /** The bytes, once: the prefetch then lets go of them (the job drops them after stage 1). */
  take(): Observable<Buffer> | undefined;
}

/**
 * A fresh click seen by the listener carries its document: its source download starts
 * alongside the claim instead of after it, one round trip less on the job's path. Nothing is
 * paid for before the claim succeeds; a claim that is refused only stops the download. The
 * job uses it only if its claim bound it to the same URL, for the same owner (the fetcher
 * checks a `gs://` source against that owner).
 */
export function prefetchSource(
  request: JobRequest,
  fetch: (url: string, userId: string) => Observable<Buffer>,
  /**
   * What the job store says the claim will bind the job to (`EarlyDownloads`): `null`, wait
   * for the claim (over the request limit, say); absent, the document's `imageUrl`.
   */
  early?: string | null,
): { source: Prefetched; stop: () => void } | undefined {
  if (request.document === undefined || early === null) return undefined;
  let spec: JobSpec;
  try {
    spec = parseJobDocument(request.characterId, request.document);
  } catch {
    return undefined; // the job reports the invalid document after its claim
  }
  const url = early ?? spec.imageUrl;
  let bytes: ReplaySubject<Buffer> | undefined = new ReplaySubject<Buffer>(1);
  const subscription = fetch(url, spec.userId).subscribe(bytes);
  const take = () => {
    const taken = bytes;
    bytes = undefined;
    return taken;
  };
  return {
    source: { url, userId: spec.userId, take },
    stop: () => subscription.unsubscribe(),
  };
}
