import { applicationDefault, cert, type Credential } from 'firebase-admin/app';
import {
  CHECKPOINT_LIFECYCLE,
  WORK_PREFIX,
  checkpointExpiryDays,
} from '../adapters/storage/work-cache.js';
import { getStorage } from 'firebase-admin/storage';
import { F } from '../adapters/firestore/job-fields.js';
import { ConfigError, type Config } from '../config/load.js';
import { secretsOf } from '../config/service-account.js';
import { isSharedGsPattern } from '../jobs/gs-paths.js';
import { IN_PROGRESS } from '../jobs/status.js';
import { scrub, secretForms } from '../log/redact.js';
import type { Command } from './command.js';
import { configOf, openSession, type Session } from './context.js';
import { EXIT, UsageError } from './exit-codes.js';
import { readBudget } from './budget.js';
import type { CliIo } from './io.js';

type Verdict = 'ok' | 'warn' | 'FAIL' | 'skip';

interface Check {
  verdict: Verdict;
  name: string;
  detail: string;
  fix?: string;
}

const WHERE = 'where the worker runs (heroku config:set, Render → Environment, docker run -e)';

export const doctor: Command = {
  name: 'doctor',
  summary: 'check config, credentials, Firestore, Storage and the ClipDrop key',
  help: `Usage: showcase-worker doctor [--timeout SECONDS]

Checks what the worker needs, with the worker's own configuration, and prints one line per
check: a verdict (ok, warn, FAIL, skip), what it found, and for a failure the fix.

  config       the environment and config files load and validate
  credentials  the service account (or Application Default Credentials) gets a Google token;
               not needed with both emulators
  firestore    the worker's query on the collection runs
  storage      the bucket exists and this account may read it
  clipdrop     the API key is accepted. No credit is spent: the request carries no image,
               so ClipDrop answers 400 to a valid key and 401/403 to a bad one

Options:
  --timeout SECONDS   time limit of each check (default 10)

Exit codes: 0 every check passed (warnings allowed); 1 at least one check failed;
64 bad option.`,
  options: { timeout: { type: 'string' } },
  async run({ values, positionals }, io) {
    if (positionals.length > 0) throw new UsageError('doctor takes no arguments');
    const timeoutMs = timeoutOf(values.timeout);
    const checks: Check[] = [];
    let secrets: string[] = [];
    const report = (check: Check) => {
      checks.push(check);
      // Errors quoted from SDKs and servers: never let one echo a secret.
      io.out(scrub(formatCheck(check, io.isTTY), secrets));
    };

    let config: Config;
    try {
      config = configOf(io);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      for (const problem of err.problems) {
        report({ verdict: 'FAIL', name: 'config', detail: problem, fix: `set it ${WHERE}` });
      }
      for (const name of ['credentials', 'firestore', 'storage', 'clipdrop']) {
        report({ verdict: 'skip', name, detail: 'needs a valid configuration' });
      }
      return finish(io, checks);
    }
    secrets = secretForms(secretsOf(config));
    report(configCheck(config));
    const lease = leaseCheck(config);
    if (lease) report(lease);
    const sharedPaths = sharedPathsCheck(config);
    if (sharedPaths) report(sharedPaths);

    const credentials = await checkCredentials(config, timeoutMs);
    report(credentials);
    const session = openSession(io, config);
    try {
      report(await checkFirestore(session, timeoutMs));
      report(await checkStorage(session, timeoutMs));
      report(await checkBudget(session, timeoutMs));
    } finally {
      await within(session.close(), timeoutMs, 'closing Firebase').catch(() => undefined);
    }
    report(await checkClipdrop(config, timeoutMs));
    return finish(io, checks);
  },
};

function timeoutOf(value: string | boolean | undefined): number {
  if (value === undefined) return 10_000;
  const seconds = Number(value);
  if (typeof value !== 'string' || !Number.isFinite(seconds) || seconds <= 0) {
    throw new UsageError(`--timeout must be a number of seconds, not "${String(value)}"`);
  }
  return seconds * 1000;
}

