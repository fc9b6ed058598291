/**
 * BASELINE ONLY — NOT PRODUCTION CODE. Lives in bench/ so that the benchmark can compare the
 * worker with what it replaces, measured on the same machine in the same run.
 *
 * It behaves like the original notebook (shared/seed/original-tutorial-es.md): every
 * POLL_SECONDS it queries the characters whose status is one of the three in-progress
 * values and processes them one at a time — download the source, status
 * `removing-background`, ClipDrop remove-background, status `upscaling`, ClipDrop upscale,
 * status `finalizing`, upload the answer as it is (labelled image/png, as the notebook did),
 * write `complete`; on any error, status `failed`. No retries, no leases, no concurrency.
 *
 * Differences from the notebook, all in the baseline's favour or needed to run at all:
 * - the upscale call goes to the endpoint that exists (`image-upscaling/v1/upscale`, 2x);
 *   the notebook's `super-resolution/v1` no longer does;
 * - `gs://` sources are read through the Storage SDK (the notebook's `requests.get` could
 *   not read them); `http(s)` ones with fetch;
 * - `make_public()` is skipped (no ACLs under uniform bucket access, nor in the stand-in);
 * - its first status write also sets `visuals.showcaseJob = {owner: 'baseline-poller', ...}`
 *   so that the benchmark sees its first write the same way it sees the worker's claim.
 *
 * Environment: FIRESTORE_EMULATOR_HOST, FIREBASE_STORAGE_EMULATOR_HOST, GOOGLE_CLOUD_PROJECT,
 * STORAGE_BUCKET, CLIPDROP_API_URL, CLIPDROP_API_KEY, POLL_SECONDS (default 60),
 * FIRESTORE_COLLECTION (default characters). Logs one JSON object per line on stdout.
 * If the first stdin line is `{"firstPollAt": <ms epoch>}`, the first poll waits until then
 * (the bench uses it to put clicks at a known phase of the polling cycle); otherwise it polls
 * at once. Stops on SIGTERM after the job in hand.
 */
import { createInterface } from 'node:readline';
import { initializeApp } from 'firebase-admin/app';
import { FieldValue, getFirestore, type DocumentReference } from 'firebase-admin/firestore';
import { getStorage } from 'firebase-admin/storage';
import sharp from 'sharp';

const env = (name: string, fallback?: string): string => {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === '') throw new Error(`${name} is required`);
  return value;
};

const POLL_SECONDS = Number(env('POLL_SECONDS', '60'));
const PROJECT = env('GOOGLE_CLOUD_PROJECT');
const BUCKET = env('STORAGE_BUCKET');
const CLIPDROP_API_URL = env('CLIPDROP_API_URL').replace(/\/+$/, '');
const CLIPDROP_API_KEY = env('CLIPDROP_API_KEY');
const COLLECTION = env('FIRESTORE_COLLECTION', 'characters');
const STORAGE_HOST = process.env.FIREBASE_STORAGE_EMULATOR_HOST ?? '';
const IN_PROGRESS = ['removing-background', 'upscaling', 'finalizing'];

const log = (message: string, fields: Record<string, unknown> = {}) =>
  process.stdout.write(`${JSON.stringify({ level: 'info', message, ...fields })}\n`);

const app = initializeApp({ projectId: PROJECT, storageBucket: BUCKET }, 'baseline-poller');
const db = getFirestore(app);
const bucket = getStorage(app).bucket(BUCKET);

let stopping = false;
let wake: () => void = () => undefined;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    stopping = true;
    wake();
  });
}

function sleepUntil(at: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, Math.max(0, at - Date.now()));
    wake = () => {
      clearTimeout(timer);
      resolve();
    };
  });
}

async function download(url: string): Promise<Buffer> {
  if (url.startsWith('gs://')) {
    const [, , bucketName = '', ...rest] = url.split('/');
    const [data] = await getStorage(app).bucket(bucketName).file(rest.join('/')).download();
    return data;
  }
  const response = await fetch(url);
  if (!response.ok) throw new Error(`download failed: HTTP ${response.status}`);
  return Buffer.from(await response.arrayBuffer());
}

async function clipdrop(path: string, form: FormData): Promise<Buffer> {
  const response = await fetch(`${CLIPDROP_API_URL}/${path}`, {
    method: 'POST',
    headers: { 'x-api-key': CLIPDROP_API_KEY },
    body: form,
  });
  const body = Buffer.from(await response.arrayBuffer());
  if (!response.ok) {
    throw new Error(`Error en la API de ClipDrop (${path}): ${response.status} ${body.toString()}`);
  }
  return body;
}

