import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createSourceFetcher } from '../../src/adapters/source-fetcher.js';
import { JobError } from '../../src/jobs/errors.js';
import { startRecordingServer, type RecordingServer } from '../support/hostile-corpus.js';

const BUCKET = 'my-app.appspot.com';
const PNG = Buffer.from('png-bytes');

/**
 * The fetcher's two roads: `gs://` through the bucket (admin rights: only after the owner
 * check passed) and http(s) with no credentials (a download URL through its token only).
 */
describe('createSourceFetcher', () => {
  let storage: RecordingServer;
  const signal = new AbortController().signal;

  beforeAll(async () => {
    storage = await startRecordingServer((req, res) => {
      if ((req.url ?? '').includes('token=right')) res.writeHead(200).end(PNG);
      else res.writeHead(403).end('{"error":{"code":403}}');
    });
  });
  afterAll(async () => {
    await storage?.close();
  });

  const setup = () => {
    const readBucket = vi.fn((_path: string, _signal: AbortSignal) => Promise.resolve(PNG));
    const fetcher = createSourceFetcher(
      {
        bucket: BUCKET,
        allowedHosts: [],
        storageEmulatorHost: storage.host,
        gsPaths: ['**/{userId}/**'],
      },
      { maxBytes: 1024, timeoutMs: 5_000, maxRedirects: 0 },
      readBucket,
    );
    return { fetcher, readBucket };
  };
  const codeOf = (promise: Promise<unknown>) =>
    promise.then(
      () => 'resolved',
      (err: unknown) => (err instanceof JobError ? err.code : String(err)),
    );

  it('reads the owner’s gs:// object from the bucket', async () => {
    const { fetcher, readBucket } = setup();
    await expect(fetcher.fetch(`gs://${BUCKET}/raw-uploads/u1/a.png`, 'u1', signal)).resolves.toBe(
      PNG,
    );
    // With the job's signal: an aborted job stops its read (bucket-read.test.ts).
    expect(readBucket).toHaveBeenCalledWith('raw-uploads/u1/a.png', signal);
  });

  it('refuses another user’s gs:// object, or the worker’s, before any read', async () => {
    const { fetcher, readBucket } = setup();
    for (const path of [
      'raw-uploads/u2/a.png',
      'showcase-work/c/k/cutout.png',
      'showcase-cache/k.png',
    ]) {
      expect(await codeOf(fetcher.fetch(`gs://${BUCKET}/${path}`, 'u1', signal)), path).toBe(
        'SOURCE_URL_FORBIDDEN',
      );
    }
    expect(readBucket).not.toHaveBeenCalled();
  });

  it('reads another user’s download URL through its token, never through the bucket', async () => {
    const { fetcher, readBucket } = setup();
    const url = (token: string) =>
      `http://${storage.host}/v0/b/${BUCKET}/o/raw-uploads%2Fu2%2Fa.png?alt=media&token=${token}`;
    await expect(fetcher.fetch(url('right'), 'u1', signal)).resolves.toEqual(PNG);
    // A wrong token: Storage answers 403, and the source is as good as missing.
    expect(await codeOf(fetcher.fetch(url('wrong'), 'u1', signal))).toBe('SOURCE_NOT_FOUND');
    expect(readBucket).not.toHaveBeenCalled();
    expect(storage.requests).toEqual([
      `/v0/b/${BUCKET}/o/raw-uploads%2Fu2%2Fa.png`,
      `/v0/b/${BUCKET}/o/raw-uploads%2Fu2%2Fa.png`,
    ]);
  });
});
