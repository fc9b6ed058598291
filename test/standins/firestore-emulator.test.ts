import { randomUUID } from 'node:crypto';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { deleteApp, initializeApp, type App } from 'firebase-admin/app';
import { getFirestore, type DocumentSnapshot, type Firestore } from 'firebase-admin/firestore';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';

import {
  clearFirestore,
  EmulatorNotFoundError,
  findFirestoreEmulator,
  readJarMainClass,
  startFirestoreEmulator,
  type FirestoreEmulator,
} from '../../dev/firestore-emulator.js';
import { startTcpProxy, type TcpProxy } from '../../dev/tcp-proxy.js';

// Also when run by a config without these timeouts (e.g. vitest.standalone.config.ts).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 90_000 });

// ---------------------------------------------------------------------------
// helpers

let host = '';
let ownEmulator: FirestoreEmulator | undefined;
const savedEnvHost = process.env.FIRESTORE_EMULATOR_HOST;
const apps: App[] = [];

const uid = (): string => randomUUID().slice(0, 8);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * A firebase-admin Firestore pointed at `target` for this app only.
 * settings({ host, ssl: false }) works per app ONLY while
 * process.env.FIRESTORE_EMULATOR_HOST is unset: the SDK re-reads the variable
 * in the Firestore constructor and in settings(), and the variable wins.
 * (initializeFirestore(app, settings) only forwards `preferRest`: no host there.)
 */
function firestoreAt(target: string, projectId: string): Firestore {
  const app = initializeApp({ projectId }, `t-${projectId}-${uid()}`);
  apps.push(app);
  const db = getFirestore(app);
  db.settings({ host: target, ssl: false });
  return db;
}

function splitHost(h: string): { host: string; port: number } {
  const i = h.lastIndexOf(':');
  return { host: h.slice(0, i), port: Number(h.slice(i + 1)) };
}

/** Tracks the latest snapshot of one document listener and lets tests wait on it. */
function watchDoc(db: Firestore, path: string) {
  let latest: DocumentSnapshot | undefined;
  let error: (Error & { code?: unknown }) | undefined;
  let errorAt = 0;
  const snapshots: Array<{ at: number; data: unknown }> = [];
  const waiters = new Set<() => void>();
  const notify = (): void => waiters.forEach((w) => w());
  const unsubscribe = db.doc(path).onSnapshot(
    (snap) => {
      latest = snap;
      snapshots.push({ at: Date.now(), data: snap.data() });
      notify();
    },
    (err) => {
      error = err;
      errorAt = Date.now();
      notify();
    },
  );
  return {
    snapshots,
    get error() {
      return error;
    },
    get errorAt() {
      return errorAt;
    },
    unsubscribe,
    /** Resolves when pred(latest) holds; rejects on listener error or timeout. */
    until(pred: (s: DocumentSnapshot) => boolean, timeoutMs: number): Promise<DocumentSnapshot> {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (error) {
            cleanup();
            reject(new Error(`listener error callback: ${String(error.code)} ${error.message}`));
          } else if (latest && pred(latest)) {
            cleanup();
            resolve(latest);
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(
            new Error(
              `no matching snapshot within ${timeoutMs} ms; seen: ${JSON.stringify(
                snapshots.map((x) => x.data ?? null),
              )}`,
            ),
          );
        }, timeoutMs);
        const cleanup = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
  };
}

beforeAll(async () => {
  // Per-app hosts below only work with the variable unset (see firestoreAt).
  delete process.env.FIRESTORE_EMULATOR_HOST;
  const provided = inject('firestoreEmulatorHost') as string | undefined;
  if (provided) {
    host = provided;
  } else {
    // Run without the global setup (e.g. the standalone stand-ins config).
    ownEmulator = await startFirestoreEmulator();
    host = ownEmulator.host;
  }
});

afterAll(async () => {
  await Promise.allSettled(
    apps.map(async (app) => {
      await getFirestore(app).terminate();
      await deleteApp(app);
    }),
  );
  await ownEmulator?.stop();
  if (savedEnvHost === undefined) delete process.env.FIRESTORE_EMULATOR_HOST;
  else process.env.FIRESTORE_EMULATOR_HOST = savedEnvHost;
});

// ---------------------------------------------------------------------------

