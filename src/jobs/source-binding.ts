import { createHash } from 'node:crypto';
import { JobError } from './errors.js';

/**
 * A job is bound to its picture (issue 24): the claim records the source it will process on
 * the job (`showcaseJob.source`), and every later attempt of that job (a recovery, a takeover,
 * a job released at shutdown) processes that source, not what `visuals.imageUrl` says then.
 * Pure rules; the job store records, the job run reads and checks.
 */

/** The picture a job processes: its URL, and once read, the SHA-256 (hex) of its bytes. */
export interface BoundSource {
  url: string;
  sha256?: string;
}

/** What the claim knows of the job before it and of the document it claims. */
export interface SourceContext {
  /** The previous job's bound source, when the claim recovers it. */
  recovered?: BoundSource | undefined;
  /** The URL the operator's CLI checked with its click (`showcaseJob.clickedUrl`). */
  clickedUrl?: string | undefined;
  /** `visuals.imageUrl` in the version claimed. */
  imageUrl: string | undefined;
}

/**
 * The source a claim binds its job to: a recovered job keeps its own (a record from before
 * sources were recorded takes the document's, as it did then); an operator's click the URL
 * its CLI checked; any other click the picture the document names in the version claimed.
 */
export function sourceToBind(ctx: SourceContext): BoundSource | undefined {
  if (ctx.recovered) return ctx.recovered;
  const url = ctx.clickedUrl ?? ctx.imageUrl;
  return url === undefined ? undefined : { url };
}

/**
 * Whether the document asks for another picture than the running job's: it shows
 * `removing-background` and names a different `imageUrl`. Either the app clicked with a new
 * picture, or it changed the picture while the document showed `removing-background` (the two
 * look the same: a click is that status, which the job shows through its first stage). Such a
 * request is not coalesced into the job: the job leaves the status alone from then on, so
 * the document is a fresh click once the job ends (a new, counted request).
 */
export function asksForAnotherPicture(
  status: unknown,
  imageUrl: unknown,
  source: BoundSource | undefined,
): boolean {
  return (
    status === 'removing-background' &&
    source !== undefined &&
    typeof imageUrl === 'string' &&
    imageUrl !== source.url
  );
}

/** SHA-256 (hex) of a source's bytes: what the job records, and its work key is named by. */
export function sourceHash(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * A later attempt read other bytes at the recorded URL than the first did (the object was
 * overwritten meanwhile): it fails with SOURCE_CHANGED rather than process (and pay for) a
 * picture its admission never saw. The user clicks again for the new one.
 */
export function checkSameSource(bound: BoundSource | undefined, sha256: string): void {
  if (bound?.sha256 !== undefined && bound.sha256 !== sha256) {
    throw new JobError('SOURCE_CHANGED', {
      detail: `source ${bound.url} now hashes ${sha256.slice(0, 12)}, recorded ${bound.sha256.slice(0, 12)}`,
    });
  }
}
