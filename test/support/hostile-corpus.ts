/**
 * The hostile-document corpus (issue 5), shared by test/integration/hostile-input.test.ts and
 * bench/memory-hostile.ts: documents a broken or malicious app or user could write, the code
 * each must fail with, and the servers they point at. No vitest imports: the bench runs it too.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DocumentData, Firestore } from 'firebase-admin/firestore';
import type { ErrorCode } from '../../src/jobs/errors.js';
import { HTML_PAGE, SVG_IMAGE, pngBomb, truncated } from './hostile-images.js';
import { characterPicture } from './images.js';

/** A loopback HTTP server that records the path of every request it receives. */
export interface RecordingServer {
  host: string;
  port: number;
  requests: string[];
  close(): Promise<void>;
}

export async function startRecordingServer(
  handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) =>
    res.end('you should not be here'),
): Promise<RecordingServer> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push((req.url ?? '').split('?')[0] ?? '');
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    port,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface TricksOptions {
  /** Where /redirect-canary points: a server that must never be reached. */
  canaryUrl: string;
  bucket: string;
  /** Bytes per 50 ms on /slow-big.png (chunked, never ends); default 32 KiB. */
  slowChunkBytes?: number;
}

/**
 * An allowed host that misbehaves: redirects to forbidden places, error pages dressed as
 * images, truncated and bomb PNGs, oversized and endless bodies, a 500 that never passes.
 */
export async function startTricksServer(opts: TricksOptions): Promise<RecordingServer> {
  const png = await characterPicture(400, 300);
  const bomb = pngBomb();
  const slowChunk = Buffer.alloc(opts.slowChunkBytes ?? 32 * 1024, 1);
  return startRecordingServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    const redirect = (location: string) => res.writeHead(302, { location }).end();
    const forever = (chunk: Buffer | string, everyMs: number) => {
      const timer = setInterval(() => res.write(chunk), everyMs);
      res.on('close', () => clearInterval(timer));
    };
    switch (path) {
      case '/redirect-canary':
        return redirect(opts.canaryUrl);
      case '/redirect-canary-late':
        return redirect('/redirect-canary');
      case '/redirect-metadata':
        return redirect('http://169.254.169.254/latest/meta-data/iam/security-credentials/');
      case '/redirect-file':
        return redirect('file:///etc/passwd');
      case '/redirect-gs':
        return redirect(`gs://${opts.bucket}/raw-uploads/user-1/seed.png`);
      case '/loop':
        return redirect('/loop');
      case '/html.png':
        // Claims to be a PNG: only the bytes count.
        return res.writeHead(200, { 'content-type': 'image/png' }).end(HTML_PAGE);
      case '/image.svg':
        return res.writeHead(200, { 'content-type': 'image/svg+xml' }).end(SVG_IMAGE);
      case '/truncated.png':
        return res.writeHead(200, { 'content-type': 'image/png' }).end(truncated(png));
      case '/empty.png':
        return res.writeHead(200, { 'content-type': 'image/png', 'content-length': 0 }).end();
      case '/bomb.png':
        return res.writeHead(200, { 'content-type': 'image/png' }).end(bomb);
      case '/slow-big.png':
        // Chunked, no length: only counting the bytes can stop it (before the timeout).
        res.writeHead(200, { 'content-type': 'image/png' });
        return forever(slowChunk, 50);
      case '/huge-length.png':
        res.writeHead(200, { 'content-type': 'image/png', 'content-length': 10 * 1024 ** 3 });
        return forever(Buffer.alloc(1024), 200);
      case '/trickle.png':
        res.writeHead(200, { 'content-type': 'image/png' });
        return forever('x', 100);
      case '/always-500.png':
        return res.writeHead(500).end('internal error');
      default:
        return res.writeHead(404, { 'content-type': 'text/html' }).end('<h1>not found</h1>');
    }
  });
}

/** Another user's private upload: user-1's characters must never reach it through gs://. */
export const OTHER_USERS_UPLOAD = 'raw-uploads/user-2/private.png';

/**
 * Objects that name user-1 but lie outside `raw-uploads/user-1/`, where storage.rules let
 * user-1 read: a moderator's folder, another user's, and a folder whose name only starts with
 * the uid. The first two were user-1's sources under the old default (the uid as any folder).
 */
export const OUTSIDE_OWNERS_FOLDER = [
  'moderation/user-1/evidence.png',
  'users/user-2/blocked/user-1/photo.png',
  'raw-uploads/user-1x/photo.png',
] as const;