function finish(io: CliIo, checks: Check[]): number {
  const failed = checks.filter((c) => c.verdict === 'FAIL').length;
  io.out(
    failed === 0
      ? 'doctor: everything the worker needs is in place'
      : `doctor: ${failed} ${failed === 1 ? 'problem' : 'problems'} to fix`,
  );
  return failed === 0 ? EXIT.OK : EXIT.PROBLEMS;
}

const COLOUR: Record<Verdict, string> = {
  ok: '\x1b[32m',
  warn: '\x1b[33m',
  FAIL: '\x1b[31m',
  skip: '\x1b[90m',
};

export function formatCheck(check: Check, colour = false): string {
  const verdict = check.verdict.padEnd(4);
  const shown = colour ? `${COLOUR[check.verdict]}${verdict}\x1b[0m` : verdict;
  const fix = check.fix ? `${/[.!?]$/.test(check.detail) ? '' : '.'} Fix: ${check.fix}.` : '';
  return `${shown}  ${check.name.padEnd(11)}  ${check.detail}${fix}`;
}

/**
 * With no daily credit budget, nothing bounds what the fleet spends in a day but the account's
 * balance: a script signing in anonymously in a loop spends it at the key's full rate.
 */
async function checkBudget(session: Session, timeoutMs: number): Promise<Check> {
  const { fleet, clipdrop } = session.config;
  try {
    const state = await within(
      readBudget(session.db, fleet.collection, clipdrop.dailyCreditBudget),
      timeoutMs,
      'reading the credit budget',
    );
    if (state.budget > 0) {
      return {
        verdict: 'ok',
        name: 'budget',
        detail: `${state.budget} credits a day (${state.source}), ${state.committed} committed today`,
      };
    }
    return {
      verdict: 'warn',
      name: 'budget',
      detail:
        'no daily credit budget: nothing bounds what the fleet spends in a day but the account balance',
      fix: `set CLIPDROP_DAILY_CREDIT_BUDGET ${WHERE}, or run \`showcase-worker budget set N\``,
    };
  } catch (err) {
    return { verdict: 'warn', name: 'budget', detail: `could not read it: ${String(err)}` };
  }
}

/**
 * The job lease is the backstop behind presence (docs/fleet.md): shorter than the presence
 * timeout, a lease whose renewal stalls lets another worker take a job whose worker is alive
 * and not yet fenced, and both may pay for it. In production only: test and development
 * configs shorten the lease on purpose.
 */
export function leaseCheck(config: Pick<Config, 'env' | 'worker' | 'fleet'>): Check | undefined {
  const { leaseMs } = config.worker;
  const timeoutMs = config.fleet.presenceTimeoutMs;
  if (config.env !== 'production' || leaseMs >= timeoutMs) return undefined;
  return {
    verdict: 'warn',
    name: 'lease',
    detail: `LEASE_MS ${leaseMs} is shorter than PRESENCE_TIMEOUT_MS ${timeoutMs}: a job whose lease renewal stalls can be taken from a live worker before its fence stops it`,
    fix: `set LEASE_MS to at least ${timeoutMs} (the default is 60000) ${WHERE}`,
  };
}

/**
 * A SOURCE_GS_PATHS pattern without {userId} (allowed only with SOURCE_GS_ALLOW_SHARED_PATHS):
 * any user may have the worker read, with its admin rights, and publish any object it matches.
 * Start-up accepts it as the operator's choice; doctor keeps it in view.
 */
export function sharedPathsCheck(config: Pick<Config, 'source'>): Check | undefined {
  const shared = config.source.gsPaths.filter(isSharedGsPattern);
  if (shared.length === 0) return undefined;
  return {
    verdict: 'warn',
    name: 'sources',
    detail: `SOURCE_GS_PATHS ${shared.join(', ')} names no owner (SOURCE_GS_ALLOW_SHARED_PATHS=true): any user's character may use any object it matches as its source, and publish it`,
    fix: `keep only objects every user may see there, or bind the pattern to the owner (e.g. raw-uploads/{userId}/**) ${WHERE}`,
  };
}

