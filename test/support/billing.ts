/**
 * Each job's ClipDrop bill, as the stand-in saw it and as the job's document says: every job
 * gets a picture of its own size, which the stand-in records for each paid call and each call
 * in flight at both endpoints (the upscale input is the cut-out, re-encoded at the same size).
 */
import type { DocumentData, Firestore } from 'firebase-admin/firestore';
import type { ClipdropStandinStats, Endpoint } from '../../dev/clipdrop-standin.js';
import { characterPicture } from './images.js';
import { BUCKET, type Stack } from './stack.js';

export type Calls = Record<Endpoint, number>;
export const ENDPOINTS: readonly Endpoint[] = ['removeBackground', 'upscale'];

/** The stand-in's key for a picture: "WxH". */
export const sizeKey = (width: number, height: number) => `${width}x${height}`;

/**
 * Uploads one picture per id, each its own size (24 + i by 24 px) and colour, under
 * `raw-uploads/{userId}/{id}.png` (where `stack.click` points). Returns id → size key.
 */
export async function seedSized(
  stack: Stack,
  ids: readonly string[],
  userId = 'user-1',
): Promise<Map<string, string>> {
  const sizes = new Map<string, string>();
  await Promise.all(
    ids.map(async (id, i) => {
      const width = 24 + i;
      const picture = await characterPicture(width, 24, 'png', i + 1);
      stack.storage.putObject(BUCKET, `raw-uploads/${userId}/${id}.png`, picture);
      sizes.set(id, sizeKey(width, 24));
    }),
  );
  return sizes;
}

/** Paid calls for one picture; `answered`: only those answered in that span (stand-in clock). */
export function paidFor(
  stats: ClipdropStandinStats,
  size: string,
  answered: { from?: number; to?: number } = {},
): Calls {
  const calls: Calls = { removeBackground: 0, upscale: 0 };
  for (const p of stats.paid) {
    const within =
      (answered.from === undefined || p.at >= answered.from) &&
      (answered.to === undefined || p.at <= answered.to);
    if (p.size === size && within) calls[p.endpoint] += 1;
  }
  return calls;
}

/** The calls in flight now, by picture (a copy: it does not change with the stand-in). */
export function inFlightNow(stats: ClipdropStandinStats): Map<string, Calls> {
  return new Map([...stats.inFlightBySize].map(([size, calls]) => [size, { ...calls }]));
}

export const inFlightFor = (snapshot: Map<string, Calls>, size: string): Calls =>
  snapshot.get(size) ?? { removeBackground: 0, upscale: 0 };

/** Every paid call, by endpoint. */
export function paidTotal(stats: ClipdropStandinStats): Calls {
  const calls: Calls = { removeBackground: 0, upscale: 0 };
  for (const p of stats.paid) calls[p.endpoint] += 1;
  return calls;
}

/** A character document's job record, as far as these tests read it. */
export interface JobRecord {
  owner?: string | null;
  state?: string;
  attempts?: number;
  jobId?: string;
  calls?: Calls;
}

export const jobOf = (d: DocumentData | undefined): JobRecord =>
  (d?.visuals as { showcaseJob?: JobRecord } | undefined)?.showcaseJob ?? {};

/** Each id's running job's owner as the documents say now (absent: not running). */
export async function ownersOf(
  db: Firestore,
  ids: readonly string[],
): Promise<Map<string, string>> {
  const owners = new Map<string, string>();
  const snaps = await Promise.all(ids.map((id) => db.doc(`characters/${id}`).get()));
  snaps.forEach((snap, i) => {
    const job = jobOf(snap.data());
    if (job.state === 'running' && job.owner) owners.set(ids[i]!, job.owner);
  });
  return owners;
}
