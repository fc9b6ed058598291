import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/jobs/errors.js';
import {
  OTHER_USERS_UPLOAD,
  OUTSIDE_OWNERS_FOLDER,
  WORKER_OBJECTS,
  clickAll,
  firebaseDownloadUrl,
  hostileCases,
  seedHostileObjects,
  startRecordingServer,
  startTricksServer,
  watchUntilTerminal,
  type HostileCase,
  type RecordingServer,
} from '../support/hostile-corpus.js';
import { characterPicture } from '../support/images.js';
import { BUCKET, startStack, type RunningWorker, type Stack } from '../support/stack.js';
import { statusOf, until, waitForDoc } from '../support/wait.js';

const SOURCE_MAX_BYTES = 256 * 1024;
const SOURCE_TIMEOUT_MS = 1_500;
const RETRY_MAX_TRIES = 3;
/** Every hostile document must be failed this long after it was written, queueing included. */
const ALL_DONE_WITHIN_MS = 60_000;
/** And a worker must not spend longer than this on one (claim to failure decided). */
const PROCESSING_WITHIN_MS = 5_000;

/** Per character: ms from the worker's `job.claimed` to its `job.failed` (decided, not yet written). */
function processingTimes(logs: string[]): Map<string, number> {
  const claimed = new Map<string, number>();
  const times = new Map<string, number>();
  for (const line of logs) {
    const event = JSON.parse(line) as { message: string; characterId?: string; timestamp: string };
    if (!event.characterId) continue;
    const at = Date.parse(event.timestamp);
    if (event.message === 'job.claimed') claimed.set(event.characterId, at);
    if (event.message === 'job.failed' && claimed.has(event.characterId)) {
      times.set(event.characterId, at - claimed.get(event.characterId)!);
    }
  }
  return times;
}

/**
 * Issue 5's corpus: documents a broken or malicious app or user could write. Each must end
 * `failed` with its code, quickly, without reaching anything it should not (a canary server
 * on loopback, not in the allow list, counts requests), without paying ClipDrop, and without
 * stopping the worker from processing the good jobs clicked after them.
 */
