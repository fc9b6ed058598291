import type { CollectionReference, DocumentData } from 'firebase-admin/firestore';
import { F } from '../adapters/firestore/job-fields.js';
import { isInProgress } from '../jobs/status.js';

export type ClickResult =
  | { kind: 'clicked'; previous: string | undefined }
  | { kind: 'missing' }
  | { kind: 'no-image' }
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
 * Clicks Process the way the app does (CONTRACT §1: status `removing-background`), marked as
 * the operator's (docs/fairness.md), in a transaction that re-reads the document first: a character that vanished, has
 * no image, is already being processed or no longer matches `stillWanted` is left alone.
 */
export async function clickProcess(
  characters: CollectionReference<DocumentData>,
  id: string,
  stillWanted: (visuals: Visuals) => string | undefined = () => undefined,
): Promise<ClickResult> {
  const ref = characters.doc(id);
  return characters.firestore.runTransaction(async (tx): Promise<ClickResult> => {
    const snap = await tx.get(ref);
    if (!snap.exists) return { kind: 'missing' };
    const visuals = visualsOf(snap.data());
    if (!hasImage(visuals)) return { kind: 'no-image' };
    const status = visuals.showcaseProcessingStatus;
    if (isInProgress(status)) return { kind: 'in-progress', status };
    const reason = stillWanted(visuals);
    if (reason !== undefined) return { kind: 'changed', reason };
    // The mark (a worker-owned field clients cannot write) keeps this click off the owner's
    // per-user limits: the claim turns it into showcaseJob.requestedBy = 'operator'.
    tx.update(ref, { [F.status]: 'removing-background', [`${F.job}.click`]: 'operator' });
    return { kind: 'clicked', previous: typeof status === 'string' ? status : undefined };
  });
}