async function processOne(ref: DocumentReference, data: FirebaseFirestore.DocumentData) {
  const started = Date.now();
  const visuals = (data.visuals ?? {}) as Record<string, unknown>;
  const imageUrl = visuals.imageUrl;
  if (typeof imageUrl !== 'string' || !imageUrl) throw new Error('no imageUrl');
  const image = await download(imageUrl);

  await ref.update({
    'visuals.showcaseProcessingStatus': 'removing-background',
    'visuals.showcaseJob': { owner: 'baseline-poller', pickedAt: FieldValue.serverTimestamp() },
  });
  const form1 = new FormData();
  form1.set('image_file', new Blob([image], { type: 'image/png' }), 'image.png');
  const noBackground = await clipdrop('remove-background/v1', form1);

  await ref.update({ 'visuals.showcaseProcessingStatus': 'upscaling' });
  const { width = 1, height = 1 } = await sharp(noBackground).metadata();
  const scale = Math.min(2, 4096 / Math.max(width, height));
  const form2 = new FormData();
  form2.set('image_file', new Blob([noBackground], { type: 'image/png' }), 'image.png');
  form2.set('target_width', String(Math.max(1, Math.round(width * scale))));
  form2.set('target_height', String(Math.max(1, Math.round(height * scale))));
  const upscaled = await clipdrop('image-upscaling/v1/upscale', form2);

  await ref.update({ 'visuals.showcaseProcessingStatus': 'finalizing' });
  const meta = data.meta as { userId?: unknown } | undefined;
  const path = `showcase-images/${String(meta?.userId)}/${ref.id}/showcase_${ref.id}.png`;
  await bucket.file(path).save(upscaled, { resumable: false, contentType: 'image/png' });
  const publicUrl = STORAGE_HOST
    ? `http://${STORAGE_HOST}/${BUCKET}/${path}`
    : `https://storage.googleapis.com/${BUCKET}/${path}`;

  await ref.update({
    'visuals.showcaseImageUrl': publicUrl,
    'visuals.isShowcaseProcessed': true,
    'visuals.showcaseProcessingStatus': 'complete',
  });
  log('baseline.completed', { characterId: ref.id, durationMs: Date.now() - started });
}

async function pollOnce(): Promise<void> {
  const started = Date.now();
  const snapshot = await db
    .collection(COLLECTION)
    .where('visuals.showcaseProcessingStatus', 'in', IN_PROGRESS)
    .get();
  log('baseline.poll', { found: snapshot.size });
  for (const doc of snapshot.docs) {
    if (stopping) break;
    try {
      await processOne(doc.ref, doc.data());
    } catch (err) {
      log('baseline.failed', { characterId: doc.id, detail: String(err) });
      await doc.ref
        .update({ 'visuals.showcaseProcessingStatus': 'failed' })
        .catch((e: unknown) => log('baseline.fail_write_failed', { detail: String(e) }));
    }
  }
  log('baseline.poll_done', { found: snapshot.size, durationMs: Date.now() - started });
}

/** When to poll first: the first stdin line's `firstPollAt`, or now (terminal, closed stdin). */
function firstPollAt(): Promise<number> {
  return new Promise((resolve) => {
    if (process.stdin.isTTY) return resolve(Date.now());
    const lines = createInterface({ input: process.stdin });
    lines.once('line', (line) => {
      lines.close();
      try {
        const at = (JSON.parse(line) as { firstPollAt?: unknown }).firstPollAt;
        resolve(typeof at === 'number' ? at : Date.now());
      } catch {
        resolve(Date.now());
      }
    });
    lines.once('close', () => resolve(Date.now()));
  });
}

// A first query opens the connection, so the first timed poll does not pay for it.
await db.collection(COLLECTION).limit(1).get();
log('baseline.ready', { pollSeconds: POLL_SECONDS, projectId: PROJECT });
let next = await firstPollAt();
while (!stopping) {
  await sleepUntil(next);
  if (stopping) break;
  await pollOnce();
  // The next scheduled run; a run longer than the period starts the next one at once.
  next = Math.max(Date.now(), next + POLL_SECONDS * 1000);
}
log('baseline.stopped');
process.exit(0);
