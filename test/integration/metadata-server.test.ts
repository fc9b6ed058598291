import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { characterPicture } from '../support/images.js';
import { BUCKET, startStack, type Stack } from '../support/stack.js';
import { statusOf, waitForDoc } from '../support/wait.js';
import { spawnWorker, type WorkerProcess } from '../support/worker-process.js';

/** How test/support/net-spy.ts reports (not imported: it would patch this process). */
const NET_SPY_PREFIX = '{"netSpy":';
const DNS_SPY_PREFIX = '{"dnsSpy":';

/**
 * Every name and address the Google auth libraries use to find the GCE metadata server
 * (gcp-metadata's HOST_ADDRESS, SECONDARY_HOST_ADDRESS and GCE_METADATA_HOST; the
 * google-auth-library's compute client uses the same).
 */
const METADATA_HOST = /metadata\.google\.internal|^metadata$|169\.254\.169\.254|fd00:ec2::254/i;

function fakeServiceAccountBase64(projectId: string): string {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return Buffer.from(
    JSON.stringify({
      type: 'service_account',
      project_id: projectId,
      private_key_id: '0123456789abcdef0123456789abcdef01234567',
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      client_email: `showcase-worker@${projectId}.iam.gserviceaccount.com`,
      client_id: '109876543210987654321',
      token_uri: 'https://oauth2.googleapis.com/token',
    }),
  ).toString('base64');
}

interface Spied {
  connections: string[];
  lookups: string[];
}

function spied(proc: WorkerProcess): Spied {
  const lines = proc.stderr.join('').split('\n');
  const parse = <T>(prefix: string) =>
    lines.filter((l) => l.startsWith(prefix)).map((l) => JSON.parse(l) as T);
  return {
    connections: parse<{ netSpy: { host: string; port: number } }>(NET_SPY_PREFIX).map(
      ({ netSpy }) => `${netSpy.host}:${netSpy.port}`,
    ),
    lookups: parse<{ dnsSpy: { host: string } }>(DNS_SPY_PREFIX).map(({ dnsSpy }) => dnsSpy.host),
  };
}

describe('the worker never asks for the GCE metadata server', () => {
  let stack: Stack;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    stack = await startStack();
  });

  afterAll(async () => {
    for (const w of workers) w.kill('SIGKILL');
    await stack?.close();
  });

  async function runOneJob(id: string, env: Record<string, string>): Promise<WorkerProcess> {
    stack.storage.putObject(
      BUCKET,
      `raw-uploads/user-1/${id}.png`,
      await characterPicture(40, 32, 'png', id.length),
    );
    const proc = spawnWorker(
      {
        ...stack.env,
        // Whatever the machine running the tests has, the worker must not lean on it.
        GOOGLE_APPLICATION_CREDENTIALS: '',
        FIREBASE_SERVICE_ACCOUNT_KEY: '',
        GCLOUD_PROJECT: '',
        SHUTDOWN_TIMEOUT_MS: '3000',
        ...env,
      },
      { nodeArgs: ['--import', './test/support/net-spy.ts'] },
    );
    workers.push(proc);
    await proc.waitForLog((l) => l.message === 'worker.started', 30_000);
    await stack.click(id);
    const doc = await waitForDoc(
      stack.db,
      `characters/${id}`,
      (d) => ['complete', 'failed'].includes(statusOf(d) ?? ''),
      30_000,
    );
    expect(statusOf(doc)).toBe('complete');
    proc.kill('SIGTERM');
    expect((await proc.exited).code).toBe(0);
    return proc;
  }

  function expectNoMetadataServer(proc: WorkerProcess): void {
    const { connections, lookups } = spied(proc);
    // The spy works: it saw the emulator connection and the stand-ins.
    expect(connections).toContain(stack.emulatorHost);
    expect(connections.filter((c) => METADATA_HOST.test(c.replace(/:\d+$/, '')))).toEqual([]);
    expect(lookups.filter((h) => METADATA_HOST.test(h))).toEqual([]);
    // Only loopback: emulators and stand-ins, nothing of Google's.
    expect(connections.filter((c) => !/^(127\.0\.0\.1|localhost|\[?::1\]?):/.test(c))).toEqual([]);
    expect(proc.stderr.join('')).not.toMatch(/MetadataLookupWarning/);
  }

  it('with emulators and no credentials', async () => {
    const proc = await runOneJob('meta-emulators', {});
    expectNoMetadataServer(proc);
  }, 90_000);

  it('with a service account key and emulators', async () => {
    const proc = await runOneJob('meta-key', {
      FIREBASE_SERVICE_ACCOUNT_KEY: fakeServiceAccountBase64(stack.projectId),
    });
    expectNoMetadataServer(proc);
  }, 90_000);
});