/** Objects under the worker's own prefixes (results, checkpoints, result cache). */
export const WORKER_OBJECTS = [
  'showcase-images/user-2/c2/showcase_c2.png',
  'showcase-work/c2/key2/cutout.png',
  'showcase-cache/key2.png',
] as const;

/**
 * Objects the gs:// cases read: a bomb, one over the byte cap, and a good picture; and good
 * pictures that are not user-1's to read: another user's upload, objects that name user-1
 * outside their folder, and one under each of the worker's prefixes (so a read, had it
 * happened, would have succeeded).
 */
export async function seedHostileObjects(
  putObject: (bucket: string, name: string, data: Buffer) => unknown,
  bucket: string,
  maxBytes: number,
): Promise<void> {
  putObject(bucket, 'raw-uploads/user-1/bomb.png', pngBomb());
  putObject(bucket, 'raw-uploads/user-1/big.png', Buffer.alloc(maxBytes + 1));
  putObject(bucket, 'raw-uploads/user-1/seed.png', await characterPicture(400, 300));
  const picture = await characterPicture(64, 48, 'png', 5);
  for (const name of [OTHER_USERS_UPLOAD, ...OUTSIDE_OWNERS_FOLDER, ...WORKER_OBJECTS]) {
    putObject(bucket, name, picture);
  }
}

/** A Firebase download URL of an object on the storage host (the emulator's form). */
export function firebaseDownloadUrl(
  storageHost: string,
  bucket: string,
  name: string,
  token: string,
): string {
  return `http://${storageHost}/v0/b/${bucket}/o/${encodeURIComponent(name)}?alt=media&token=${token}`;
}

/** A hostile document, the code it must fail with, and how long a worker may spend on it. */
export interface HostileCase {
  id: string;
  code: ErrorCode;
  /** The character document as written, Process clicked. */
  doc: DocumentData;
  /** Bound on claim → failure, ms, when longer than the default (timeouts and retries). */
  within?: number;
}

export const NO_META = Symbol('no meta');

/** A clicked character document with these (possibly wrong) fields. */
export function hostileDoc(imageUrl: unknown, meta: unknown = { userId: 'user-1' }): DocumentData {
  return {
    core: { name: 'Hostile' },
    ...(meta === NO_META ? {} : { meta }),
    visuals: {
      ...(imageUrl === undefined ? {} : { imageUrl }),
      showcaseProcessingStatus: 'removing-background',
    },
  };
}

export interface CorpusOptions {
  tricksHost: string;
  /** host:port of the Storage emulator (stand-in) the worker is configured with. */
  storageHost: string;
  canaryPort: number;
  bucket: string;
  retryMaxTries: number;
  sourceTimeoutMs: number;
}

