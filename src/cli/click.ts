import type { CollectionReference, DocumentData } from 'firebase-admin/firestore';
import { F } from '../adapters/firestore/job-fields.js';
import { locateSource, type SourcePolicy } from '../adapters/http/url-policy.js';
import { JobError } from '../jobs/errors.js';
import { isInProgress } from '../jobs/status.js';

export type ClickResult =
  | { kind: 'clicked'; previous: string | undefined }
  | { kind: 'missing' }
  | { kind: 'no-image' }
  /** The worker would refuse its source (SOURCE_URL_FORBIDDEN): a click would only fail. */
  | { kind: 'forbidden'; reason: string }
  /** Already requested or running: a second click would only be coalesced. */
  | { kind: 'in-progress'; status: string }
  /** The document no longer matches what the command selected it for. */
  | { kind: 'changed'; reason: string };

/** The fields of a character the commands look at. */
export interface Visuals {
  imageUrl?: unknown;
  showcaseProcessingStatus?: unknown;
  showcaseImageUrl?: unknown;
  isShowcaseProcessed?: unknown;
  showcaseProcessingError?: { code?: unknown; at?: unknown; stage?: unknown; message?: unknown };
  showcaseJob?: Record<string, unknown>;
}

export function visualsOf(data: DocumentData | undefined): Visuals {
  const visuals: unknown = data?.visuals;
  return visuals && typeof visuals === 'object' ? visuals : {};
}

export function hasImage(visuals: Visuals): boolean {
  return typeof visuals.imageUrl === 'string' && visuals.imageUrl.trim() !== '';
}

/**
 * Why the worker would refuse this character's source with SOURCE_URL_FORBIDDEN (the same
 * policy: hosts, and a `gs://` object bound to `meta.userId`), or undefined when it would not.
 */
export function sourceRefusal(
  data: DocumentData | undefined,
  policy: SourcePolicy,
): string | undefined {
  const imageUrl = visualsOf(data).imageUrl;
  if (typeof imageUrl !== 'string') return undefined;
  const meta: unknown = data?.meta;
  const userId =
    meta && typeof meta === 'object' ? (meta as { userId?: unknown }).userId : undefined;
  try {
    locateSource(imageUrl, policy, typeof userId === 'string' ? userId : undefined);
    return undefined;
  } catch (err) {
    if (err instanceof JobError && err.code === 'SOURCE_URL_FORBIDDEN') {
      return err.detail ?? 'source not allowed';
    }
    throw err;
  }
}

/**
 * Clicks Process the way the app does (CONTRACT §1: status `removing-background`), marked as
 * the operator's (docs/fairness.md), in a transaction that re-reads the document first: a character that vanished, has
 * no image, is already being processed, no longer matches `stillWanted` or has a source the
 * worker's policy refuses (`sources`) is left alone.
 */
export async function clickProcess(
  characters: CollectionReference<DocumentData>,
  id: string,
  opts: {
    stillWanted?: (visuals: Visuals) => string | undefined;
    sources?: SourcePolicy;
  } = {},
): Promise<ClickResult> {
  const ref = characters.doc(id);
  return characters.firestore.runTransaction(async (tx): Promise<ClickResult> => {
    const snap = await tx.get(ref);
    if (!snap.exists) return { kind: 'missing' };
    const visuals = visualsOf(snap.data());
    if (!hasImage(visuals)) return { kind: 'no-image' };
    const status = visuals.showcaseProcessingStatus;
    if (isInProgress(status)) return { kind: 'in-progress', status };
    const reason = opts.stillWanted?.(visuals);
    if (reason !== undefined) return { kind: 'changed', reason };
    const refusal = opts.sources && sourceRefusal(snap.data(), opts.sources);
    if (refusal) return { kind: 'forbidden', reason: refusal };
    // The mark (a worker-owned field clients cannot write) keeps this click off the owner's
    // per-user limits: the claim turns it into showcaseJob.requestedBy = 'operator'.
    // The picture checked here is the one processed (clickedUrl): the claim binds the job to
    // it, whatever the owner changes `imageUrl` to before then (src/jobs/source-binding.ts).
    tx.update(ref, {
      [F.status]: 'removing-background',
      [`${F.job}.click`]: 'operator',
      [`${F.job}.clickedUrl`]: visuals.imageUrl,
    });
    return { kind: 'clicked', previous: typeof status === 'string' ? status : undefined };
  });
}

/** A failure's error code, as the worker wrote it (`UNKNOWN` when it wrote none). */
export function failureCode(visuals: Visuals): string {
  const code = visuals.showcaseProcessingError?.code;
  return typeof code === 'string' ? code : 'UNKNOWN';
}

/**
 * For a click of a character selected as failed (with one of `codes`, if given): why it should
 * no longer be clicked, re-checked in the click's transaction, or undefined when it still
 * matches. `retry-failed` and the console's Retry all of a code select with it.
 */
export function stillFailed(codes?: readonly string[]): (visuals: Visuals) => string | undefined {
  return (visuals) => {
    const status = visuals.showcaseProcessingStatus;
    if (status !== 'failed') return `now ${typeof status === 'string' ? status : 'not requested'}`;
    const code = failureCode(visuals);
    return codes && !codes.includes(code) ? `now failed with ${code}` : undefined;
  };
}
