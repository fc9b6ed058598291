import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTcpProxy, type TcpProxy } from '../../dev/tcp-proxy.js';
import { characterPicture } from '../support/images.js';
import { BUCKET, startStack, type Stack } from '../support/stack.js';
import { statusOf, waitForDoc } from '../support/wait.js';

describe('when the connection to Firestore is cut', () => {
  let stack: Stack;
  let proxy: TcpProxy;

  beforeAll(async () => {
    stack = await startStack();
    const [host = '', port = ''] = stack.emulatorHost.split(':');
    proxy = await startTcpProxy({ host, port: Number(port) });
  });
  afterAll(async () => {
    await stack?.close();
    await proxy?.close();
  });

  it('picks up a click made while the listener was cut, once the connection is back', async () => {
    // A long lease makes the sweep (every lease/2) too slow to rescue this job within the
    // test: only a recovered listener can.
    const worker = await stack.startWorker({
      FIRESTORE_EMULATOR_HOST: proxy.host,
      LEASE_MS: '600000',
    });
    stack.storage.putObject(
      BUCKET,
      'raw-uploads/user-1/before.png',
      await characterPicture(32, 32, 'png', 1),
    );
    stack.storage.putObject(
      BUCKET,
      'raw-uploads/user-1/during.png',
      await characterPicture(32, 32, 'png', 2),
    );

    await stack.click('before');
    await waitForDoc(stack.db, 'characters/before', (d) => statusOf(d) === 'complete');

    await proxy.cut();
    await stack.click('during');
    await proxy.restore();

    const data = await waitForDoc(
      stack.db,
      'characters/during',
      (d) => statusOf(d) === 'complete',
      50_000,
    );
    expect(statusOf(data)).toBe('complete');
    const claimed = worker.logs
      .map((l) => JSON.parse(l) as { message: string; characterId?: string; origin?: string })
      .find((l) => l.message === 'job.claimed' && l.characterId === 'during');
    expect(claimed?.origin).toBe('listener');
  }, 60_000);
});