export async function hostileCases(opts: CorpusOptions): Promise<HostileCase[]> {
  const t = (path: string) => `http://${opts.tricksHost}${path}`;
  const gs = (path: string) => `gs://${opts.bucket}/${path}`;
  const canaryUrl = `http://127.0.0.1:${opts.canaryPort}/stolen`;
  const dataUrl = `data:image/png;base64,${(await characterPicture(16, 16)).toString('base64')}`;
  const doc = hostileDoc;
  const user = (userId: unknown) => doc(gs('raw-uploads/user-1/seed.png'), { userId });
  return [
    // The document itself.
    { id: 'h-no-url', code: 'INVALID_DOCUMENT', doc: doc(undefined) },
    { id: 'h-url-number', code: 'INVALID_DOCUMENT', doc: doc(42) },
    { id: 'h-url-object', code: 'INVALID_DOCUMENT', doc: doc({ href: t('/x') }) },
    { id: 'h-url-huge', code: 'INVALID_DOCUMENT', doc: doc(t(`/${'a'.repeat(5000)}`)) },
    { id: 'h-no-meta', code: 'INVALID_DOCUMENT', doc: doc(gs('x.png'), NO_META) },
    { id: 'h-no-user', code: 'INVALID_DOCUMENT', doc: doc(gs('x.png'), {}) },
    { id: 'h-user-dots', code: 'INVALID_DOCUMENT', doc: user('../x') },
    { id: 'h-user-slash', code: 'INVALID_DOCUMENT', doc: user('a/b') },
    { id: 'h-user-long', code: 'INVALID_DOCUMENT', doc: user('u'.repeat(300)) },
    { id: 'h-user-bidi', code: 'INVALID_DOCUMENT', doc: user('user\u202egnp.exe') },
    { id: 'h-user-number', code: 'INVALID_DOCUMENT', doc: user(7) },
    { id: `h-long-id-${'i'.repeat(200)}`, code: 'INVALID_DOCUMENT', doc: doc(gs('x.png')) },
    // Schemes and hosts.
    { id: 'h-file', code: 'SOURCE_URL_FORBIDDEN', doc: doc('file:///etc/passwd') },
    { id: 'h-javascript', code: 'SOURCE_URL_FORBIDDEN', doc: doc('javascript:alert(1)') },
    { id: 'h-data', code: 'SOURCE_URL_FORBIDDEN', doc: doc(dataUrl) },
    { id: 'h-ftp', code: 'SOURCE_URL_FORBIDDEN', doc: doc(`ftp://${opts.tricksHost}/a.png`) },
    { id: 'h-not-a-url', code: 'SOURCE_URL_FORBIDDEN', doc: doc('raw-uploads/a.png') },
    {
      id: 'h-metadata',
      code: 'SOURCE_URL_FORBIDDEN',
      doc: doc('http://169.254.169.254/latest/meta-data/iam/security-credentials/'),
    },
    { id: 'h-canary', code: 'SOURCE_URL_FORBIDDEN', doc: doc(canaryUrl) },
    {
      id: 'h-canary-localhost',
      code: 'SOURCE_URL_FORBIDDEN',
      doc: doc(`http://localhost:${opts.canaryPort}/stolen`),
    },
    {
      id: 'h-canary-decimal',
      code: 'SOURCE_URL_FORBIDDEN',
      doc: doc(`http://2130706433:${opts.canaryPort}/stolen`),
    },
    {
      id: 'h-canary-https',
      code: 'SOURCE_URL_FORBIDDEN',
      doc: doc(`https://127.0.0.1:${opts.canaryPort}/stolen`),
    },
    {
      id: 'h-canary-userinfo',
      code: 'SOURCE_URL_FORBIDDEN',
      doc: doc(`http://${opts.tricksHost}@127.0.0.1:${opts.canaryPort}/stolen`),
    },
    {
      id: 'h-other-host',
      code: 'SOURCE_URL_FORBIDDEN',
      doc: doc('https://evil.example.com/a.png'),
    },
    // Redirects from an allowed host: each hop is checked again.
    { id: 'h-redirect-canary', code: 'SOURCE_URL_FORBIDDEN', doc: doc(t('/redirect-canary')) },
    {
      id: 'h-redirect-canary-late',
      code: 'SOURCE_URL_FORBIDDEN',
      doc: doc(t('/redirect-canary-late')),
    },
    {
      id: 'h-redirect-metadata',
      code: 'SOURCE_URL_FORBIDDEN',
      doc: doc(t('/redirect-metadata')),
    },
    { id: 'h-redirect-file', code: 'SOURCE_URL_FORBIDDEN', doc: doc(t('/redirect-file')) },
    { id: 'h-redirect-gs', code: 'SOURCE_URL_FORBIDDEN', doc: doc(t('/redirect-gs')) },
    { id: 'h-redirect-loop', code: 'SOURCE_URL_FORBIDDEN', doc: doc(t('/loop')) },
    // gs:// outside the configured bucket, or a name that would need resolving.
    {
      id: 'h-gs-other-bucket',
      code: 'SOURCE_URL_FORBIDDEN',
      doc: doc('gs://other-bucket.appspot.com/raw-uploads/user-1/seed.png'),
    },
    {
      id: 'h-gs-traversal',
      code: 'SOURCE_URL_FORBIDDEN',
      doc: doc(gs('raw-uploads/../showcase-images/user-2/c/showcase_c.png')),
    },
    {
      id: 'h-gs-encoded-traversal',
      code: 'SOURCE_URL_FORBIDDEN',
      doc: doc(gs('raw-uploads/%2e%2e/raw-uploads/user-1/seed.png')),
    },
    // gs:// objects of the bucket that are not the owner's (SOURCE_GS_PATHS): refused before
    // any read, though each exists and is a good picture.
    { id: 'h-gs-other-user', code: 'SOURCE_URL_FORBIDDEN', doc: doc(gs(OTHER_USERS_UPLOAD)) },
    { id: 'h-gs-moderation', code: 'SOURCE_URL_FORBIDDEN', doc: doc(gs(OUTSIDE_OWNERS_FOLDER[0])) },
    { id: 'h-gs-blocked', code: 'SOURCE_URL_FORBIDDEN', doc: doc(gs(OUTSIDE_OWNERS_FOLDER[1])) },
    { id: 'h-gs-uid-prefix', code: 'SOURCE_URL_FORBIDDEN', doc: doc(gs(OUTSIDE_OWNERS_FOLDER[2])) },
    ...WORKER_OBJECTS.map((name) => ({
      id: `h-gs-${name.split('/')[0]}`,
      code: 'SOURCE_URL_FORBIDDEN' as const,
      doc: doc(gs(name)),
    })),
    {
      id: 'h-gs-own-result',
      code: 'SOURCE_URL_FORBIDDEN',
      doc: doc(gs('showcase-images/user-1/c1/showcase_c1.png')),
    },
    // The emulator's JSON API answers as to an admin: only its token endpoint is a source.
    {
      id: 'h-storage-json-api',
      code: 'SOURCE_URL_FORBIDDEN',
      doc: doc(
        `http://${opts.storageHost}/b/${opts.bucket}/o/${encodeURIComponent(OTHER_USERS_UPLOAD)}?alt=media`,
      ),
    },
    // A Firebase download URL is its token: a wrong one is refused by Storage (403), so the
    // source is as good as missing, and nothing is read with the worker's own rights.
    {
      id: 'h-token-wrong',
      code: 'SOURCE_NOT_FOUND',
      doc: doc(firebaseDownloadUrl(opts.storageHost, opts.bucket, OTHER_USERS_UPLOAD, 'not-it')),
    },
    // What comes back is not there, not an image, or too much.
    { id: 'h-404', code: 'SOURCE_NOT_FOUND', doc: doc(t('/missing.png')) },
    {
      id: 'h-gs-missing',
      code: 'SOURCE_NOT_FOUND',
      doc: doc(gs('raw-uploads/user-1/nope.png')),
    },
    { id: 'h-html', code: 'SOURCE_NOT_IMAGE', doc: doc(t('/html.png')) },
    { id: 'h-svg', code: 'SOURCE_NOT_IMAGE', doc: doc(t('/image.svg')) },
    { id: 'h-truncated', code: 'SOURCE_NOT_IMAGE', doc: doc(t('/truncated.png')) },
    { id: 'h-empty', code: 'SOURCE_NOT_IMAGE', doc: doc(t('/empty.png')) },
    // A decompression bomb is refused from its header, quickly.
    { id: 'h-bomb', code: 'SOURCE_TOO_LARGE', doc: doc(t('/bomb.png')), within: 2_000 },
    {
      id: 'h-gs-bomb',
      code: 'SOURCE_TOO_LARGE',
      doc: doc(gs('raw-uploads/user-1/bomb.png')),
      within: 2_000,
    },
    { id: 'h-slow-big', code: 'SOURCE_TOO_LARGE', doc: doc(t('/slow-big.png')) },
    { id: 'h-huge-length', code: 'SOURCE_TOO_LARGE', doc: doc(t('/huge-length.png')) },
    { id: 'h-gs-big', code: 'SOURCE_TOO_LARGE', doc: doc(gs('raw-uploads/user-1/big.png')) },
    // Transient failures that never pass: bounded retries, then a clear code.
    {
      id: 'h-always-500',
      code: 'SOURCE_UNAVAILABLE',
      doc: doc(t('/always-500.png')),
      within: 10_000,
    },
    {
      id: 'h-trickle',
      code: 'TIMEOUT',
      doc: doc(t('/trickle.png')),
      within: opts.retryMaxTries * opts.sourceTimeoutMs + 10_000,
    },
  ];
}

