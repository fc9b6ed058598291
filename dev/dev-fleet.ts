/**
 * The local stack with a worker and the operator console running on it, each a process started
 * as on a dyno (from source), and a client to seed it with: `npm run dev` and
 * `npm run screenshot` (dev/run-local.ts, dev/screenshot.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { deleteApp, initializeApp } from 'firebase-admin/app';
import { getFirestore, type Firestore } from 'firebase-admin/firestore';
import { LOCAL_BUCKET, LOCAL_PROJECT, startLocalStack, type LocalStack } from './local-stack.js';

export interface DevFleet {
  stack: LocalStack;
  /** A client of the stack's project, as the app would have. */
  db: Firestore;
  bucket: string;
  /** The worker's (and console's) environment. */
  env: Record<string, string>;
  consoleUrl: string;
  token: string;
  /** Resolves when the worker or the console exits on its own. */
  exited: Promise<string>;
  stop(): Promise<void>;
}

const REPO = fileURLToPath(new URL('..', import.meta.url));

interface Proc {
  name: string;
  proc: ChildProcess;
  output: string;
}

function start(name: string, args: string[], env: Record<string, string>, echo: boolean): Proc {
  const proc = spawn(process.execPath, ['--import', 'tsx', ...args], {
    cwd: REPO,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const p: Proc = { name, proc, output: '' };
  const take = (chunk: Buffer) => {
    // The tail only: enough to say why it did not start.
    p.output = (p.output + chunk.toString('utf8')).slice(-20_000);
    if (echo) process.stdout.write(chunk);
  };
  proc.stdout?.on('data', take);
  proc.stderr?.on('data', take);
  return p;
}

function waitFor(p: Proc, pattern: RegExp, timeoutMs = 90_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const m = pattern.exec(p.output);
      if (!m) return;
      cleanup();
      resolve(m[1] ?? m[0]);
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`${p.name} exited (${String(code)}):\n${p.output.slice(-3000)}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${p.name}: no ${pattern} in ${timeoutMs} ms:\n${p.output.slice(-3000)}`));
    }, timeoutMs);
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

/**
 * Starts the emulator and stand-ins, one worker and one console (its token generated here).
 * `echo`: the worker's and console's logs go to this process's stdout.
 */
export async function startDevFleet(opts: { echo?: boolean; port?: number } = {}) {
  const stack = await startLocalStack();
  const token = randomBytes(24).toString('hex');
  const env: Record<string, string> = {
    ...stack.env,
    NODE_ENV: 'development',
    CONSOLE_TOKEN: token,
  };
  const echo = opts.echo ?? false;
  const worker = start('worker', ['src/main.ts'], { ...env, WORKER_ID: 'dev-worker' }, echo);
  const consoleProc = start(
    'console',
    ['src/cli.ts', 'console', '--port', String(opts.port ?? 0)],
    env,
    echo,
  );
  const procs = [worker, consoleProc];
  const app = initializeApp({ projectId: LOCAL_PROJECT }, `dev-fleet-${token.slice(0, 8)}`);
  const db = getFirestore(app);
  db.settings({ host: stack.firestoreHost, ssl: false, universeDomain: 'googleapis.com' }); // no metadata-server probe
  const stop = async () => {
    await Promise.all(procs.map(stopProc));
    await deleteApp(app);
    await stack.stop();
  };
  try {
    const [consoleUrl] = await Promise.all([
      waitFor(consoleProc, /console: (http:\/\/\S+)/),
      waitFor(worker, /worker\.started/),
    ]);
    const exited = Promise.race(
      procs.map(
        (p) =>
          new Promise<string>((resolve) =>
            p.proc.once('exit', (code, signal) =>
              resolve(`${p.name} exited (${String(code ?? signal)})`),
            ),
          ),
      ),
    );
    return {
      stack,
      db,
      bucket: LOCAL_BUCKET,
      env,
      consoleUrl,
      token,
      exited,
      stop,
    } satisfies DevFleet;
  } catch (err) {
    await stop();
    throw err;
  }
}