function configCheck(config: Config): Check {
  const f = config.firebase;
  const facts = [
    `NODE_ENV=${config.env}`,
    `project ${f.projectId}`,
    `bucket ${f.storageBucket}`,
    `collection ${f.collection}`,
    `${config.worker.concurrency} ClipDrop calls and ${config.worker.concurrency + config.worker.localJobs} jobs at once`,
    `CLIPDROP_RPM ${config.clipdrop.rpm}`,
    config.http.port > 0 ? `HTTP on ${config.http.port}` : 'no HTTP (PORT unset)',
  ];
  if (f.firestoreEmulatorHost) facts.push(`Firestore emulator ${f.firestoreEmulatorHost}`);
  if (f.storageEmulatorHost) facts.push(`Storage emulator ${f.storageEmulatorHost}`);
  return { verdict: 'ok', name: 'config', detail: facts.join(', ') };
}

async function checkCredentials(config: Config, timeoutMs: number): Promise<Check> {
  const f = config.firebase;
  const name = 'credentials';
  if (f.firestoreEmulatorHost && f.storageEmulatorHost) {
    return { verdict: 'ok', name, detail: 'not needed: both emulators are in use' };
  }
  let credential: Credential;
  let who: string;
  if (f.serviceAccount) {
    credential = cert({
      projectId: f.serviceAccount.project_id,
      clientEmail: f.serviceAccount.client_email,
      privateKey: f.serviceAccount.private_key,
    });
    who = `service account ${f.serviceAccount.client_email} (FIREBASE_SERVICE_ACCOUNT_KEY)`;
  } else {
    credential = applicationDefault();
    who = f.credentialsFile
      ? `GOOGLE_APPLICATION_CREDENTIALS (${f.credentialsFile})`
      : 'Application Default Credentials';
  }
  try {
    await within(credential.getAccessToken(), timeoutMs, 'getting a Google token');
    return { verdict: 'ok', name, detail: `${who} gets a Google access token` };
  } catch (err) {
    return {
      verdict: 'FAIL',
      name,
      detail: `${who} cannot get a Google access token: ${message(err)}`,
      fix:
        'create a key for the service account (Firebase console → Project settings → Service ' +
        `accounts → Generate new private key) and set FIREBASE_SERVICE_ACCOUNT_KEY to it, base64-encoded, ${WHERE}`,
    };
  }
}

async function checkFirestore(session: Session, timeoutMs: number): Promise<Check> {
  const name = 'firestore';
  const { projectId, collection } = session.config.firebase;
  try {
    await within(
      session.characters
        .where(F.status, 'in', [...IN_PROGRESS])
        .limit(1)
        .get(),
      timeoutMs,
      'querying Firestore',
    );
    return {
      verdict: 'ok',
      name,
      detail: `project ${projectId}: the worker's query on ${collection} runs`,
    };
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    const fix =
      code === 7 || code === 16
        ? 'grant the service account the "Cloud Datastore User" role (IAM), or use the Firebase Admin SDK service account'
        : code === 5
          ? 'create the Firestore database (Firebase console → Firestore Database), or correct GOOGLE_CLOUD_PROJECT'
          : code === 9
            ? 'deploy the index: firebase deploy --only firestore:indexes (firestore.indexes.json)'
            : `check GOOGLE_CLOUD_PROJECT${session.config.firebase.firestoreEmulatorHost ? ' and FIRESTORE_EMULATOR_HOST' : ''} and the network`;
    return {
      verdict: 'FAIL',
      name,
      detail: `project ${projectId}: cannot query ${collection}: ${message(err)}`,
      fix,
    };
  }
}