describe('Firestore emulator (global setup)', () => {
  it('answers HTTP "Ok" on the provided host', async () => {
    expect(host).toMatch(/^[\w.-]+:\d+$/);
    const res = await fetch(`http://${host}/`);
    expect(res.status).toBe(200);
    expect((await res.text()).trim()).toBe('Ok');
  });

  it('firebase-admin can write and read through settings({ host, ssl: false })', async () => {
    const projectId = `demo-rw-${uid()}`;
    const db = firestoreAt(host, projectId);
    await db.doc('jobs/a').set({ status: 'queued', n: 1 });
    const snap = await db.doc('jobs/a').get();
    expect(snap.data()).toEqual({ status: 'queued', n: 1 });

    // A second app (another project, same emulator) sees its own data only.
    const other = firestoreAt(host, `demo-rw-${uid()}`);
    expect((await other.doc('jobs/a').get()).exists).toBe(false);
  });

  it('FIRESTORE_EMULATOR_HOST, when set, overrides settings.host of every app', async () => {
    const projectId = `demo-env-${uid()}`;
    process.env.FIRESTORE_EMULATOR_HOST = host;
    let db: Firestore;
    try {
      // 127.0.0.1:1 is closed: if the setting were used, the write would fail.
      db = firestoreAt('127.0.0.1:1', projectId);
    } finally {
      delete process.env.FIRESTORE_EMULATOR_HOST;
    }
    // Resolved at settings() time: unsetting the variable afterwards changes nothing.
    await db.doc('x/y').set({ ok: true });
    expect((await firestoreAt(host, projectId).doc('x/y').get()).data()).toEqual({ ok: true });
  });

  it('clearFirestore empties one project and leaves the others alone', async () => {
    const p1 = `demo-clear-${uid()}`;
    const p2 = `demo-clear-${uid()}`;
    const db1 = firestoreAt(host, p1);
    const db2 = firestoreAt(host, p2);
    await Promise.all([
      db1.doc('jobs/a').set({ n: 1 }),
      db1.doc('jobs/b/sub/c').set({ n: 2 }),
      db2.doc('jobs/a').set({ n: 3 }),
    ]);
    expect((await db1.collection('jobs').get()).size).toBe(1);

    await clearFirestore(host, p1);

    expect((await db1.collection('jobs').get()).size).toBe(0);
    expect((await db1.doc('jobs/b/sub/c').get()).exists).toBe(false);
    expect((await db2.doc('jobs/a').get()).data()).toEqual({ n: 3 });
  });
});

describe('onSnapshot through a TCP proxy that is cut and restored', () => {
  let proxy: TcpProxy;

  beforeAll(async () => {
    proxy = await startTcpProxy(splitHost(host));
  });
  afterAll(async () => {
    await proxy?.close();
  });

  for (const mode of ['reset', 'close'] as const) {
    it(`the listener gets a write made during the outage once restored (cut mode: ${mode})`, async () => {
      const projectId = `demo-cut-${mode}-${uid()}`;
      const viaProxy = firestoreAt(proxy.host, projectId);
      const direct = firestoreAt(host, projectId);
      const acceptedBefore = proxy.accepted;

      const w = watchDoc(viaProxy, 'jobs/j1');
      try {
        // Wait for the initial snapshot before writing: the emulator sometimes (~2% here)
        // leaves a listener that is attached concurrently with a write believing the
        // document is missing (it sends the change, then a stale delete).
        await w.until(() => true, 20_000);
        await direct.doc('jobs/j1').set({ n: 1 });
        await w.until((s) => s.get('n') === 1, 20_000);
        // The listener's traffic really goes through the proxy. (grpc-js shares one
        // connection per target between all apps of the process, so `accepted` may
        // not grow when an earlier test already connected to the proxy.)
        expect(proxy.accepted).toBeGreaterThan(0);
        expect(proxy.connections).toBeGreaterThan(0);

        const outageMs = 3_000;
        const tCut = Date.now();
        await proxy.cut({ mode });
        expect(proxy.connections).toBe(0);
        await direct.doc('jobs/j1').set({ n: 2 }); // not through the proxy
        await sleep(outageMs);
        // While cut, the listener must not have seen n=2, nor failed.
        expect(w.snapshots.some((s) => (s.data as { n?: number } | undefined)?.n === 2)).toBe(
          false,
        );
        const tRestore = Date.now();
        await proxy.restore();

        await w.until((s) => s.get('n') === 2, 50_000);
        const tGot = Date.now();
        console.log(
          `[reconnect:${mode}] outage ${tRestore - tCut} ms; write seen ${tGot - tRestore} ms ` +
            `after restore (${tGot - tCut} ms after cut); error callback: ${
              w.error ? `${String(w.error.code)} ${w.error.message}` : 'never called'
            }; proxy accepted ${proxy.accepted - acceptedBefore} connections`,
        );
        expect(w.error).toBeUndefined();
      } finally {
        w.unsubscribe();
      }
    });
  }
});

describe('TcpProxy', () => {
  it('refuses connections while cut and accepts on the same port after restore', async () => {
    const proxy = await startTcpProxy(splitHost(host));
    try {
      const tryConnect = (): Promise<string> =>
        new Promise((resolve) => {
          const s = connect({ host: '127.0.0.1', port: proxy.port });
          s.once('connect', () => {
            s.destroy();
            resolve('ok');
          });
          s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
        });
      expect(await tryConnect()).toBe('ok');
      await proxy.cut();
      expect(proxy.listening).toBe(false);
      expect(await tryConnect()).toBe('ECONNREFUSED');
      await proxy.restore();
      expect(proxy.host).toBe(`127.0.0.1:${proxy.port}`);
      expect(await tryConnect()).toBe('ok');
      const res = await fetch(`http://${proxy.host}/`);
      expect((await res.text()).trim()).toBe('Ok');
    } finally {
      await proxy.close();
    }
  });
});

