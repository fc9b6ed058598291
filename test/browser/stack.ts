/**
 * The browser tests' world: the Firestore emulator and the ClipDrop and Storage stand-ins
 * (dev/local-stack.ts), one worker process and two console processes (one read-only), each
 * started as on a dyno. Playwright's global setup starts it once; each test uses its own
 * character ids, so no test depends on another.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Fault } from '../../dev/clipdrop-standin.js';
import { startLocalStack, type LocalStack } from '../../dev/local-stack.js';
import { startProcess, stopProcess, waitForOutput, type Proc } from '../../dev/processes.js';

export interface BrowserStack {
  env: Record<string, string>;
  consoleUrl: string;
  readOnlyUrl: string;
  /** POST a JSON array of faults to `${controlUrl}clipdrop/faults`: the stand-in's next answers. */
  controlUrl: string;
  token: string;
  stop(): Promise<void>;
}

export async function startBrowserStack(): Promise<BrowserStack> {
  // Each ClipDrop call takes a second and a half: long enough for a page to see every stage.
  const local: LocalStack = await startLocalStack({
    clipdrop: { latencyMs: { removeBackground: 1_500, upscale: 1_500 } },
  });
  const token = randomBytes(24).toString('hex');
  const env: Record<string, string> = {
    ...local.env,
    NODE_ENV: 'development',
    LOG_FORMAT: 'json',
    LOG_LEVEL: 'info',
    CONSOLE_TOKEN: token,
  };
  const procs: Proc[] = [];
  // The stand-ins live in this (global setup's) process: tests reach their fault injection here.
  const control = createServer((req, res) => {
    if (req.method !== 'POST' || req.url !== '/clipdrop/faults')
      return void res.writeHead(404).end();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        local.clipdrop.injectFaults(
          ...(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Fault[]),
        );
        res.writeHead(204).end();
      } catch (err) {
        res.writeHead(400).end(String(err));
      }
    });
  });
  await new Promise<void>((resolve) => control.listen(0, '127.0.0.1', resolve));
  const controlUrl = `http://127.0.0.1:${(control.address() as AddressInfo).port}/`;
  const closeControl = () => new Promise<void>((resolve) => control.close(() => resolve()));
  try {
    const worker = startProcess('worker', ['src/main.ts'], {
      ...env,
      WORKER_ID: 'browser-test-worker',
    });
    procs.push(worker);
    const consoleProc = startProcess('console', ['src/cli.ts', 'console', '--port', '0'], env);
    procs.push(consoleProc);
    const readOnly = startProcess('read-only console', ['src/cli.ts', 'console', '--port', '0'], {
      ...env,
      CONSOLE_READ_ONLY: 'true',
    });
    procs.push(readOnly);
    const [consoleUrl, readOnlyUrl] = await Promise.all([
      waitForOutput(consoleProc, /console: (http:\/\/\S+)/),
      waitForOutput(readOnly, /console: (http:\/\/\S+)/),
      waitForOutput(worker, /"message":"worker\.(?:started|ready)"|worker\.started/),
    ]);
    return {
      env,
      consoleUrl: consoleUrl ?? '',
      readOnlyUrl: readOnlyUrl ?? '',
      controlUrl,
      token,
      async stop() {
        await Promise.all(procs.map(stopProcess));
        await closeControl();
        await local.stop();
      },
    };
  } catch (err) {
    await Promise.all(procs.map(stopProcess));
    await closeControl();
    await local.stop();
    throw err;
  }
}
