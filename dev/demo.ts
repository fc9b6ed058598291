/**
 * `npm run demo`: the whole flow on this machine, no cloud account. Starts the Firestore
 * emulator and the stand-ins, runs the worker as a separate process (as on a dyno), creates
 * a character with a generated picture, clicks Process, prints each status as the app would
 * see it, and saves the resulting PNG.
 */
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { initializeApp, deleteApp } from 'firebase-admin/app';
import { getFirestore } from 'firebase-admin/firestore';
import sharp from 'sharp';
import { LOCAL_BUCKET, LOCAL_PROJECT, startLocalStack } from './local-stack.js';

const OUT_DIR = resolve('demo-output');
const started = performance.now();
const say = (line: string) =>
  process.stdout.write(`[demo +${((performance.now() - started) / 1000).toFixed(2)}s] ${line}\n`);

say('starting the Firestore emulator and the ClipDrop / Cloud Storage stand-ins…');
// Realistic ClipDrop latency, so each status is visible.
const stack = await startLocalStack({
  clipdrop: { latencyMs: { removeBackground: 800, upscale: 1500 } },
});
say(
  `Firestore emulator at ${stack.firestoreHost}, ClipDrop stand-in at ${stack.clipdrop.url}, Storage stand-in at ${stack.storage.url}`,
);

const worker = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
  env: { ...process.env, ...stack.env, NODE_ENV: 'development', LOG_LEVEL: 'info' },
  stdio: ['ignore', 'pipe', 'pipe'],
});
const prefix = (chunk: Buffer) =>
  chunk
    .toString()
    .split('\n')
    .filter(Boolean)
    .forEach((l) => process.stdout.write(`  [worker] ${l}\n`));
worker.stdout.on('data', prefix);
worker.stderr.on('data', prefix);
const workerExit = new Promise<number | null>((r) => worker.on('exit', (code) => r(code)));

const app = initializeApp({ projectId: LOCAL_PROJECT }, 'demo-app');
const db = getFirestore(app);
db.settings({ host: stack.firestoreHost, ssl: false, universeDomain: 'googleapis.com' }); // no metadata-server probe

let exitCode = 0;
try {
  // What the CharaForge app does on Process: upload the picture, then set the status.
  const characterId = `demo-${Date.now().toString(36)}`;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="480" height="360">
    <rect width="100%" height="100%" fill="#f4f1ea"/>
    <circle cx="240" cy="150" r="80" fill="#2e86de"/>
    <rect x="180" y="210" width="120" height="120" rx="30" fill="#e67e22"/></svg>`;
  const picture = await sharp(Buffer.from(svg)).png().toBuffer();
  const rawPath = `raw-uploads/demo-user/${characterId}.png`;
  stack.storage.putObject(LOCAL_BUCKET, rawPath, picture, 'image/png');
  await db.doc(`characters/${characterId}`).set({
    core: { name: 'Demo Knight' },
    meta: { userId: 'demo-user' },
    visuals: { imageUrl: `gs://${LOCAL_BUCKET}/${rawPath}` },
  });
  say(`created character ${characterId} with a 480x360 picture at gs://${LOCAL_BUCKET}/${rawPath}`);

  const clickedAt = performance.now();
  const done = new Promise<FirebaseFirestore.DocumentData>((resolveDone, reject) => {
    let last = '';
    const timer = setTimeout(() => reject(new Error('no result within 120 s')), 120_000);
    const unsubscribe = db.doc(`characters/${characterId}`).onSnapshot((snap) => {
      const visuals = snap.data()?.visuals as Record<string, unknown> | undefined;
      const raw = visuals?.showcaseProcessingStatus;
      const status = typeof raw === 'string' ? raw : '';
      if (status && status !== last) {
        last = status;
        say(
          `status: ${status.padEnd(20)} (${Math.round(performance.now() - clickedAt)} ms after the click)`,
        );
      }
      if (status === 'complete' || status === 'failed') {
        clearTimeout(timer);
        unsubscribe();
        resolveDone(visuals ?? {});
      }
    }, reject);
  });
  await db.doc(`characters/${characterId}`).update({
    'visuals.showcaseProcessingStatus': 'removing-background',
  });
  say('clicked Process (status = removing-background)');
  const visuals = await done;
  if (visuals.showcaseProcessingStatus !== 'complete') {
    throw new Error(`job failed: ${JSON.stringify(visuals.showcaseProcessingError)}`);
  }
  const response = await fetch(String(visuals.showcaseImageUrl));
  const png = Buffer.from(await response.arrayBuffer());
  const meta = await sharp(png).metadata();
  await mkdir(OUT_DIR, { recursive: true });
  const file = resolve(OUT_DIR, `showcase_${characterId}.png`);
  await writeFile(file, png);
  say(`showcaseImageUrl: ${String(visuals.showcaseImageUrl)}`);
  say(
    `saved ${file} (${meta.width}x${meta.height} ${meta.format}, alpha: ${String(meta.hasAlpha)}, ${png.length} bytes)`,
  );
  say(
    `ClipDrop stand-in calls: ${JSON.stringify(stack.clipdrop.stats.calls)}, credits used: ${stack.clipdrop.stats.creditsUsed}`,
  );
} catch (err) {
  exitCode = 1;
  say(`FAILED: ${(err as Error).message}`);
} finally {
  worker.kill('SIGTERM');
  const code = await workerExit;
  say(`worker stopped on SIGTERM (exit code ${String(code)})`);
  await deleteApp(app);
  await stack.stop();
  say('done');
}
process.exit(exitCode);
