/**
 * A measurement, not a test (issue 5): the worker's peak resident set while it processes the
 * hostile corpus (test/support/hostile-corpus.ts) and then a 16-megapixel good image. The
 * target is under 350 MB (Heroku standard dynos have 512 MB).
 *
 *   npx tsx bench/memory-hostile.ts                # corpus + 16 MP
 *   npx tsx bench/memory-hostile.ts --near-limit   # then also an 81 MP PNG just under the
 *                                                  # default IMAGE_MAX_INPUT_PIXELS
 *   npx tsx bench/memory-hostile.ts --entry dist/main.js   # the built worker, plain node
 *   npx tsx bench/memory-hostile.ts --parallel 4   # four 16 MP pictures clicked at once
 *   npx tsx bench/memory-hostile.ts --trace        # the 16 MP job's events with the RSS
 *
 * The worker runs as on a dyno: a child process (`node --import tsx src/main.ts`,
 * NODE_ENV=production, default limits), against the local stack (Firestore emulator,
 * ClipDrop and Storage stand-ins in this process). Peak RSS is the kernel's own high-water
 * mark, VmHWM in /proc/PID/status (Linux only), read after each phase.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { deleteApp, initializeApp } from 'firebase-admin/app';
import { getFirestore, type DocumentData } from 'firebase-admin/firestore';
import sharp from 'sharp';
import { LOCAL_BUCKET, startLocalStack } from '../dev/local-stack.js';
import {
  clickAll,
  hostileCases,
  seedHostileObjects,
  startRecordingServer,
  startTricksServer,
  watchUntilTerminal,
} from '../test/support/hostile-corpus.js';
import { pngBomb } from '../test/support/hostile-images.js';
import { spawnWorker } from '../test/support/worker-process.js';

const TARGET_MB = 350;
const SOURCE_MAX_BYTES = 30 * 1024 * 1024; // the default
const SOURCE_TIMEOUT_MS = 5_000;
const RETRY_MAX_TRIES = 2;
const nearLimit = process.argv.includes('--near-limit');
/** `--entry dist/main.js`: run a built worker with plain node (no tsx loader), as the Procfile does. */
const entryAt = process.argv.indexOf('--entry');
const entry = entryAt > 0 ? process.argv[entryAt + 1] : undefined;
/** `--parallel N`: N different 16 MP pictures clicked at once (default 1). */
const parallelAt = process.argv.indexOf('--parallel');
const parallel = parallelAt > 0 ? Math.max(1, Number(process.argv[parallelAt + 1]) || 1) : 1;
/** `--trace`: the 16 MP job's log events with the worker's RSS around each. */
const trace = process.argv.includes('--trace');

/** VmHWM (peak) or VmRSS (now) of a process, in MB (10^6 bytes); undefined off Linux. */
function memoryMb(pid: number, field: 'VmHWM' | 'VmRSS'): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1];
    return kib === undefined ? undefined : Math.round((Number(kib) * 1024) / 1e5) / 10;
  } catch {
    return undefined;
  }
}

/**
 * A photo-like 16 MP picture the ClipDrop stand-in can cut out: a noisy disc (incompressible,
 * so the PNG is camera-sized) on a flat white background.
 */
async function goodPicture(variant = 0, side = 4000): Promise<Buffer> {
  const raw = Buffer.alloc(side * side * 3, 255);
  const r = side / 3;
  let seed = 12345 + variant;
  for (let y = 0; y < side; y += 1) {
    for (let x = 0; x < side; x += 1) {
      if ((x - side / 2) ** 2 + (y - side / 2) ** 2 > r * r) continue;
      const at = (y * side + x) * 3;
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      raw[at] = 150 + (seed & 63);
      raw[at + 1] = 40 + ((seed >> 6) & 63);
      raw[at + 2] = 30 + ((seed >> 12) & 63);
    }
  }
  return sharp(raw, { raw: { width: side, height: side, channels: 3 } })
    .png()
    .toBuffer();
}

/** A real 9000 x 9000 PNG (81 MP, black): passes the default pixel limit, decodes for real. */
function nearLimitPng(): Buffer {
  return pngBomb(9_000, 9_000, 9_000);
}

