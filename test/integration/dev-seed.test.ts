/**
 * `npm run dev`'s samples (dev/seed.ts) against a real worker and the real console: what the
 * seed says it made is what an open console page receives (its Server-Sent Events stream), and
 * the complete sample's result picture is served by the console.
 */
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStateStream } from '../../bench/lib/sse.js';
import { SAMPLES, seedSamples } from '../../dev/seed.js';
import { loadConfig } from '../../src/config/load.js';
import { startConsole, type RunningConsole } from '../../src/console/main.js';
import { BUCKET, startStack, type Stack } from '../support/stack.js';

const TOKEN = 'dev-seed-console-token-0123456789';
let stack: Stack;
let consoleApp: RunningConsole | undefined;

beforeAll(async () => {
  // Hung calls must not hold the worker's stop for 25 s.
  stack = await startStack({ env: { SHUTDOWN_TIMEOUT_MS: '1000' } });
  await stack.startWorker();
});

afterAll(async () => {
  await consoleApp?.close();
  await stack.close();
});

describe('the dev seed', () => {
  it('makes a complete job, two in progress and one failure per code, as the console shows them', async () => {
    const seeded = await seedSamples({
      db: stack.db,
      bucket: BUCKET,
      storage: stack.storage,
      clipdrop: stack.clipdrop,
      env: stack.env,
    });
    expect(seeded.map((s) => s.id)).toEqual(SAMPLES.map((s) => s.id));

    const config = loadConfig({
      env: { ...stack.env, CONSOLE_TOKEN: TOKEN },
      configDir: 'config',
      role: 'console',
    });
    consoleApp = await startConsole(config, { port: 0, logStream: new PassThrough() });

    const failedCodes = SAMPLES.flatMap((s) =>
      s.expect.status === 'failed' ? [s.expect.code] : [],
    );
    const inProgress = SAMPLES.filter(
      (s) => s.expect.status === 'removing-background' || s.expect.status === 'upscaling',
    );
    const page = await openStateStream(consoleApp.url, TOKEN);
    const { state } = await page.next(
      (s) =>
        s.fleet.workers.length === 1 &&
        s.queue.counts !== null &&
        s.finished.some((f) => f.id === 'sample-complete') &&
        inProgress.every((p) => s.active.some((a) => a.id === p.id)) &&
        failedCodes.every((code) => s.failures.byCode.some((f) => f.code === code)),
      60_000,
    );
    page.close();

    // One failure of each code, on the sample made for it, with the worker's own message.
    expect(failedCodes).toHaveLength(7);
    expect(new Set(failedCodes).size).toBe(failedCodes.length);
    for (const s of SAMPLES) {
      if (s.expect.status !== 'failed') continue;
      const row = state.failures.items.find((f) => f.id === s.id);
      expect(row?.code, s.id).toBe(s.expect.code);
      expect(row?.message, s.id).toMatch(/\S/);
    }
    expect(state.failures.byCode.map((f) => [f.code, f.count]).sort()).toEqual(
      failedCodes.map((c) => [c, 1]).sort(),
    );
    // The two in progress are held by the live worker, in the stage each hangs in.
    for (const s of inProgress) {
      const row = state.active.find((a) => a.id === s.id);
      expect(row?.status, s.id).toBe(s.expect.status);
      expect(row?.waiting, s.id).toBe(false);
      expect(row?.owner, s.id).toBe(state.fleet.workers[0]?.id);
    }
    const complete = state.finished.find((f) => f.id === 'sample-complete');
    expect(complete?.credits).toBe(2);
    expect(state.queue.counts).toMatchObject({ complete: 1, failed: 7 });

    // The result picture, from the Storage stand-in, through the console.
    const picture = await fetch(new URL('/jobs/sample-complete/result', consoleApp.url), {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(picture.status).toBe(200);
    expect(picture.headers.get('content-type')).toBe('image/png');
    const bytes = Buffer.from(await picture.arrayBuffer());
    expect(bytes.subarray(1, 4).toString('latin1')).toBe('PNG');

    // The console counted what this cost: the failures listener's first snapshot (7
    // documents), the count queries, the heartbeats, the picture's document.
    const metrics = await (
      await fetch(new URL('/metrics', consoleApp.url), {
        headers: { authorization: `Bearer ${TOKEN}` },
      })
    ).text();
    const reads = (source: string) =>
      Number(
        new RegExp(
          `^showcase_console_firestore_reads_total\\{source="${source}"\\} (\\d+)$`,
          'm',
        ).exec(metrics)?.[1],
      );
    expect(reads('failures')).toBeGreaterThanOrEqual(7);
    expect(reads('active')).toBeGreaterThanOrEqual(2);
    expect(reads('counts')).toBeGreaterThanOrEqual(5);
    expect(reads('workers')).toBeGreaterThanOrEqual(1);
    expect(reads('picture')).toBe(1);
  }, 180_000);
});
