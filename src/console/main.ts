import { fileURLToPath } from 'node:url';
import type { Writable } from 'node:stream';
import { openFirebase } from '../adapters/firebase-app.js';
import { sourcePolicyOf } from '../adapters/source-fetcher.js';
import type { Config } from '../config/load.js';
import { secretsOf } from '../config/service-account.js';
import { createLogger, flushLogger } from '../log/logger.js';
import { readUserLimits } from '../adapters/firestore/limit-override.js';
import { retryOne, setIntake, setLimits } from './actions.js';
import { createConsoleFeed, FAILURE_WINDOW_HOURS } from './feeds.js';
import { createPictureReader } from './pictures.js';
import { countReads, renderReadMetrics } from './read-meter.js';
import { createRetryCode } from './retry-code.js';
import { startConsoleServer, type JobsPort } from './server.js';
import { jobDetail } from './state.js';

/** The browser's files: `console-ui/` at the package root, beside `src/` and `dist/`. */
export const ASSETS_DIR = fileURLToPath(new URL('../../console-ui/', import.meta.url));

export class ConsoleTokenMissingError extends Error {
  override readonly name = 'ConsoleTokenMissingError';
  constructor() {
    super(
      'CONSOLE_TOKEN is not set: the console never starts unguarded. Set it to a long random ' +
        'secret (e.g. openssl rand -hex 32); docs/console.md.',
    );
  }
}

export interface ConsoleOptions {
  /** The port when the platform gives none (PORT): the CLI's --port; 0 picks a free one. */
  port: number;
  logStream?: Writable;
}

export interface RunningConsole {
  url: string;
  close(): Promise<void>;
}

/**
 * Where to listen: every interface only where the platform routes traffic to it (`PORT` given
 * and NODE_ENV=production: Heroku's web dyno, Render's web service, a container); else
 * loopback, so a console started on a laptop or a shared host is not open to the network.
 */
export function bindingOf(config: Config, fallbackPort: number): { host: string; port: number } {
  const platform = config.env === 'production' && config.http.port > 0;
  return platform
    ? { host: '0.0.0.0', port: config.http.port }
    : { host: '127.0.0.1', port: config.http.port > 0 ? config.http.port : fallbackPort };
}

/**
 * `showcase-worker console`: the operator console (docs/console.md). It reads the fleet's state
 * from Firestore and never runs a job; its only writes are the operator's actions.
 */
export async function startConsole(config: Config, opts: ConsoleOptions): Promise<RunningConsole> {
  if (!config.console.token) throw new ConsoleTokenMissingError();
  const log = createLogger({
    level: config.log.level,
    format: config.log.format,
    secrets: secretsOf(config),
    ...(opts.logStream ? { stream: opts.logStream } : {}),
  });
  // The Storage SDK reads the emulator host from the environment (as main.ts and the CLI do).
  if (config.firebase.storageEmulatorHost) {
    process.env.FIREBASE_STORAGE_EMULATOR_HOST = config.firebase.storageEmulatorHost;
  }
  const firebase = openFirebase(config);
  const characters = firebase.db.collection(config.firebase.collection);
  const policy = sourcePolicyOf(config);
  const reads = countReads();
  const feed = createConsoleFeed({
    db: firebase.db,
    characters,
    workersCollection: config.fleet.workersCollection,
    fleetCollection: config.fleet.collection,
    presenceTimeoutMs: config.fleet.presenceTimeoutMs,
    rpm: config.clipdrop.rpm,
    dailyCreditBudget: config.clipdrop.dailyCreditBudget,
    readOnly: config.console.readOnly,
    log,
    reads,
  });
  const pictures = createPictureReader(firebase.bucket, policy, {
    maxBytes: config.source.maxBytes,
    timeoutMs: config.source.timeoutMs,
    maxRedirects: 3,
  });
  const jobs: JobsPort = {
    watch(id, onDetail, onError) {
      return characters.doc(id).onSnapshot((snap) => {
        reads.listened('job', snap);
        onDetail(jobDetail(id, snap.data(), snap.readTime.toMillis()));
      }, onError);
    },
    async picture(id, which, signal) {
      const data = (await characters.doc(id).get()).data();
      reads.got('picture', 1);
      return which === 'source' ? pictures.source(data, signal) : pictures.result(id, data, signal);
    },
  };
  // The limits this console's settings configure: give it the workers' USER_* values.
  const configured = { dailyJobs: config.users.dailyJobLimit, maxActive: config.users.maxActive };
  const retryCode = createRetryCode({
    characters,
    sources: policy,
    rpm: config.clipdrop.rpm,
    windowHours: FAILURE_WINDOW_HOURS,
    log,
  });
  const { host, port } = bindingOf(config, opts.port);
  const server = await startConsoleServer({
    host,
    port,
    token: config.console.token,
    readOnly: config.console.readOnly,
    feed,
    jobs,
    retry: (id) => retryOne(characters, id, policy),
    intake: (paused, by, note) => setIntake(firebase.db, config.fleet.collection, paused, by, note),
    limits: {
      view: (userId) => readUserLimits(firebase.db, userId, configured, Date.now()),
      set: (userId, change) => setLimits(firebase.db, userId, change, configured, Date.now()),
    },
    retryCode,
    log,
    assetsDir: ASSETS_DIR,
    moreMetrics: () => renderReadMetrics(reads),
  });
  const url = `http://${host === '0.0.0.0' ? 'localhost' : host}:${server.port}/`;
  log.info('console.started', { url, readOnly: config.console.readOnly, host });
  return {
    url,
    async close() {
      feed.close();
      await retryCode.close();
      await server.close();
      await firebase.close();
      log.info('console.stopped');
      await flushLogger(log);
    },
  };
}
