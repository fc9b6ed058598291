import { Timestamp } from 'firebase-admin/firestore';
import { afterEach, describe, expect, it } from 'vitest';
import { sourcePolicyOf } from '../../src/adapters/source-fetcher.js';
import { loadConfig } from '../../src/config/load.js';
import { createRetryCode, type RetryCode } from '../../src/console/retry-code.js';
import type { Log } from '../../src/jobs/ports.js';
import { BUCKET, startStack, type Stack } from '../support/stack.js';
import { statusOf, until } from '../support/wait.js';

/**
 * The console's Retry all of a code against the real emulator (no worker: the clicks are what
 * is checked): what the preview counts is what the run clicks, each re-checked, and the one
 * log line at its end says what changed.
 */
describe("the console's Retry all of a code", () => {
  let stack: Stack | undefined;
  let retry: RetryCode | undefined;

  afterEach(async () => {
    await retry?.close();
    await stack?.close();
    stack = retry = undefined;
  });

  function recordingLog(lines: Array<{ message: string; fields?: Record<string, unknown> }>): Log {
    const log: Log = {
      info: (message, fields) => lines.push({ message, ...(fields ? { fields } : {}) }),
      warn: (message, fields) => lines.push({ message, ...(fields ? { fields } : {}) }),
      error: (message, fields) => lines.push({ message, ...(fields ? { fields } : {}) }),
      debug: () => undefined,
      child: () => log,
    };
    return log;
  }

  async function setUp(rpm: number) {
    const s = (stack = await startStack());
    const config = loadConfig({ env: s.env, configDir: 'config' });
    const characters = s.db.collection(config.firebase.collection);
    const lines: Array<{ message: string; fields?: Record<string, unknown> }> = [];
    retry = createRetryCode({
      characters,
      sources: sourcePolicyOf(config),
      rpm,
      windowHours: 24,
      log: recordingLog(lines),
    });
    const failed = async (id: string, code: string, agoMs: number, image = true) => {
      await characters.doc(id).set({
        meta: { userId: 'u1' },
        visuals: {
          ...(image ? { imageUrl: `gs://${BUCKET}/raw-uploads/u1/${id}.png` } : {}),
          showcaseProcessingStatus: 'failed',
          showcaseProcessingError: { code, at: Timestamp.fromMillis(Date.now() - agoMs) },
        },
      });
    };
    const status = async (id: string) => statusOf((await characters.doc(id).get()).data());
    return { retry, lines, failed, status, characters };
  }

  it('clicks what the preview counted; the end line tallies what was not clicked and why', async () => {
    const { retry, lines, failed, status } = await setUp(600_000);
    await failed('a', 'STORAGE_UNAVAILABLE', 120_000);
    await failed('b', 'STORAGE_UNAVAILABLE', 60_000);
    await failed('no-image', 'STORAGE_UNAVAILABLE', 90_000, false);
    await failed('other-code', 'SOURCE_NOT_FOUND', 60_000);
    await failed('too-old', 'STORAGE_UNAVAILABLE', 25 * 3_600_000);

    const preview = await retry.preview('STORAGE_UNAVAILABLE');
    expect(preview).toMatchObject({ code: 'STORAGE_UNAVAILABLE', count: 3, more: false });
    expect(await status('a')).toBe('failed');

    const started = await retry.start('STORAGE_UNAVAILABLE', 'console (session)', preview.count);
    expect(started).toMatchObject({ selected: 3, done: false });
    await until(() => retry.status()?.done === true, 30_000, 'the run to end');
    expect(retry.status()).toMatchObject({ clicked: 2, gone: 1, skipped: 0, interrupted: false });
    for (const id of ['a', 'b']) expect(await status(id)).toBe('removing-background');
    for (const id of ['other-code', 'too-old', 'no-image']) expect(await status(id)).toBe('failed');

    const end = lines.filter((l) => l.message === 'console.action');
    expect(end).toHaveLength(1);
    expect(end[0]?.fields).toMatchObject({
      action: 'retry-code',
      code: 'STORAGE_UNAVAILABLE',
      by: 'console (session)',
      selected: 3,
      clicked: 2,
      gone: 1,
      why: { 'skipped: image removed': 1 },
      done: true,
    });
  });

  it('one run at a time; each click re-checks: one completed meanwhile is skipped, and said so', async () => {
    // 30 rpm: a click each 4 s, time to change the second one before its turn.
    const { retry, failed, status, characters } = await setUp(30);
    await failed('first', 'CLIPDROP_UNAVAILABLE', 120_000);
    await failed('second', 'CLIPDROP_UNAVAILABLE', 60_000);
    await retry.start('CLIPDROP_UNAVAILABLE', 'console (bearer)', 100);
    const again = await retry.start('CLIPDROP_UNAVAILABLE', 'console (bearer)', 100);
    expect(again).toHaveProperty('busy');
    await characters.doc('second').update({ 'visuals.showcaseProcessingStatus': 'complete' });
    await until(() => retry.status()?.done === true, 30_000, 'the run to end');
    expect(retry.status()).toMatchObject({
      selected: 2,
      clicked: 1,
      skipped: 1,
      why: { 'skipped: now complete': 1 },
    });
    expect(await status('first')).toBe('removing-background');
    expect(await status('second')).toBe('complete');
  });
});
