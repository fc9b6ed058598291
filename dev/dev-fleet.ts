/**
 * The local stack with a worker and the operator console running on it, each a process started
 * as on a dyno (from source), and a client to seed it with: `npm run dev` and
 * `npm run screenshot` (dev/run-local.ts, dev/screenshot.ts).
 */
import { randomBytes } from 'node:crypto';
import { deleteApp, initializeApp } from 'firebase-admin/app';
import { getFirestore, type Firestore } from 'firebase-admin/firestore';
import { LOCAL_BUCKET, LOCAL_PROJECT, startLocalStack, type LocalStack } from './local-stack.js';
import { startProcess, stopProcess, waitForOutput } from './processes.js';
import { seedSamples, type Sample } from './seed.js';

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
  /** Seeds the sample characters (./seed.ts) through this fleet's worker. */
  seed(say?: (line: string) => void): Promise<Sample[]>;
  stop(): Promise<void>;
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
  const worker = startProcess('worker', ['src/main.ts'], { ...env, WORKER_ID: 'dev-worker' }, echo);
  const consoleProc = startProcess(
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
    await Promise.all(procs.map(stopProcess));
    await deleteApp(app);
    await stack.stop();
  };
  try {
    const [consoleUrl] = await Promise.all([
      waitForOutput(consoleProc, /console: (http:\/\/\S+)/),
      waitForOutput(worker, /worker\.started/),
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
      seed: (say) =>
        seedSamples({
          db,
          bucket: LOCAL_BUCKET,
          storage: stack.storage,
          clipdrop: stack.clipdrop,
          env,
          say,
        }),
      stop,
    } satisfies DevFleet;
  } catch (err) {
    await stop();
    throw err;
  }
}
