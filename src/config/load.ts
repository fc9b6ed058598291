import convict from 'convict';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { gsPatternProblem, isSharedGsPattern } from '../jobs/gs-paths.js';
import { MAX_DAILY_LIMIT } from '../jobs/user-limits.js';
import { schema } from './schema.js';
import { parseServiceAccount, type ServiceAccount } from './service-account.js';

/** The settings, typed; each is documented in ./schema.ts. */
interface Raw {
  env: 'production' | 'development' | 'test';
  firebase: {
    serviceAccountKey: string;
    credentialsFile: string;
    projectId: string;
    storageBucket: string;
    firestoreEmulatorHost: string;
    storageEmulatorHost: string;
    collection: string;
  };
  clipdrop: {
    apiKey: string;
    apiUrl: string;
    rpm: number;
    removeBackgroundTimeoutMs: number;
    upscaleTimeoutMs: number;
    firstProbeMs: number;
    probeMs: number;
    outageThreshold: number;
    dailyCreditBudget: number;
    creditsWarnBelow: number;
  };
  source: {
    allowedHosts: string[];
    gsPaths: string[];
    allowSharedGsPaths: boolean;
    maxBytes: number;
    timeoutMs: number;
  };
  image: {
    resultCache: boolean;
    resultCacheScope: 'owner' | 'global';
    upscaleFactor: number;
    pngFilters: 'none' | 'adaptive';
    maxInputPixels: number;
  };
  worker: {
    id: string;
    concurrency: number;
    localJobs: number;
    leaseMs: number;
    maxAttempts: number;
    heapGrowingPercent: number;
    shutdownTimeoutMs: number;
    sweepMs: number;
    listenerGiveUpMs: number;
  };
  users: {
    dailyJobLimit: number;
    dailyRequestLimit: number;
    maxActive: number;
    deferredRetryMs: number;
  };
  fleet: { presenceTimeoutMs: number; workersCollection: string; collection: string };
  retry: { maxTries: number; baseMs: number; maxMs: number };
  log: { level: string; format: '' | 'json' | 'pretty' };
  console: { token: string; readOnly: boolean };
  http: { port: number };
}

type DeepReadonly<T> = T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> } : T;

export type Config = DeepReadonly<
  Omit<Raw, 'firebase' | 'log'> & {
    firebase: Raw['firebase'] & { serviceAccount: ServiceAccount | undefined };
    log: { level: string; format: 'json' | 'pretty' };
  }
>;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** Folder of default.json and <NODE_ENV>.json; default ./config. */
  configDir?: string;
  /** The operator console (`showcase-worker console`) makes no ClipDrop call: no key needed. */
  role?: 'worker' | 'console';
}

/**
 * Builds the worker's configuration: schema defaults < config/default.json <
 * config/<NODE_ENV>.json < environment, so a platform's config var always wins.
 * Throws one ConfigError listing every problem.
 */
export function loadConfig({
  env = process.env,
  configDir = 'config',
  role = 'worker',
}: LoadOptions = {}): Config {
  const c = convict<Raw>(schema as unknown as convict.Schema<Raw>, { env, args: [] });
  const problems: string[] = [];
  for (const file of ['default.json', `${c.get('env')}.json`]) {
    const path = join(configDir, file);
    if (existsSync(path)) c.loadFile(path);
  }
  try {
    c.validate({ allowed: 'strict' });
  } catch (err) {
    // Convict quotes non-sensitive values; a secret pasted into the wrong variable is still a
    // secret, so values are cut from every message.
    problems.push(
      ...(err as Error).message
        .split('\n')
        .filter(Boolean)
        .map((line) => withEnvName(line.replace(/: value was .*$/, ''))),
    );
  }
  const raw = c.getProperties();

  let serviceAccount: ServiceAccount | undefined;
  try {
    serviceAccount = parseServiceAccount(raw.firebase.serviceAccountKey);
  } catch (err) {
    problems.push(`FIREBASE_SERVICE_ACCOUNT_KEY: ${(err as Error).message}`);
  }
  const projectId = raw.firebase.projectId || serviceAccount?.project_id || '';
  if (!projectId) {
    problems.push('GOOGLE_CLOUD_PROJECT: required (or a service account key that names one)');
  }
  if (!raw.firebase.storageBucket) {
    problems.push('STORAGE_BUCKET: required, e.g. my-app.appspot.com');
  }
  if (!raw.clipdrop.apiKey && role === 'worker') problems.push('CLIPDROP_API_KEY: required');
  const emulated = raw.firebase.firestoreEmulatorHost && raw.firebase.storageEmulatorHost;
  if (!emulated && !serviceAccount && !raw.firebase.credentialsFile) {
    problems.push(
      'FIREBASE_SERVICE_ACCOUNT_KEY: required unless GOOGLE_APPLICATION_CREDENTIALS or both emulator hosts are set',
    );
  }
  if (raw.clipdrop.rpm < 1) problems.push('CLIPDROP_RPM: must be at least 1');
  if (raw.worker.concurrency < 1) problems.push('WORKER_CONCURRENCY: must be at least 1');
  if (raw.worker.leaseMs < 1_000) problems.push('LEASE_MS: must be at least 1000');
  if (raw.worker.maxAttempts < 1) problems.push('JOB_MAX_ATTEMPTS: must be at least 1');
  if (raw.fleet.presenceTimeoutMs < 1_000) {
    problems.push('PRESENCE_TIMEOUT_MS: must be at least 1000');
  }
  if (raw.retry.maxTries < 1) problems.push('RETRY_MAX_TRIES: must be at least 1');
  if (raw.image.upscaleFactor < 1) problems.push('UPSCALE_FACTOR: must be at least 1');
  if (raw.users.dailyJobLimit > MAX_DAILY_LIMIT) {
    problems.push(
      `USER_DAILY_JOB_LIMIT: must be at most ${MAX_DAILY_LIMIT} (0 = no limit, for more than that)`,
    );
  }
  // An unusable pattern is reported once, by the schema's check.
  const shared = raw.source.gsPaths.filter((p) => !gsPatternProblem(p) && isSharedGsPattern(p));
  if (shared.length > 0 && !raw.source.allowSharedGsPaths) {
    problems.push(
      `SOURCE_GS_PATHS: ${shared.map((p) => JSON.stringify(p)).join(', ')} names no owner ` +
        '(no {userId} folder): every user could have the worker read, with its admin rights, ' +
        'any object it matches. Bind it to the owner (e.g. raw-uploads/{userId}/**) or, if ' +
        'any user may use every such object, set SOURCE_GS_ALLOW_SHARED_PATHS=true',
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);

  return deepFreeze({
    ...raw,
    firebase: { ...raw.firebase, projectId, serviceAccount },
    worker: {
      ...raw.worker,
      id: raw.worker.id || `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`,
    },
    log: {
      level: raw.log.level,
      format: raw.log.format || (raw.env === 'production' ? 'json' : 'pretty'),
    },
  });
}

/** Convict names settings by path; operators know them by env name. */
function withEnvName(line: string): string {
  const match = /^([\w.]+): (.*)$/.exec(line);
  if (!match) return line;
  const [, path = '', rest = ''] = match;
  const entry = path
    .split('.')
    .reduce<unknown>(
      (node, key) => (node as Record<string, unknown> | undefined)?.[key],
      schema,
    ) as { env?: string } | undefined;
  return entry?.env ? `${entry.env}: ${rest}` : line;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
