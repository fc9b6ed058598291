/**
 * The browser tests' world: the Firestore emulator and the ClipDrop and Storage stand-ins
 * (dev/local-stack.ts), one worker process and two console processes (one read-only), each
 * started as on a dyno. Playwright's global setup starts it once; each test uses its own
 * character ids, so no test depends on another.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Fault } from '../../dev/clipdrop-standin.js';
import { startLocalStack, type LocalStack } from '../../dev/local-stack.js';

export interface BrowserStack {
  env: Record<string, string>;
  consoleUrl: string;
  readOnlyUrl: string;
  /** POST a JSON array of faults to `${controlUrl}clipdrop/faults`: the stand-in's next answers. */
  controlUrl: string;
  token: string;
  stop(): Promise<void>;
}

interface Proc {
  proc: ChildProcess;
  output: string[];
}

function start(args: string[], env: Record<string, string>): Proc {
  const proc = spawn(process.execPath, ['--import', 'tsx', ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  proc.stdout?.on('data', (c: Buffer) => output.push(c.toString('utf8')));
  proc.stderr?.on('data', (c: Buffer) => output.push(c.toString('utf8')));
  return { proc, output };
}

/** Resolves with the first match of `pattern` in the process's output. */
function waitFor(p: Proc, pattern: RegExp, what: string, timeoutMs = 90_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const m = pattern.exec(p.output.join(''));
      if (m) {
        cleanup();
        resolve(m[1] ?? m[0]);
      }
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(
        new Error(
          `${what}: nothing matched ${pattern} in ${timeoutMs} ms:\n${p.output.join('').slice(-3000)}`,
        ),
      );
    }, timeoutMs);
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`${what} exited (${code}):\n${p.output.join('').slice(-3000)}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      p.proc.stdout?.off('data', check);
      p.proc.stderr?.off('data', check);
      p.proc.off('exit', onExit);
    };
    p.proc.stdout?.on('data', check);
    p.proc.stderr?.on('data', check);
    p.proc.on('exit', onExit);
    check();
  });
}

async function stopProc(p: Proc): Promise<void> {
  if (p.proc.exitCode !== null || p.proc.signalCode !== null) return;
  const exited = new Promise((r) => p.proc.once('exit', r));
  p.proc.kill('SIGTERM');
  const timer = setTimeout(() => p.proc.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(timer);
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
    const worker = start(['src/main.ts'], { ...env, WORKER_ID: 'browser-test-worker' });
    procs.push(worker);
    const consoleProc = start(['src/cli.ts', 'console', '--port', '0'], env);
    procs.push(consoleProc);
    const readOnly = start(['src/cli.ts', 'console', '--port', '0'], {
      ...env,
      CONSOLE_READ_ONLY: 'true',
    });
    procs.push(readOnly);
    const [consoleUrl, readOnlyUrl] = await Promise.all([
      waitFor(consoleProc, /console: (http:\/\/\S+)/, 'console'),
      waitFor(readOnly, /console: (http:\/\/\S+)/, 'read-only console'),
      waitFor(worker, /"message":"worker\.(?:started|ready)"|worker\.started/, 'worker'),
    ]);
    return {
      env,
      consoleUrl: consoleUrl ?? '',
      readOnlyUrl: readOnlyUrl ?? '',
      controlUrl,
      token,
      async stop() {
        await Promise.all(procs.map(stopProc));
        await closeControl();
        await local.stop();
      },
    };
  } catch (err) {
    await Promise.all(procs.map(stopProc));
    await closeControl();
    await local.stop();
    throw err;
  }
}
