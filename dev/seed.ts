/**
 * Sample characters for the local stack (`npm run dev`, `npm run screenshot`, their test): a
 * complete job with its result picture, two in progress, and a failure of each common kind.
 * Nothing here writes a worker's field: every outcome is the running worker's own, met on the
 * stand-ins' real faults and on inputs it refuses, so the console shows what production shows.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';
import type { DocumentData, Firestore } from 'firebase-admin/firestore';
import sharp from 'sharp';
import type { ClipdropStandin } from './clipdrop-standin.js';
import type { StorageStandin } from './storage-standin.js';

/** What a sample ends as once seeded: a final status, an error code, or a stage it hangs in. */
export type SampleOutcome =
  | { status: 'complete' }
  | { status: 'failed'; code: string }
  | { status: 'removing-background' | 'upscaling' };

export interface Sample {
  id: string;
  name: string;
  userId: string;
  /** How the sample gets its outcome (for people reading the seed). */
  how: string;
  expect: SampleOutcome;
}

const failed = (code: string): SampleOutcome => ({ status: 'failed', code });

/** The samples, in the order they are clicked (the stand-in's fault queue depends on it). */
export const SAMPLES: readonly Sample[] = [
  {
    id: 'sample-complete',
    name: 'Ada the Bold',
    userId: 'ada',
    how: 'a picture, processed',
    expect: { status: 'complete' },
  },
  {
    id: 'sample-rejected',
    name: 'Brass Golem',
    userId: 'grace',
    how: 'ClipDrop answers 400 (the stand-in, once)',
    expect: failed('CLIPDROP_REJECTED'),
  },
  {
    id: 'sample-over-limit',
    name: 'Ada again',
    userId: 'ada',
    how: 'a second job of a user whose daily limit is 1 (showcase-worker limit ada --daily 1)',
    expect: failed('USER_QUOTA_EXCEEDED'),
  },
  {
    id: 'sample-not-found',
    name: 'Lost Ranger',
    userId: 'grace',
    how: 'a gs:// source that does not exist',
    expect: failed('SOURCE_NOT_FOUND'),
  },
  {
    id: 'sample-not-image',
    name: 'Paper Mage',
    userId: 'linus',
    how: 'a text file uploaded as a picture',
    expect: failed('SOURCE_NOT_IMAGE'),
  },
  {
    id: 'sample-too-large',
    name: 'Titan',
    userId: 'linus',
    how: 'a PNG whose header declares 20000 x 20000 pixels',
    expect: failed('SOURCE_TOO_LARGE'),
  },
  {
    id: 'sample-forbidden',
    name: 'Stranger',
    userId: 'linus',
    how: 'a source on a host the worker may not fetch from',
    expect: failed('SOURCE_URL_FORBIDDEN'),
  },
  {
    id: 'sample-invalid',
    name: 'Escape Artist',
    userId: '../escape',
    how: 'an owner id that could escape its folder',
    expect: failed('INVALID_DOCUMENT'),
  },
  {
    id: 'sample-removing',
    name: 'Slow Poke',
    userId: 'grace',
    how: 'ClipDrop never answers its remove-background call (until the worker times out)',
    expect: { status: 'removing-background' },
  },
  {
    id: 'sample-upscaling',
    name: 'Patient Knight',
    userId: 'ada-team',
    how: 'ClipDrop never answers its upscale call (until the worker times out)',
    expect: { status: 'upscaling' },
  },
];

export interface SeedTarget {
  /** The app's view of Firestore (any client of the stack's project). */
  db: Firestore;
  /** The characters' collection (FIRESTORE_COLLECTION), default `characters`. */
  collection?: string;
  bucket: string;
  storage: Pick<StorageStandin, 'putObject'>;
  clipdrop: Pick<ClipdropStandin, 'injectFaults' | 'stats'>;
  /** The worker's settings: `showcase-worker limit` runs with them, as an operator would. */
  env: Record<string, string>;
  say?: (line: string) => void;
  /** How long one sample may take to reach its outcome. */
  timeoutMs?: number;
}

const REPO = fileURLToPath(new URL('..', import.meta.url));
const NO_ANSWER_RB = { kind: 'hang', endpoint: 'removeBackground' } as const;
const NO_ANSWER_UP = { kind: 'hang', endpoint: 'upscale' } as const;

/**
 * Writes the samples and clicks Process on each, with a worker running on the stack, and
 * resolves when every one has reached its outcome (`SAMPLES[].expect`). The stand-in's faults
 * are queued just before the one click they are for, so the clicks go one after another where
 * a fault is involved. Expects a project without these ids (a fresh emulator).
 */