describe('hostile documents', () => {
  let stack: Stack;
  let worker: RunningWorker;
  /** Not in SOURCE_ALLOWED_HOSTS: must never receive a single request. */
  let canary: RecordingServer;
  /** An allowed host that misbehaves: redirects, errors, slow and oversized bodies. */
  let tricks: RecordingServer;
  let cases: HostileCase[];

  beforeAll(async () => {
    canary = await startRecordingServer();
    tricks = await startTricksServer({
      canaryUrl: `http://127.0.0.1:${canary.port}/stolen`,
      bucket: BUCKET,
    });
    stack = await startStack();
    await seedHostileObjects(
      (bucket, name, data) => stack.storage.putObject(bucket, name, data),
      BUCKET,
      SOURCE_MAX_BYTES,
    );
    cases = await hostileCases({
      tricksHost: tricks.host,
      storageHost: stack.storage.host,
      canaryPort: canary.port,
      bucket: BUCKET,
      retryMaxTries: RETRY_MAX_TRIES,
      sourceTimeoutMs: SOURCE_TIMEOUT_MS,
    });
    worker = await stack.startWorker({
      SOURCE_ALLOWED_HOSTS: `${stack.images.host},${tricks.host}`,
      SOURCE_MAX_BYTES: String(SOURCE_MAX_BYTES),
      SOURCE_TIMEOUT_MS: String(SOURCE_TIMEOUT_MS),
      RETRY_MAX_TRIES: String(RETRY_MAX_TRIES),
      RETRY_BASE_MS: '50',
      RETRY_MAX_MS: '200',
      WORKER_CONCURRENCY: '4',
    });
  });

  afterAll(async () => {
    await stack?.close();
    await Promise.all([canary?.close(), tricks?.close()]);
  });

  it('fails every hostile document with its code, in bounded time, touching nothing', async () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
    const ids = cases.map((c) => c.id);
    expect(new Set(ids).size).toBe(ids.length);

    // One batch, one collection listener: the emulator is shared, keep the test's own load low.
    const written = Date.now();
    await clickAll(stack.db, cases);
    const terminal = await watchUntilTerminal(stack.db, ids, ALL_DONE_WITHIN_MS);
    const allDoneMs = Date.now() - written;
    const processing = processingTimes(worker.logs);

    expect(allDoneMs).toBeLessThan(ALL_DONE_WITHIN_MS);
    for (const c of cases) {
      const data = terminal.get(c.id);
      const ms = processing.get(c.id);
      const visuals = data?.visuals as Record<string, unknown>;
      const error = visuals.showcaseProcessingError as Record<string, unknown> | undefined;
      const label = `${c.id.slice(0, 40)}: ${JSON.stringify(error)}`;
      expect(statusOf(data), label).toBe('failed');
      expect(error?.code, label).toBe(c.code);
      expect(error?.stage, label).toBe('removing-background');
      expect(visuals.showcaseImageUrl, label).toBeUndefined();
      // From claim to the failure written: what the worker spent on it.
      expect(ms, label).toBeDefined();
      expect(ms, label).toBeLessThan(c.within ?? PROCESSING_WITHIN_MS);

      // The message is for the user: short, stable, and it never echoes what was refused.
      const message = String(error?.message);
      expect(message.length, label).toBeLessThanOrEqual(120);
      if (c.code === 'INVALID_DOCUMENT') {
        expect(message, label).toMatch(/^The (field [a-zA-Z.]+|character id) [^/]+\.$/);
      } else {
        expect(message, label).toBe(ERROR_CODES[c.code].message);
      }
      expect(message, label).not.toMatch(/https?:|127\.0\.0\.1|169\.254|etc\/passwd|\n|at /);
    }

    // The fields that failed are named.
    const messageOf = (id: string) =>
      String(
        (
          (terminal.get(id)?.visuals as Record<string, unknown>).showcaseProcessingError as Record<
            string,
            unknown
          >
        ).message,
      );
    expect(messageOf('h-no-url')).toBe('The field visuals.imageUrl is missing.');
    expect(messageOf('h-url-number')).toBe('The field visuals.imageUrl must be a string.');
    expect(messageOf('h-no-meta')).toBe('The field meta is missing.');
    expect(messageOf('h-user-dots')).toBe('The field meta.userId contains a slash.');
    expect(messageOf('h-user-long')).toBe('The field meta.userId is longer than 128 characters.');
    expect(messageOf(cases.find((c) => c.id.startsWith('h-long-id'))!.id)).toBe(
      'The character id is longer than 128 characters.',
    );

    // Not one request reached the canary, directly or through a redirect.
    expect(canary.requests).toEqual([]);
    // The redirects were followed only as far as their forbidden target.
    expect(tricks.requests.filter((p) => p === '/redirect-canary')).toHaveLength(2);
    expect(tricks.requests.filter((p) => p === '/loop')).toHaveLength(4);
    // Transient failures were retried, a bounded number of times.
    expect(tricks.requests.filter((p) => p === '/always-500.png')).toHaveLength(RETRY_MAX_TRIES);
    expect(tricks.requests.filter((p) => p === '/trickle.png')).toHaveLength(RETRY_MAX_TRIES);
    // Permanent ones were not.
    expect(tricks.requests.filter((p) => p === '/html.png')).toHaveLength(1);
    expect(tricks.requests.filter((p) => p === '/bomb.png')).toHaveLength(1);

    // Nothing was paid for, nothing was stored.
    expect(stack.clipdrop.stats.calls).toEqual({ removeBackground: 0, upscale: 0 });
    const touched = stack.storage.requests.map((r) => `${r.method} ${decodeURIComponent(r.path)}`);
    expect(touched.filter((r) => r.includes('showcase-images'))).toEqual([]);
    // Not one read of another user's upload or of the worker's objects: the only request
    // naming any of them is the download URL with the wrong token, which Storage refused.
    for (const name of WORKER_OBJECTS) expect(touched.filter((r) => r.includes(name))).toEqual([]);
    // Nor of an object naming the owner outside their raw-uploads folder (SOURCE_GS_PATHS).
    for (const name of OUTSIDE_OWNERS_FOLDER) {
      const reads = touched.filter((r) => r.includes(name));
      expect(reads, name).toEqual([]);
    }
    expect(touched.filter((r) => r.includes(OTHER_USERS_UPLOAD))).toEqual([
      `GET /v0/b/${BUCKET}/o/${OTHER_USERS_UPLOAD}?alt=media&token=not-it`,
    ]);
    expect(touched.filter((r) => r.includes('other-bucket'))).toEqual([]);
    for (const c of cases.filter((x) => x.code === 'INVALID_DOCUMENT')) {
      expect(touched.filter((r) => r.includes(c.id))).toEqual([]);
    }
    // And the worker saw them all as ordinary failures: nothing crashed, nothing unexpected.
    const failed = () =>
      new Set(worker.outcomes.filter((o) => o.kind === 'failed').map((o) => o.characterId));
    await until(() => failed().size >= cases.length, 10_000, 'all outcomes');
    expect(cases.filter((c) => !failed().has(c.id)).map((c) => c.id)).toEqual([]);
    // A request seen twice (the sweep beside the listener) is skipped the second time, unclaimed.
    expect(worker.outcomes.filter((o) => o.kind !== 'failed' && o.kind !== 'skipped')).toEqual([]);
    const events = worker.logs.map((l) => JSON.parse(l) as { message: string; code?: string });
    expect(events.filter((e) => e.message === 'job.crashed' || e.code === 'INTERNAL')).toEqual([]);
  }, 90_000);

  it('then completes four good jobs, the only ones ClipDrop ever sees', async () => {
    const jpeg = await characterPicture(48, 40, 'jpeg', 1);
    stack.images.set('/good/http.jpg', jpeg, 'application/octet-stream');
    stack.storage.putObject(
      BUCKET,
      'raw-uploads/user-1/good-gs.png',
      await characterPicture(64, 48),
    );
    const other = await characterPicture(40, 40, 'png', 2);
    stack.storage.putObject(BUCKET, 'raw-uploads/user-1/good-2.png', other);

    // Another user's picture shared by its download URL: the token is the capability.
    const token = 'shared-token-of-user-2';
    const shared = stack.storage.objects.get(`${BUCKET}/${OTHER_USERS_UPLOAD}`)!;
    shared.metadata.firebaseStorageDownloadTokens = token;
    const sharedUrl = firebaseDownloadUrl(stack.storage.host, BUCKET, OTHER_USERS_UPLOAD, token);
    const before = stack.storage.requests.length;

    await Promise.all([
      stack.click('good-token', { imageUrl: sharedUrl }),
      stack.click('good-http', { imageUrl: stack.images.url('/good/http.jpg') }),
      stack.click('good-gs', { imageUrl: `gs://${BUCKET}/raw-uploads/user-1/good-gs.png` }),
      stack.click('good-2', { imageUrl: `gs://${BUCKET}/raw-uploads/user-1/good-2.png` }),
    ]);
    const done = await Promise.all(
      ['good-token', 'good-http', 'good-gs', 'good-2'].map((id) =>
        waitForDoc(
          stack.db,
          `characters/${id}`,
          (d) => ['complete', 'failed'].includes(statusOf(d) ?? ''),
          20_000,
        ),
      ),
    );
    expect(
      done.map((d) => [
        statusOf(d),
        (d?.visuals as Record<string, unknown>).showcaseProcessingError,
      ]),
    ).toEqual(done.map(() => ['complete', undefined]));
    expect(stack.clipdrop.stats.calls).toEqual({ removeBackground: 4, upscale: 4 });
    // The shared picture was read through its token URL only, never with the worker's rights.
    const sharedReads = stack.storage.requests
      .slice(before)
      .map((r) => `${r.method} ${decodeURIComponent(r.path)}`)
      .filter((r) => r.includes(OTHER_USERS_UPLOAD));
    expect(sharedReads).toEqual([
      `GET /v0/b/${BUCKET}/o/${OTHER_USERS_UPLOAD}?alt=media&token=${token}`,
    ]);
    expect(canary.requests).toEqual([]);
  }, 60_000);
});