async function main(): Promise<void> {
  const stack = await startLocalStack({ clipdrop: { rpm: 1_000_000 } });
  const projectId = `demo-mem-${randomUUID().slice(0, 8)}`;
  const canary = await startRecordingServer();
  const tricks = await startTricksServer({
    canaryUrl: `http://127.0.0.1:${canary.port}/stolen`,
    bucket: LOCAL_BUCKET,
    // 30 MiB at 1 MiB per 50 ms: the cap stops it in about 1.5 s.
    slowChunkBytes: 1024 * 1024,
  });
  const app = initializeApp({ projectId }, `bench-memory-${projectId}`);
  const db = getFirestore(app);
  db.settings({ host: stack.firestoreHost, ssl: false, universeDomain: 'googleapis.com' }); // no metadata-server probe

  const put = (bucket: string, name: string, data: Buffer) =>
    stack.storage.putObject(bucket, name, data);
  await seedHostileObjects(put, LOCAL_BUCKET, SOURCE_MAX_BYTES);
  const good = await goodPicture();
  put(LOCAL_BUCKET, 'raw-uploads/user-1/good-16mp.png', good);
  for (let i = 1; i < parallel; i += 1) {
    put(LOCAL_BUCKET, `raw-uploads/user-1/good-16mp-${i}.png`, await goodPicture(i));
  }
  const cases = await hostileCases({
    tricksHost: tricks.host,
    storageHost: stack.storage.host,
    canaryPort: canary.port,
    bucket: LOCAL_BUCKET,
    retryMaxTries: RETRY_MAX_TRIES,
    sourceTimeoutMs: SOURCE_TIMEOUT_MS,
  });

  const worker = spawnWorker(
    {
      ...stack.env,
      GOOGLE_CLOUD_PROJECT: projectId,
      NODE_ENV: 'production',
      LOG_LEVEL: 'info',
      SOURCE_ALLOWED_HOSTS: tricks.host,
      SOURCE_TIMEOUT_MS: String(SOURCE_TIMEOUT_MS),
      RETRY_MAX_TRIES: String(RETRY_MAX_TRIES),
      RETRY_BASE_MS: '100',
      RETRY_MAX_MS: '500',
    },
    entry ? { entry: [entry] } : {},
  );
  const pid = worker.proc.pid ?? 0;
  let sampledPeak = 0;
  const samples: { at: number; mb: number }[] = [];
  const sampler = setInterval(() => {
    const mb = memoryMb(pid, 'VmRSS') ?? 0;
    sampledPeak = Math.max(sampledPeak, mb);
    samples.push({ at: Date.now(), mb });
  }, 50);
  const phases: { phase: string; ms: number; peakMb: number | undefined; rssMb?: number }[] = [];
  const mark = (phase: string, started: number) =>
    phases.push({
      phase,
      ms: Date.now() - started,
      peakMb: memoryMb(pid, 'VmHWM'),
      rssMb: memoryMb(pid, 'VmRSS'),
    });

  try {
    let started = Date.now();
    await worker.waitForLog((l) => l.message === 'worker.started', 60_000);
    // Let start-up settle (first snapshot, first sweep) before the baseline.
    await new Promise((r) => setTimeout(r, 1_000));
    mark('started, idle', started);

    started = Date.now();
    await clickAll(db, cases);
    const corpus = await watchUntilTerminal(
      db,
      cases.map((c) => c.id),
      180_000,
    );
    mark(`hostile corpus (${cases.length} documents)`, started);
    const wrong = cases.filter((c) => errorCode(corpus.get(c.id)) !== c.code);

    started = Date.now();
    // The same picture N times over (distinct bytes, so no job reuses another's result).
    const goodIds = Array.from({ length: parallel }, (_, i) =>
      i ? `good-16mp-${i}` : 'good-16mp',
    );
    await Promise.all(
      goodIds.map((id) =>
        db
          .doc(`characters/${id}`)
          .set(clicked(`gs://${LOCAL_BUCKET}/raw-uploads/user-1/${id}.png`)),
      ),
    );
    const done = await watchUntilTerminal(db, goodIds, 300_000);
    mark(
      `${parallel > 1 ? `${parallel} x ` : ''}16 MP good image (${(good.length / 1e6).toFixed(1)} MB PNG)`,
      started,
    );
    const goodStatus = goodIds.map((id) => statusOf(done.get(id))).join(', ');
    if (trace) traceJob('good-16mp', worker.lines, samples);

    let nearStatus: string | undefined;
    if (nearLimit) {
      put(LOCAL_BUCKET, 'raw-uploads/user-1/near-limit.png', nearLimitPng());
      started = Date.now();
      await db
        .doc('characters/near-limit')
        .set(clicked(`gs://${LOCAL_BUCKET}/raw-uploads/user-1/near-limit.png`));
      const near = await watchUntilTerminal(db, ['near-limit'], 300_000);
      mark('81 MP PNG (just under IMAGE_MAX_INPUT_PIXELS)', started);
      nearStatus = `${statusOf(near.get('near-limit'))} ${errorCode(near.get('near-limit')) ?? ''}`;
    }

    const peak = memoryMb(pid, 'VmHWM');
    report({
      phases,
      peak,
      sampledPeak,
      wrong: wrong.map((c) => `${c.id.slice(0, 30)}: ${errorCode(corpus.get(c.id))} ≠ ${c.code}`),
      canaryRequests: canary.requests.length,
      clipdropCalls: stack.clipdrop.stats.calls,
      goodStatus,
      nearStatus,
    });
  } finally {
    clearInterval(sampler);
    worker.kill('SIGTERM');
    await worker.exited;
    await deleteApp(app);
    await Promise.all([canary.close(), tricks.close()]);
    await stack.stop();
  }
}

