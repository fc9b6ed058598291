import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { deleteApp, initializeApp, type App } from 'firebase-admin/app';
import { FieldValue, getFirestore, type Firestore } from 'firebase-admin/firestore';
import { inject } from 'vitest';
import {
  startClipdropStandin,
  type ClipdropStandin,
  type ClipdropStandinOptions,
} from '../../dev/clipdrop-standin.js';
import { startStorageStandin, type StorageStandin } from '../../dev/storage-standin.js';
import { loadConfig, type Config } from '../../src/config/load.js';
import { CHECKPOINT_LIFECYCLE } from '../../src/adapters/storage/work-cache.js';
import { composeWorker, type ShowcaseWorker } from '../../src/compose.js';
import type { JobOutcome } from '../../src/jobs/ports.js';
import { clickSurely } from './app-write.js';
import { closeWatches } from './wait.js';

export const TEST_API_KEY = 'cd-test-key-0123456789abcdef';
export const BUCKET = 'demo-showcase.appspot.com';

/** A tiny HTTP server for http(s) sources: path → body (and content type). */
export interface ImageHost {
  host: string;
  url(path: string): string;
  set(path: string, body: Buffer, contentType?: string): void;
  requests: string[];
  close(): Promise<void>;
}

export async function startImageHost(): Promise<ImageHost> {
  const files = new Map<string, { body: Buffer; type: string }>();
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(req.url ?? '');
    const file = files.get(req.url ?? '');
    if (!file) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': file.type, 'content-length': file.body.length });
    res.end(file.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    host,
    url: (path) => `http://${host}${path}`,
    set: (path, body, type = 'image/png') => files.set(path, { body, type }),
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface Stack {
  projectId: string;
  emulatorHost: string;
  clipdrop: ClipdropStandin;
  storage: StorageStandin;
  images: ImageHost;
  /** The web app's view of Firestore (a separate client). */
  db: Firestore;
  env: Record<string, string>;
  /** Starts an in-process worker; several may run at once. */
  startWorker(env?: Record<string, string>): Promise<RunningWorker>;
  /** Writes a character and clicks Process. */
  click(id: string, fields?: { imageUrl?: string; userId?: string }): Promise<void>;
  close(): Promise<void>;
}

export interface RunningWorker {
  app: ShowcaseWorker;
  config: Config;
  outcomes: JobOutcome[];
  logs: string[];
  stop(): Promise<void>;
}

export async function startStack(
  opts: { clipdrop?: ClipdropStandinOptions; env?: Record<string, string> } = {},
): Promise<Stack> {
  const emulatorHost = inject('firestoreEmulatorHost');
  // The SDK lets this variable override every client's host setting: a test that routes a
  // worker through a proxy must not be silently bypassed.
  delete process.env.FIRESTORE_EMULATOR_HOST;
  const projectId = `demo-${randomUUID().slice(0, 12)}`;
  // A high rate limit unless a test asks for the real one (60 a minute): most tests are about other things.
  const clipdrop = await startClipdropStandin({
    apiKey: TEST_API_KEY,
    rpm: 100_000,
    ...opts.clipdrop,
  });
  const storage = await startStorageStandin({ buckets: [BUCKET] });
  // Set up as docs/performance.md asks: leftover checkpoints expire (doctor checks it).
  storage.lifecycles.set(BUCKET, CHECKPOINT_LIFECYCLE);
  const images = await startImageHost();
  // The Storage SDK reads this when a client is built; a stale value from another stack would win.
  delete process.env.STORAGE_EMULATOR_HOST;
  process.env.FIREBASE_STORAGE_EMULATOR_HOST = storage.host;

  const appSide: App = initializeApp({ projectId }, `app-side-${projectId}`);
  const db = getFirestore(appSide);
  db.settings({ host: emulatorHost, ssl: false, universeDomain: 'googleapis.com' }); // no metadata-server probe

  const env: Record<string, string> = {
    NODE_ENV: 'test',
    GOOGLE_CLOUD_PROJECT: projectId,
    STORAGE_BUCKET: BUCKET,
    FIRESTORE_EMULATOR_HOST: emulatorHost,
    FIREBASE_STORAGE_EMULATOR_HOST: storage.host,
    CLIPDROP_API_KEY: TEST_API_KEY,
    CLIPDROP_API_URL: clipdrop.url,
    SOURCE_ALLOWED_HOSTS: images.host,
    LOG_LEVEL: 'debug',
    LOG_FORMAT: 'json',
    ...opts.env,
  };
  const workers: RunningWorker[] = [];

  return {
    projectId,
    emulatorHost,
    clipdrop,
    storage,
    images,
    db,
    env,
    startWorker(extra = {}) {
      const config = loadConfig({ env: { ...env, ...extra }, configDir: 'config' });
      const logs: string[] = [];
      const stream = new PassThrough();
      stream.on('data', (chunk: Buffer) =>
        logs.push(...chunk.toString('utf8').split('\n').filter(Boolean)),
      );
      const app = composeWorker(config, { logStream: stream });
      const outcomes: JobOutcome[] = [];
      app.outcomes$.subscribe({ next: (o) => outcomes.push(o), error: () => undefined });
      app.worker.start(() => undefined);
      let stopped = false;
      const running: RunningWorker = {
        app,
        config,
        outcomes,
        logs,
        async stop() {
          if (stopped) return;
          stopped = true;
          await app.shutdown();
        },
      };
      workers.push(running);
      return Promise.resolve(running);
    },
    async click(id, fields = {}) {
      const ref = db.doc(`characters/${id}`);
      await clickSurely(ref, (clickId) =>
        ref.set(
          {
            core: { name: `Character ${id}` },
            meta: { userId: fields.userId ?? 'user-1' },
            visuals: {
              imageUrl: fields.imageUrl ?? `gs://${BUCKET}/raw-uploads/user-1/${id}.png`,
              showcaseProcessingStatus: 'removing-background',
              clickId,
            },
          },
          { merge: true },
        ),
      );
    },
    async close() {
      await Promise.all(workers.map((w) => w.stop()));
      closeWatches(db);
      await deleteApp(appSide);
      await Promise.all([clipdrop.close(), storage.close(), images.close()]);
    },
  };
}

/** The app clicking Process again on an existing character (status only). */
export async function reclick(db: Firestore, id: string): Promise<void> {
  const ref = db.doc(`characters/${id}`);
  await clickSurely(ref, (clickId) =>
    ref.update({
      'visuals.showcaseProcessingStatus': 'removing-background',
      'visuals.clickedAt': FieldValue.serverTimestamp(),
      'visuals.clickId': clickId,
    }),
  );
}