describe('findFirestoreEmulator', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  });
  const tempDir = async (): Promise<string> => {
    const d = await mkdtemp(join(tmpdir(), 'fs-emu-find-'));
    dirs.push(d);
    return d;
  };

  it('finds this machine’s emulator with the default search', async () => {
    const found = await findFirestoreEmulator();
    expect(found.command).toMatch(/java(\.exe)?$/);
    expect(found.args.join(' ')).toMatch(/cloud-firestore-emulator.*\.jar/);
  });

  it('throws EmulatorNotFoundError with install instructions when every location is hidden', async () => {
    const empty = await tempDir();
    const attempt = findFirestoreEmulator({
      env: { PATH: empty, HOME: empty },
      homeDir: empty,
      sdkRoots: [],
      firebaseCacheDirs: [],
    });
    await expect(attempt).rejects.toBeInstanceOf(EmulatorNotFoundError);
    const err = (await attempt.catch((e: unknown) => e)) as Error;
    expect(err.message).toContain('apt-get install google-cloud-cli-firestore-emulator');
    expect(err.message).toContain('gcloud components install cloud-firestore-emulator');
    expect(err.message).toContain('npm i -g firebase-tools && firebase setup:emulators:firestore');
    expect(err.message).toMatch(/Java 11/);
  });

  it('says gcloud lacks the component when gcloud is on PATH without it', async () => {
    const root = await tempDir();
    await mkdir(join(root, 'bin'));
    const gcloud = join(root, 'bin', 'gcloud');
    await writeFile(gcloud, '#!/bin/sh\nexit 1\n', { mode: 0o755 });
    const err = (await findFirestoreEmulator({
      env: { PATH: join(root, 'bin') },
      homeDir: root,
      sdkRoots: [],
      firebaseCacheDirs: [],
    }).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(EmulatorNotFoundError);
    expect(err.message).toContain('gcloud components install cloud-firestore-emulator');
    expect(err.message).toContain(gcloud);
  });

  it('throws when FIRESTORE_EMULATOR_JAR points at nothing', async () => {
    const empty = await tempDir();
    const attempt = findFirestoreEmulator({
      env: { PATH: process.env.PATH, FIRESTORE_EMULATOR_JAR: join(empty, 'nope.jar') },
    });
    await expect(attempt).rejects.toThrow(/FIRESTORE_EMULATOR_JAR is set to .*nope\.jar/);
  });

  it('reports a missing Java runtime', async () => {
    const cache = await tempDir();
    await writeFile(join(cache, 'cloud-firestore-emulator-v1.19.7.jar'), 'x');
    const attempt = findFirestoreEmulator({
      env: { PATH: cache },
      homeDir: cache,
      sdkRoots: [],
      firebaseCacheDirs: [cache],
    });
    await expect(attempt).rejects.toBeInstanceOf(EmulatorNotFoundError);
    await expect(attempt).rejects.toThrow(/Java 11 or newer/);
  });

  it('picks the newest firebase-tools jar from the cache and runs it with java -jar', async () => {
    const { command: java } = await findFirestoreEmulator();
    const cache = await tempDir();
    for (const v of ['1.9.0', '1.19.7', '1.2.10']) {
      await writeFile(join(cache, `cloud-firestore-emulator-v${v}.jar`), 'x');
    }
    const found = await findFirestoreEmulator({
      env: { PATH: cache, JAVA: java }, // no gcloud on this PATH
      homeDir: cache,
      sdkRoots: [],
      firebaseCacheDirs: [cache],
    });
    expect(found.args.slice(-2)).toEqual([
      '-jar',
      join(cache, 'cloud-firestore-emulator-v1.19.7.jar'),
    ]);
  });

  it('runs a FIRESTORE_EMULATOR_JAR without Main-Class (gcloud’s jar) via -cp', async () => {
    const found0 = await findFirestoreEmulator();
    if (found0.source !== 'gcloud-sdk') return; // only meaningful with gcloud's jar at hand
    expect(await readJarMainClass(found0.jar)).toBe('');
    const found = await findFirestoreEmulator({
      env: { PATH: process.env.PATH, FIRESTORE_EMULATOR_JAR: found0.jar },
    });
    expect(found.source).toBe('FIRESTORE_EMULATOR_JAR');
    expect(found.args).toContain('-cp');
    expect(found.args.at(-1)).toMatch(/CloudFirestore$/);
  });
});
