/**
 * The worker's `gs://` source read (createBucketReader) through the real Storage client
 * (firebase-admin 14 → @google-cloud/storage 8) against the Storage stand-in, serving object
 * bytes in paced chunks so a read can be aborted mid-body.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { deleteApp, initializeApp, type App } from 'firebase-admin/app';
import { getStorage } from 'firebase-admin/storage';
import { startStorageStandin, type StorageStandin } from '../../dev/storage-standin.js';
import { createBucketReader } from '../../src/adapters/storage/bucket.js';
import { until } from '../support/wait.js';

const BUCKET = 'demo-bucket';
const MAX_BYTES = 8 * 1024 * 1024;
/** 2 MiB served 16 KiB every 20 ms: about 2.5 s if nobody stops it. */
const SIZE = 2 * 1024 * 1024;

let standin: StorageStandin;
let app: App;
let read: (path: string, signal: AbortSignal) => Promise<Buffer>;
const savedEnv = {
  firebase: process.env.FIREBASE_STORAGE_EMULATOR_HOST,
  storage: process.env.STORAGE_EMULATOR_HOST,
};

function restoreEnv(name: string, value: string | undefined) {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}

beforeAll(async () => {
  standin = await startStorageStandin({ buckets: [BUCKET] });
  process.env.FIREBASE_STORAGE_EMULATOR_HOST = standin.host;
  // firebase-admin derives STORAGE_EMULATOR_HOST only when it is unset (storage-standin.test.ts).
  delete process.env.STORAGE_EMULATOR_HOST;
  app = initializeApp({ projectId: 'demo-test', storageBucket: BUCKET }, `bucket-${randomUUID()}`);
  read = createBucketReader(getStorage(app).bucket(), MAX_BYTES);
});

afterAll(async () => {
  await deleteApp(app);
  await standin.close();
  restoreEnv('FIREBASE_STORAGE_EMULATOR_HOST', savedEnv.firebase);
  restoreEnv('STORAGE_EMULATOR_HOST', savedEnv.storage);
});

beforeEach(() => {
  standin.paceMedia({ chunkBytes: 16 * 1024, gapMs: 20 });
});

function seed(label: string): { name: string; data: Buffer } {
  const name = `raw-uploads/user-1/${label}-${randomUUID().slice(0, 8)}.png`;
  const data = randomBytes(SIZE);
  standin.putObject(BUCKET, name, data);
  return { name, data };
}

const answerOf = (name: string) => standin.media.find((m) => m.name === name);

describe('a gs:// source read', () => {
  it('reads the whole object when nobody aborts it', async () => {
    const { name, data } = seed('whole');
    const bytes = await read(name, new AbortController().signal);
    expect(bytes.equals(data)).toBe(true);
    expect(answerOf(name)).toMatchObject({ bytes: SIZE, sent: SIZE, complete: true });
  });

  it('stops mid-body when its job is aborted: the connection closes, the rest is never sent', async () => {
    const { name } = seed('aborted');
    const controller = new AbortController();
    const reading = read(name, controller.signal);
    // Some bytes are out: the read is mid-body.
    await until(() => (answerOf(name)?.sent ?? 0) > 0, 20_000);
    controller.abort(new Error('job aborted'));
    await expect(reading).rejects.toThrow('job aborted');
    // The stand-in sees its client go away before the body is out.
    await until(() => answerOf(name)?.complete !== undefined, 20_000);
    const answer = answerOf(name);
    expect(answer?.complete).toBe(false);
    expect(answer?.sent).toBeLessThan(SIZE);
  });

  it('an abort leaves another job’s read on the same client alone', async () => {
    // The SDK destroys its keep-alive agent when a read stream ends in an error, which would
    // cut every other Storage request of the worker: the reader must not let that happen.
    const other = seed('other');
    const aborted = seed('aborted-beside');
    const otherRead = read(other.name, new AbortController().signal);
    const controller = new AbortController();
    const reading = read(aborted.name, controller.signal);
    await until(
      () => (answerOf(aborted.name)?.sent ?? 0) > 0 && (answerOf(other.name)?.sent ?? 0) > 0,
      20_000,
    );
    controller.abort(new Error('job aborted'));
    await expect(reading).rejects.toThrow('job aborted');
    const bytes = await otherRead;
    expect(bytes.equals(other.data)).toBe(true);
    expect(answerOf(other.name)?.complete).toBe(true);
  });

  it('aborted before the answer comes: rejects at once, and the answer is cut once it starts', async () => {
    // Destroyed before its answer, the SDK's stream would make the SDK throw out of reach when
    // the answer comes (it pipes into it): an uncaught exception that vitest reports here.
    standin.paceMedia({ chunkBytes: 16 * 1024, gapMs: 20, answerAfterMs: 300 });
    const { name } = seed('before-answer');
    const controller = new AbortController();
    const reading = read(name, controller.signal);
    await until(() => standin.requests.some((r) => r.path.includes(encodeURIComponent(name))));
    expect(answerOf(name)).toBeDefined();
    expect(answerOf(name)?.sent).toBe(0);
    controller.abort(new Error('job aborted'));
    await expect(reading).rejects.toThrow('job aborted');
    await until(() => answerOf(name)?.complete !== undefined, 20_000);
    expect(answerOf(name)?.complete).toBe(false);
    expect(answerOf(name)?.sent).toBeLessThan(SIZE);
  });

  it('an already aborted job sends no request', async () => {
    const { name } = seed('never');
    const before = standin.requests.length;
    const controller = new AbortController();
    controller.abort(new Error('job aborted'));
    await expect(read(name, controller.signal)).rejects.toThrow('job aborted');
    expect(standin.requests.length).toBe(before);
  });
});