/** Prints each log event of one job with the highest RSS sampled until the next event. */
function traceJob(
  id: string,
  lines: { message: string; characterId?: string; [k: string]: unknown }[],
  samples: { at: number; mb: number }[],
): void {
  const events = lines
    .filter((l) => l.characterId === id)
    .map((l) => ({ at: Date.parse(String(l.timestamp)), what: `${l.message} ${str(l.stage)}` }));
  for (const [i, e] of events.entries()) {
    const next = events[i + 1]?.at ?? Infinity;
    const during = samples.filter((s) => s.at >= e.at && s.at < next).map((s) => s.mb);
    const time = new Date(e.at).toISOString().slice(11, 23);
    process.stdout.write(
      `  ${time}  ${e.what.padEnd(40)} max RSS until next: ${Math.max(0, ...during)} MB\n`,
    );
  }
}

function str(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function clicked(imageUrl: string): DocumentData {
  return {
    core: { name: 'Benchmark' },
    meta: { userId: 'user-1' },
    visuals: { imageUrl, showcaseProcessingStatus: 'removing-background' },
  };
}

function statusOf(data: DocumentData | undefined): string | undefined {
  return (data?.visuals as { showcaseProcessingStatus?: string } | undefined)
    ?.showcaseProcessingStatus;
}

function errorCode(data: DocumentData | undefined): string | undefined {
  return (data?.visuals as { showcaseProcessingError?: { code?: string } } | undefined)
    ?.showcaseProcessingError?.code;
}

function report(r: {
  phases: { phase: string; ms: number; peakMb: number | undefined; rssMb?: number }[];
  peak: number | undefined;
  sampledPeak: number;
  wrong: string[];
  canaryRequests: number;
  clipdropCalls: Record<string, number>;
  goodStatus: string | undefined;
  nearStatus: string | undefined;
}): void {
  const out = process.stdout;
  out.write('\nWorker memory: hostile corpus + 16 MP image\n\n');
  for (const p of r.phases) {
    out.write(
      `  ${p.phase.padEnd(52)} ${String(p.ms).padStart(7)} ms   peak ${String(p.peakMb ?? 'n/a').padStart(6)} MB   now ${String(p.rssMb ?? 'n/a').padStart(6)} MB\n`,
    );
  }
  out.write(
    `\n  peak RSS (VmHWM): ${r.peak ?? 'n/a'} MB (sampled every 50 ms: ${r.sampledPeak} MB); target < ${TARGET_MB} MB: ${r.peak !== undefined && r.peak < TARGET_MB ? 'met' : 'NOT met'}\n`,
  );
  out.write(
    `  corpus codes as expected: ${r.wrong.length === 0 ? 'yes' : `no\n    ${r.wrong.join('\n    ')}`}\n`,
  );
  out.write(
    `  canary requests: ${r.canaryRequests}; ClipDrop calls: ${JSON.stringify(r.clipdropCalls)}\n`,
  );
  out.write(
    `  16 MP job: ${r.goodStatus ?? 'n/a'}${r.nearStatus ? `; 81 MP job: ${r.nearStatus}` : ''}\n\n`,
  );
  out.write(`${JSON.stringify({ peakRssMb: r.peak, phases: r.phases })}\n`);
}

await main();
