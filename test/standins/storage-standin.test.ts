/**
 * The Cloud Storage stand-in, driven by the real client: firebase-admin 14 →
 * @google-cloud/storage 8, pointed at it through FIREBASE_STORAGE_EMULATOR_HOST.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { deleteApp, initializeApp, type App } from 'firebase-admin/app';
import { getDownloadURL, getStorage } from 'firebase-admin/storage';
import {
  crc32c,
  crc32cBase64,
  startStorageStandin,
  type StorageStandin,
} from '../../dev/storage-standin.js';

type Bucket = ReturnType<ReturnType<typeof getStorage>['bucket']>;

const BUCKET = 'demo-bucket';

let standin: StorageStandin;
let app: App;
let bucket: Bucket;
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
  // firebase-admin derives STORAGE_EMULATOR_HOST from FIREBASE_STORAGE_EMULATOR_HOST only
  // when it is unset, and never resets it: clear any value left by an earlier stand-in.
  delete process.env.STORAGE_EMULATOR_HOST;
  app = initializeApp(
    { projectId: 'demo-test', storageBucket: BUCKET },
    `storage-standin-test-${randomUUID()}`,
  );
  bucket = getStorage(app).bucket();
});

const extraApps: App[] = [];

/**
 * A bucket handle on a new firebase-admin app, i.e. a new @google-cloud/storage client.
 * Needed for retry tests: a `resumable: false` save without a generation precondition
 * leaves `storage.retryOptions.autoRetry = false` on its client for good (see below).
 */
function freshBucket(): Bucket {
  const extra = initializeApp(
    { projectId: 'demo-test', storageBucket: BUCKET },
    `storage-standin-test-${randomUUID()}`,
  );
  extraApps.push(extra);
  return getStorage(extra).bucket();
}

afterAll(async () => {
  await Promise.all(extraApps.map((a) => deleteApp(a)));
  await deleteApp(app);
  await standin.close();
  restoreEnv('FIREBASE_STORAGE_EMULATOR_HOST', savedEnv.firebase);
  restoreEnv('STORAGE_EMULATOR_HOST', savedEnv.storage);
});

beforeEach(() => {
  standin.requests.length = 0;
});

afterEach(() => {
  standin.clearFaults();
});

const uniqueName = (label: string) =>
  `showcase-images/user-1/${label}-${randomUUID().slice(0, 8)}/showcase image.png`;

const enc = encodeURIComponent;

/** Where a request went, without the query. */
const pathOf = (p: string) => p.split('?')[0];
const queryOf = (p: string) => new URLSearchParams(p.split('?')[1] ?? '');

interface ApiErrorLike {
  code?: unknown;
  message?: string;
}

async function rejection(p: Promise<unknown>): Promise<ApiErrorLike> {
  try {
    await p;
  } catch (err) {
    return err as ApiErrorLike;
  }
  throw new Error('expected the promise to reject');
}

describe('hash helpers', () => {
  it('computes CRC32C (Castagnoli) like GCS', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32cBase64(Buffer.from('data'))).toBe('rth90Q=='); // value from @google-cloud/storage docs
    expect(crc32cBase64(Buffer.alloc(0))).toBe('AAAAAA==');
  });
});