export async function seedSamples(t: SeedTarget): Promise<Sample[]> {
  const say = t.say ?? (() => undefined);
  const timeoutMs = t.timeoutMs ?? 60_000;
  const col = t.db.collection(t.collection ?? 'characters');
  const latest = new Map<string, DocumentData | undefined>();
  const waiters = new Set<() => void>();
  // One listener for every sample: watches closed mid-seed can fail the emulator's next commit.
  const stop = col.onSnapshot(
    (snap) => {
      for (const change of snap.docChanges()) latest.set(change.doc.id, change.doc.data());
      for (const w of waiters) w();
    },
    (err) => say(`seed: listener failed: ${String(err)}`),
  );

  const reached = (s: Sample, extra?: () => boolean) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        const visuals = latest.get(s.id)?.visuals as Record<string, unknown> | undefined;
        const status = visuals?.showcaseProcessingStatus;
        const code = (visuals?.showcaseProcessingError as { code?: unknown } | undefined)?.code;
        const done =
          status === s.expect.status &&
          (s.expect.status !== 'failed' || code === s.expect.code) &&
          (extra?.() ?? true);
        if (done) {
          cleanup();
          resolve();
        } else if (status === 'failed' || status === 'complete') {
          if (status !== s.expect.status || code !== (s.expect as { code?: string }).code) {
            cleanup();
            reject(new Error(`${s.id}: ${String(status)} ${String(code)}, not ${outcomeText(s)}`));
          }
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`${s.id}: not ${outcomeText(s)} within ${timeoutMs} ms`));
      }, timeoutMs);
      // The stand-in's count is no Firestore change: looked at on a short timer as well.
      const poll = extra ? setInterval(check, 50) : undefined;
      const cleanup = () => {
        clearTimeout(timer);
        clearInterval(poll);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });

  const click = (s: Sample) =>
    col.doc(s.id).update({ 'visuals.showcaseProcessingStatus': 'removing-background' });

  try {
    say('seed: writing sample characters and their pictures');
    const sources = await uploadSources(t);
    const batch = t.db.batch();
    for (const s of SAMPLES) {
      batch.set(col.doc(s.id), {
        core: { name: s.name },
        meta: { userId: s.userId },
        visuals: { imageUrl: sources[s.id] },
      });
    }
    await Promise.all([batch.commit(), runLimit(t.env, 'ada', 1)]);

    const byId = new Map(SAMPLES.map((s) => [s.id, s]));
    const sample = (id: string) => byId.get(id)!;
    const run = async (s: Sample, extra?: () => boolean) => {
      await click(s);
      await reached(s, extra);
      say(`seed: ${s.id.padEnd(18)} ${outcomeText(s)} (${s.how})`);
    };
    await run(sample('sample-complete'));
    t.clipdrop.injectFaults({ kind: 'status', status: 400, endpoint: 'removeBackground' });
    await run(sample('sample-rejected'));
    // The rest of the failures never reach ClipDrop: at once.
    await Promise.all(
      SAMPLES.filter(
        (s) => s.expect.status === 'failed' && !['sample-rejected'].includes(s.id),
      ).map((s) => run(s)),
    );
    const hangs = () => t.clipdrop.stats.faultsApplied.hang;
    const before = hangs();
    t.clipdrop.injectFaults(NO_ANSWER_RB);
    await run(sample('sample-removing'), () => hangs() >= before + 1);
    t.clipdrop.injectFaults(NO_ANSWER_UP);
    await run(sample('sample-upscaling'), () => hangs() >= before + 2);
    return [...SAMPLES];
  } finally {
    stop();
  }
}

export function outcomeText(s: Sample): string {
  return s.expect.status === 'failed' ? `failed ${s.expect.code}` : s.expect.status;
}

/** Each sample's `visuals.imageUrl`, its picture uploaded where the app would put it. */
async function uploadSources(t: SeedTarget): Promise<Record<string, string>> {
  const gs = (path: string) => `gs://${t.bucket}/${path}`;
  const put = (path: string, data: Buffer, type: string) => {
    t.storage.putObject(t.bucket, path, data, type);
    return gs(path);
  };
  const palette = ['#2e86de', '#e67e22', '#16a085', '#8e44ad', '#c0392b'];
  const urls: Record<string, string> = {};
  let i = 0;
  for (const s of SAMPLES) {
    const path = `raw-uploads/${s.userId}/${s.id}.png`;
    if (s.id === 'sample-not-found') urls[s.id] = gs(path);
    else if (s.id === 'sample-not-image') {
      urls[s.id] = put(path, Buffer.from('not a picture, a note\n'), 'image/png');
    } else if (s.id === 'sample-too-large') {
      urls[s.id] = put(path, await bombPng(20_000, 20_000), 'image/png');
    } else if (s.id === 'sample-forbidden') urls[s.id] = 'https://example.com/stranger.png';
    else if (s.id === 'sample-invalid') urls[s.id] = gs('raw-uploads/escape/sample-invalid.png');
    else urls[s.id] = put(path, await characterPng(palette[i++ % palette.length]!), 'image/png');
  }
  return urls;
}

/** A small figure on a plain background: something for remove-background to cut out. */
function characterPng(color: string): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="320" height="240">
    <rect width="100%" height="100%" fill="#f4f1ea"/>
    <circle cx="160" cy="90" r="50" fill="${color}"/>
    <rect x="120" y="140" width="80" height="90" rx="20" fill="#34495e"/></svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

/** A 1x1 PNG whose header claims `width` x `height` (a decompression bomb's few bytes). */
async function bombPng(width: number, height: number): Promise<Buffer> {
  const png = Buffer.from(
    await sharp({ create: { width: 1, height: 1, channels: 3, background: '#888' } })
      .png()
      .toBuffer(),
  );
  // IHDR is the first chunk: length (4) type (4) at 8, width and height at 16 and 20, CRC at 29.
  png.writeUInt32BE(width, 16);
  png.writeUInt32BE(height, 20);
  png.writeUInt32BE(crc32(png.subarray(12, 29)), 29);
  return png;
}

/** `showcase-worker limit USER --daily N`, the operator's command, on the stack's settings. */
function runLimit(env: Record<string, string>, userId: string, daily: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const proc = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/cli.ts', 'limit', userId, '--daily', String(daily)],
      { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    proc.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    proc.on('error', reject);
    proc.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`limit ${userId} exited ${code}: ${stderr}`)),
    );
  });
}