/** Writes every case in one batch (clicks at once, and little load on a shared emulator). */
export async function clickAll(db: Firestore, cases: HostileCase[]): Promise<void> {
  const batch = db.batch();
  for (const c of cases) batch.set(db.doc(`characters/${c.id}`), c.doc);
  await batch.commit();
}

const statusOf = (data: DocumentData | undefined): string | undefined =>
  (data?.visuals as { showcaseProcessingStatus?: string } | undefined)?.showcaseProcessingStatus;

/** Watches the collection until every id is complete or failed; resolves with their data. */
export function watchUntilTerminal(
  db: Firestore,
  ids: string[],
  timeoutMs: number,
): Promise<Map<string, DocumentData>> {
  const wanted = new Set(ids);
  const done = new Map<string, DocumentData>();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      const missing = ids.filter((id) => !done.has(id)).map((id) => id.slice(0, 30));
      reject(new Error(`not terminal after ${timeoutMs} ms: ${missing.join(', ')}`));
    }, timeoutMs);
    const unsubscribe = db.collection('characters').onSnapshot((snapshot) => {
      for (const doc of snapshot.docs) {
        const data = doc.data();
        if (wanted.has(doc.id) && ['complete', 'failed'].includes(statusOf(data) ?? '')) {
          done.set(doc.id, data);
        }
      }
      if (done.size === wanted.size) {
        clearTimeout(timer);
        unsubscribe();
        resolve(done);
      }
    }, reject);
  });
}