describe('storage stand-in with the real firebase-admin client', () => {
  it('is where firebase-admin points @google-cloud/storage', async () => {
    expect(process.env.STORAGE_EMULATOR_HOST).toBe(standin.url);
    const [exists] = await bucket.exists();
    expect(exists).toBe(true);
    const [meta] = await bucket.getMetadata();
    expect(meta.name).toBe(BUCKET);
    const [otherExists] = await getStorage(app).bucket('no-such-bucket').exists();
    expect(otherExists).toBe(false);
    // JSON API calls go to the bare host (no /storage/v1 prefix) with an emulator.
    expect(standin.requests.map((r) => `${r.method} ${pathOf(r.path)}`)).toEqual([
      `GET /b/${BUCKET}`,
      `GET /b/${BUCKET}`,
      'GET /b/no-such-bucket',
    ]);
  });

  it('multipart save then download round-trips bytes, content type and custom metadata', async () => {
    const name = uniqueName('multipart');
    const data = randomBytes(10_000);
    const token = randomUUID();
    const file = bucket.file(name);
    await file.save(data, {
      resumable: false,
      contentType: 'image/png',
      metadata: { contentType: 'image/png', metadata: { firebaseStorageDownloadTokens: token } },
    });

    const [upload] = standin.requests;
    expect(upload?.method).toBe('POST');
    expect(pathOf(upload?.path ?? '')).toBe(`/upload/storage/v1/b/${BUCKET}/o`);
    expect(Object.fromEntries(queryOf(upload?.path ?? ''))).toEqual({
      name,
      uploadType: 'multipart',
    });

    const stored = standin.objects.get(`${BUCKET}/${name}`);
    expect(stored?.data.equals(data)).toBe(true);
    expect(stored?.contentType).toBe('image/png');
    expect(stored?.metadata).toEqual({ firebaseStorageDownloadTokens: token });
    expect(stored?.md5Hash).toBe(createHash('md5').update(data).digest('base64'));

    standin.requests.length = 0;
    const [downloaded] = await file.download();
    expect(Buffer.compare(downloaded, data)).toBe(0);
    expect(standin.requests).toEqual([
      { method: 'GET', path: `/b/${BUCKET}/o/${enc(name)}?alt=media` },
    ]);

    const [meta] = await file.getMetadata();
    expect(meta.contentType).toBe('image/png');
    expect(meta.size).toBe(String(data.length));
    expect(meta.metadata).toEqual({ firebaseStorageDownloadTokens: token });
    expect(meta.crc32c).toBe(crc32cBase64(data));
    expect(standin.requests.at(-1)).toEqual({
      method: 'GET',
      path: `/b/${BUCKET}/o/${enc(name)}?`,
    });
  });

  it('resumable save in several chunks round-trips', async () => {
    const name = uniqueName('resumable-chunks');
    const chunkSize = 256 * 1024;
    const data = randomBytes(chunkSize * 2 + 12_345);
    const token = randomUUID();
    const file = bucket.file(name, {});
    await file.save(data, {
      resumable: true,
      chunkSize,
      contentType: 'image/png',
      metadata: { contentType: 'image/png', metadata: { firebaseStorageDownloadTokens: token } },
    });

    const methods = standin.requests.map((r) => `${r.method} ${pathOf(r.path)}`);
    expect(methods).toEqual([
      `POST /upload/storage/v1/b/${BUCKET}/o`,
      `PUT /upload/storage/v1/b/${BUCKET}/o`,
      `PUT /upload/storage/v1/b/${BUCKET}/o`,
      `PUT /upload/storage/v1/b/${BUCKET}/o`,
    ]);
    expect(Object.fromEntries(queryOf(standin.requests[0]?.path ?? ''))).toEqual({
      name,
      uploadType: 'resumable',
    });
    expect(queryOf(standin.requests[1]?.path ?? '').get('upload_id')).toMatch(/^[0-9a-f]{32}$/);

    const stored = standin.objects.get(`${BUCKET}/${name}`);
    expect(stored?.data.equals(data)).toBe(true);
    expect(stored?.contentType).toBe('image/png');
    expect(stored?.metadata.firebaseStorageDownloadTokens).toBe(token);

    const [downloaded] = await file.download();
    expect(downloaded.equals(data)).toBe(true);
  });

  it('resumable save in a single PUT round-trips', async () => {
    const name = uniqueName('resumable-single');
    const data = randomBytes(300_000);
    const file = bucket.file(name);
    await file.save(data, { resumable: true, contentType: 'image/png' });
    expect(standin.requests.map((r) => r.method)).toEqual(['POST', 'PUT']);
    const [downloaded] = await file.download();
    expect(downloaded.equals(data)).toBe(true);
    const [meta] = await file.getMetadata();
    expect(meta.contentType).toBe('image/png');
  });

  it('setMetadata patches content type and custom metadata', async () => {
    const name = uniqueName('patch');
    const file = bucket.file(name);
    await file.save(Buffer.from('x'), {
      resumable: false,
      contentType: 'application/octet-stream',
    });
    const token = randomUUID();
    const [patched] = await file.setMetadata({
      contentType: 'image/png',
      metadata: { firebaseStorageDownloadTokens: token, other: 'kept' },
    });
    expect(patched.contentType).toBe('image/png');
    expect(patched.metageneration).toBe('2');
    expect(standin.requests.at(-1)).toEqual({
      method: 'PATCH',
      path: `/b/${BUCKET}/o/${enc(name)}?`, // the client sends an empty query string
    });
    await file.setMetadata({ metadata: { other: null } });
    const [meta] = await file.getMetadata();
    expect(meta.metadata).toEqual({ firebaseStorageDownloadTokens: token });
    expect(meta.metageneration).toBe('3');
  });

  it('exists() and delete()', async () => {
    const name = uniqueName('delete');
    const file = bucket.file(name);
    expect((await file.exists())[0]).toBe(false);
    await file.save(Buffer.from('bye'), { resumable: false });
    expect((await file.exists())[0]).toBe(true);
    await file.delete();
    expect(standin.requests.at(-1)).toEqual({
      method: 'DELETE',
      path: `/b/${BUCKET}/o/${enc(name)}?`, // the client sends an empty query string
    });
    expect((await file.exists())[0]).toBe(false);
    const err = await rejection(file.delete());
    expect(err.code).toBe(404);
  });

  it('downloading a missing object rejects with 404', async () => {
    const name = uniqueName('missing');
    const err = await rejection(bucket.file(name).download());
    expect(err.code).toBe(404);
    expect(err.message).toContain('No such object');
    const metaErr = await rejection(bucket.file(name).getMetadata());
    expect(metaErr.code).toBe(404);
    // 404 is not retried: one request each.
    expect(standin.requests).toHaveLength(2);
  });

  it('serves objects seeded with putObject, and lists them', async () => {
    const name = uniqueName('seeded');
    const data = randomBytes(2048);
    standin.putObject(BUCKET, name, data, 'image/jpeg');
    const [downloaded] = await bucket.file(name).download();
    expect(downloaded.equals(data)).toBe(true);
    const [files] = await bucket.getFiles({ prefix: name.slice(0, name.lastIndexOf('/')) });
    expect(files.map((f) => f.name)).toEqual([name]);
    expect(() => standin.putObject('other-bucket', 'a.png', data)).toThrow(/does not exist/);
  });

  it('the /v0/ token URL serves the bytes only with a valid token', async () => {
    const name = uniqueName('token-url');
    const data = randomBytes(5000);
    const token = randomUUID();
    await bucket.file(name).save(data, {
      resumable: false,
      contentType: 'image/png',
      metadata: { metadata: { firebaseStorageDownloadTokens: `old-token,${token}` } },
    });
    const base = `${standin.url}/v0/b/${BUCKET}/o/${enc(name)}?alt=media`;

    const ok = await fetch(`${base}&token=${token}`);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await ok.arrayBuffer()).equals(data)).toBe(true);

    const first = await fetch(`${base}&token=old-token`);
    expect(first.status).toBe(200);
    await first.arrayBuffer();

    const wrong = await fetch(`${base}&token=${randomUUID()}`);
    expect(wrong.status).toBe(403);
    expect(await wrong.json()).toEqual({ error: { code: 403, message: 'Permission denied.' } });

    const none = await fetch(base);
    expect(none.status).toBe(403);
    await none.arrayBuffer();

    const missing = await fetch(
      `${standin.url}/v0/b/${BUCKET}/o/${enc(uniqueName('nope'))}?alt=media&token=${token}`,
    );
    expect(missing.status).toBe(404);
    await missing.arrayBuffer();
  });

  it("firebase-admin's getDownloadURL returns a URL that fetches the bytes", async () => {
    const name = uniqueName('download-url');
    const data = randomBytes(4096);
    const token = randomUUID();
    const file = bucket.file(name);
    await file.save(data, {
      resumable: false,
      contentType: 'image/png',
      metadata: { metadata: { firebaseStorageDownloadTokens: token } },
    });
    standin.requests.length = 0;
    const url = await getDownloadURL(file);
    expect(url).toBe(`${standin.url}/v0/b/${BUCKET}/o/${enc(name)}?alt=media&token=${token}`);
    expect(standin.requests).toEqual([{ method: 'GET', path: `/v0/b/${BUCKET}/o/${enc(name)}` }]);
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await res.arrayBuffer()).equals(data)).toBe(true);
  });

  it('getDownloadURL rejects for an object without a download token', async () => {
    const name = uniqueName('no-token');
    await bucket.file(name).save(Buffer.from('x'), { resumable: false, contentType: 'image/png' });
    const err = await rejection(getDownloadURL(bucket.file(name)));
    expect(err.code).toBe('storage/no-download-token');
  });

  it('an injected 503 on a multipart upload is seen by the client (not retried without a precondition)', async () => {
    const name = uniqueName('fault');
    standin.injectFaults({ status: 503, match: /^POST \/upload\// });
    const err = await rejection(
      bucket.file(name).save(Buffer.from('data'), { resumable: false, contentType: 'image/png' }),
    );
    expect(err.code).toBe(503);
    expect(standin.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
    expect(standin.objects.has(`${BUCKET}/${name}`)).toBe(false);
  });

  it('an injected 503 on a resumable session start is seen by the client', async () => {
    const name = uniqueName('fault-resumable');
    standin.injectFaults({ status: 503, match: /uploadType=resumable/ });
    const err = await rejection(
      bucket.file(name).save(randomBytes(1000), { resumable: true, contentType: 'image/png' }),
    );
    // The session start goes through gaxios: the error is a GaxiosError with `status` (and
    // `response.status`); since @google-cloud/storage 8 (gaxios 7) its `code` is the status too.
    expect(err.code).toBe(503);
    expect((err as { status?: unknown }).status).toBe(503);
    expect(standin.requests).toHaveLength(1);
    expect(standin.objects.has(`${BUCKET}/${name}`)).toBe(false);
  });

  it('with ifGenerationMatch the client retries an injected 503 and succeeds', async () => {
    // save() retries through async-retry with its 1 s minimum delay.
    {
      const retryingBucket = freshBucket();
      const name = uniqueName('fault-retry');
      const data = randomBytes(1000);
      standin.injectFaults({ status: 503, match: /^POST \/upload\// });
      await retryingBucket.file(name).save(data, {
        resumable: false,
        contentType: 'image/png',
        preconditionOpts: { ifGenerationMatch: 0 },
      });
      const uploads = standin.requests.filter((r) => r.method === 'POST');
      expect(uploads).toHaveLength(2);
      expect(queryOf(uploads[0]?.path ?? '').get('ifGenerationMatch')).toBe('0');
      expect(standin.objects.get(`${BUCKET}/${name}`)?.data.equals(data)).toBe(true);

      // The precondition is enforced: a second create-only save fails with 412.
      const err = await rejection(
        retryingBucket.file(name).save(data, {
          resumable: false,
          preconditionOpts: { ifGenerationMatch: 0 },
        }),
      );
      expect(err.code).toBe(412);
    }
  });

  it('faults are used once, in order, only on matching requests', async () => {
    const retryingBucket = freshBucket();
    const name = uniqueName('fault-order');
    standin.putObject(BUCKET, name, Buffer.from('abc'), 'image/png');
    standin.injectFaults({ status: 404, match: /^PATCH / }, { status: 500 });
    // GET (metadata) skips the PATCH fault, takes the unmatched 500 one, and the client
    // retries 5xx on GETs.
    const [meta] = await retryingBucket.file(name).getMetadata();
    expect(meta.size).toBe('3');
    expect(standin.requests.filter((r) => r.method === 'GET')).toHaveLength(2);
    const err = await rejection(
      retryingBucket.file(name).setMetadata({ contentType: 'text/plain' }),
    );
    expect(err.code).toBe(404);
    const [after] = await retryingBucket.file(name).setMetadata({ contentType: 'text/plain' });
    expect(after.contentType).toBe('text/plain');
  });

  it('client quirk: a multipart save without a precondition turns off retries for its client', async () => {
    // Documents @google-cloud/storage behaviour (7.22, still in 8.4) that production code must
    // know about: File#save sets storage.retryOptions.autoRetry = false when it may not retry,
    // and the multipart path never restores it, so later GETs on the same client are not retried.
    const quirkBucket = freshBucket();
    expect(quirkBucket.storage.retryOptions.autoRetry).toBe(true);
    const name = uniqueName('quirk');
    await quirkBucket.file(name).save(Buffer.from('abc'), { resumable: false });
    expect(quirkBucket.storage.retryOptions.autoRetry).toBe(false);
    standin.injectFaults({ status: 503, match: /^GET / });
    const err = await rejection(quirkBucket.file(name).getMetadata());
    expect(err.code).toBe(503);
  });
});

describe('storage stand-in robustness (raw HTTP)', () => {
  async function raw(
    method: string,
    path: string,
    body?: string | Buffer,
    headers: Record<string, string> = {},
  ): Promise<{
    status: number;
    body: string;
    headers: Record<string, string | string[] | undefined>;
  }> {
    const { port } = new URL(standin.url);
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port: Number(port), method, path, headers },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              body: Buffer.concat(chunks).toString(),
              headers: res.headers,
            }),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  it('answers bad input with GCS-shaped errors and keeps serving', async () => {
    const cases: Array<[string, string, string | undefined, Record<string, string>, number]> = [
      ['GET', `/b/${BUCKET}/o/%E0%A4%A`, undefined, {}, 400],
      ['GET', '/b/other-bucket/o/x.png', undefined, {}, 404],
      [
        'POST',
        `/upload/storage/v1/b/${BUCKET}/o?uploadType=multipart&name=a.png`,
        'garbage',
        { 'content-type': 'multipart/related; boundary=zz' },
        400,
      ],
      [
        'POST',
        `/upload/storage/v1/b/${BUCKET}/o?uploadType=multipart&name=a.png`,
        'garbage',
        { 'content-type': 'text/plain' },
        400,
      ],
      [
        'POST',
        `/upload/storage/v1/b/${BUCKET}/o?uploadType=resumable&name=a.png`,
        '{not json',
        { 'content-type': 'application/json' },
        400,
      ],
      [
        'POST',
        `/upload/storage/v1/b/${BUCKET}/o?uploadType=resumable`,
        '{}',
        { 'content-type': 'application/json' },
        400,
      ],
      ['POST', `/upload/storage/v1/b/${BUCKET}/o?name=a.png`, 'x', {}, 400],
      ['PUT', `/upload/storage/v1/b/${BUCKET}/o?uploadType=resumable&upload_id=nope`, 'x', {}, 404],
      ['PATCH', `/b/${BUCKET}/o/${enc(uniqueName('none'))}`, '[]', {}, 404],
      ['GET', '/storage/v1/b', undefined, {}, 501],
      ['POST', '/b/demo-bucket/o/x/compose', '{}', {}, 501],
      ['GET', '/', undefined, {}, 501],
      ['OPTIONS', `/v0/b/${BUCKET}/o/x`, undefined, {}, 501],
    ];
    for (const [method, path, body, headers, status] of cases) {
      const res = await raw(method, path, body, headers);
      expect({ method, path, status: res.status }).toEqual({ method, path, status });
      const parsed = JSON.parse(res.body) as {
        error: { code: number; message: string; errors: unknown[] };
      };
      expect(parsed.error.code).toBe(status);
      expect(parsed.error.errors).toHaveLength(1);
    }
    expect((await raw('GET', `/b/${BUCKET}`)).status).toBe(200);
  });

  it('validates resumable chunks, the final X-Goog-Hash and rejects bad Content-Range', async () => {
    const name = uniqueName('raw-resumable');
    const start = await raw(
      'POST',
      `/upload/storage/v1/b/${BUCKET}/o?uploadType=resumable&name=${enc(name)}`,
      JSON.stringify({ metadata: { a: 'b' } }),
      { 'content-type': 'application/json', 'x-upload-content-type': 'image/png' },
    );
    expect(start.status).toBe(200);
    const location = new URL(String(start.headers.location));
    expect(location.origin).toBe(standin.url);
    const session = location.pathname + location.search;

    expect((await raw('PUT', session, 'abc', { 'content-range': 'bytes nonsense' })).status).toBe(
      400,
    );
    expect((await raw('PUT', session, 'abc', { 'content-range': 'bytes 0-9/*' })).status).toBe(400);
    const first = await raw('PUT', session, 'abc', { 'content-range': 'bytes 0-2/*' });
    expect(first.status).toBe(308);
    expect(first.headers.range).toBe('bytes=0-2');
    const status = await raw('PUT', session, '', { 'content-range': 'bytes */*' });
    expect(status.status).toBe(308);
    expect(status.headers.range).toBe('bytes=0-2');

    const bad = await raw('PUT', session, 'def', {
      'content-range': 'bytes 3-5/6',
      'x-goog-hash': `crc32c=${crc32cBase64(Buffer.from('abcxyz'))}`,
    });
    expect(bad.status).toBe(400);
    expect(bad.body).toContain("doesn't match");
    expect(standin.objects.has(`${BUCKET}/${name}`)).toBe(false);

    // A fresh session, same chunks with the right hash: stored with the header content type.
    const again = await raw(
      'POST',
      `/upload/storage/v1/b/${BUCKET}/o?uploadType=resumable&name=${enc(name)}`,
      '',
      { 'x-upload-content-type': 'image/png' },
    );
    const session2 = new URL(String(again.headers.location));
    const path2 = session2.pathname + session2.search;
    expect((await raw('PUT', path2, 'abc', { 'content-range': 'bytes 0-2/*' })).status).toBe(308);
    const done = await raw('PUT', path2, 'def', {
      'content-range': 'bytes 3-5/6',
      'x-goog-hash': `crc32c=${crc32cBase64(Buffer.from('abcdef'))}`,
    });
    expect(done.status).toBe(200);
    const resource = JSON.parse(done.body) as Record<string, unknown>;
    expect(resource).toMatchObject({ name, bucket: BUCKET, size: '6', contentType: 'image/png' });
    expect(standin.objects.get(`${BUCKET}/${name}`)?.data.toString()).toBe('abcdef');
  });

  it('a status-0 fault drops the connection and the server keeps serving', async () => {
    standin.injectFaults({ status: 0, match: /^GET \/b\/demo-bucket$/ });
    await expect(raw('GET', `/b/${BUCKET}`)).rejects.toThrow();
    expect((await raw('GET', `/b/${BUCKET}`)).status).toBe(200);
  });
});