async function checkStorage(session: Session, timeoutMs: number): Promise<Check> {
  const name = 'storage';
  const bucketName = session.config.firebase.storageBucket;
  const bucket = getStorage(session.firebase.app).bucket(bucketName);
  // One answer, not the SDK's retries: a doctor reports what it sees.
  bucket.storage.retryOptions.autoRetry = false;
  const fixName =
    'set STORAGE_BUCKET to the bucket shown in the Firebase console → Storage (e.g. ' +
    `my-app.appspot.com or my-app.firebasestorage.app, without gs://), ${WHERE}`;
  try {
    const [exists] = await within(bucket.exists(), timeoutMs, 'reading the bucket');
    if (!exists) {
      return { verdict: 'FAIL', name, detail: `bucket ${bucketName} does not exist`, fix: fixName };
    }
    const [metadata] = await within(bucket.getMetadata(), timeoutMs, 'reading the bucket');
    const days = checkpointExpiryDays(metadata);
    return days === undefined
      ? {
          verdict: 'warn',
          name,
          detail: `bucket ${bucketName} exists, but no lifecycle rule deletes leftover checkpoints (${WORK_PREFIX})`,
          fix: `gcloud storage buckets update gs://${bucketName} --lifecycle-file=lifecycle.json with ${JSON.stringify(CHECKPOINT_LIFECYCLE)} (docs/performance.md)`,
        }
      : {
          verdict: 'ok',
          name,
          detail: `bucket ${bucketName} exists and is readable; leftover checkpoints expire after ${days} day(s)`,
        };
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 401 || code === 403) {
      return {
        verdict: 'FAIL',
        name,
        detail: `bucket ${bucketName}: access denied (${String(code)})`,
        fix: 'grant the service account the "Storage Admin" or "Storage Object Admin" role on the bucket',
      };
    }
    return {
      verdict: 'FAIL',
      name,
      detail: `bucket ${bucketName}: ${message(err)}`,
      fix: session.config.firebase.storageEmulatorHost
        ? 'check FIREBASE_STORAGE_EMULATOR_HOST'
        : 'check the network and STORAGE_BUCKET',
    };
  }
}

async function checkClipdrop(config: Config, timeoutMs: number): Promise<Check> {
  const name = 'clipdrop';
  const base = config.clipdrop.apiUrl.replace(/\/+$/, '');
  const form = new FormData();
  // No image_file: a valid key gets 400 (bad input), which costs nothing.
  form.set('purpose', 'showcase-worker doctor: key check, no image');
  let status: number;
  try {
    const response = await fetch(`${base}/remove-background/v1`, {
      method: 'POST',
      headers: { 'x-api-key': config.clipdrop.apiKey, 'user-agent': 'showcase-worker doctor' },
      body: form,
      signal: AbortSignal.timeout(timeoutMs),
    });
    status = response.status;
    await response.arrayBuffer();
  } catch (err) {
    return {
      verdict: 'FAIL',
      name,
      detail: `no answer from ${base}: ${message(err)}`,
      fix: 'check CLIPDROP_API_URL (default https://clipdrop-api.co) and outbound network access',
    };
  }
  if (status === 400 || status === 200) {
    return {
      verdict: 'ok',
      name,
      detail: `${base} accepts the key (checked without an image: no credit spent)`,
    };
  }
  if (status === 401 || status === 403) {
    return {
      verdict: 'FAIL',
      name,
      detail: `${base} refused the API key (${status})`,
      fix: `set CLIPDROP_API_KEY to a valid key from https://clipdrop.co/apis/account, ${WHERE}`,
    };
  }
  if (status === 402) {
    return {
      verdict: 'FAIL',
      name,
      detail: 'the key is valid but the ClipDrop account has no credits left',
      fix: 'buy credits at https://clipdrop.co/apis/account; paused jobs resume by themselves',
    };
  }
  if (status === 429) {
    return {
      verdict: 'warn',
      name,
      detail: 'ClipDrop rate-limits this key right now (429), so the key was not checked',
      fix: 'run doctor again in a minute; if it persists, another client shares the key: lower CLIPDROP_RPM to what this fleet may use',
    };
  }
  return {
    verdict: 'FAIL',
    name,
    detail: `${base} answered ${status}`,
    fix: 'check CLIPDROP_API_URL; ClipDrop may be down (retry later)',
  };
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms while ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The first line of an error, without SDK noise. */
function message(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return (text.split('\n')[0] ?? text).slice(0, 300);
}
