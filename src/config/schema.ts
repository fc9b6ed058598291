import convict from 'convict';
import { DEFAULT_GS_PATHS, gsPatternProblem } from '../jobs/gs-paths.js';

/** A comma-separated list of `host` or `host:port` names, lower-cased. */
convict.addFormat({
  name: 'host-list',
  validate(value: unknown) {
    if (!Array.isArray(value)) throw new Error('must be a comma-separated list of host[:port]');
    for (const entry of value) {
      if (
        typeof entry !== 'string' ||
        !/^[a-z0-9.-]+(:\d{1,5})?$|^\[[0-9a-f:]+\](:\d{1,5})?$/i.test(entry)
      ) {
        throw new Error('must be a comma-separated list of host or host:port names');
      }
    }
  },
  coerce(value: unknown) {
    return String(value)
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean);
  },
});

/** Comma-separated object-name patterns for gs:// sources (jobs/gs-paths.ts). */
convict.addFormat({
  name: 'gs-path-patterns',
  validate(value: unknown) {
    if (!Array.isArray(value) || value.length === 0) {
      throw new Error('must be at least one pattern, e.g. raw-uploads/{userId}/**');
    }
    for (const entry of value) {
      const problem = typeof entry === 'string' ? gsPatternProblem(entry) : 'is not text';
      if (problem) throw new Error(`pattern ${JSON.stringify(entry)} ${problem}`);
    }
  },
  coerce(value: unknown) {
    const patterns = String(value)
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    // An empty variable (as a platform's form leaves it) means the default, never "nothing".
    return patterns.length > 0 ? patterns : [...DEFAULT_GS_PATHS];
  },
});

/** `host:port`, or empty for "not set". */
convict.addFormat({
  name: 'host-port',
  validate(value: unknown) {
    if (value === '') return;
    if (typeof value !== 'string' || !/^[^\s/:]+:\d{1,5}$|^\[[0-9a-f:]+\]:\d{1,5}$/i.test(value)) {
      throw new Error('must be host:port, e.g. 127.0.0.1:8080');
    }
  },
});

/** An absolute http(s) URL. */
convict.addFormat({
  name: 'http-url',
  validate(value: unknown) {
    let url: URL;
    try {
      url = new URL(String(value));
    } catch {
      throw new Error('must be an absolute URL');
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('must be http(s)');
  },
});

/** Every setting of the worker: its env name, default and format (CONTRACT §2). */
export const schema = {
  env: {
    doc: 'Which config/<env>.json applies, and whether logs are JSON (production).',
    format: ['production', 'development', 'test'],
    default: 'development',
    env: 'NODE_ENV',
  },
  firebase: {
    serviceAccountKey: {
      doc: 'Service account JSON, raw or base64. Optional with GOOGLE_APPLICATION_CREDENTIALS or emulators.',
      format: String,
      default: '',
      env: 'FIREBASE_SERVICE_ACCOUNT_KEY',
      sensitive: true,
    },
    credentialsFile: {
      doc: 'Path to a service account file (the standard Google variable).',
      format: String,
      default: '',
      env: 'GOOGLE_APPLICATION_CREDENTIALS',
    },
    projectId: {
      doc: 'Project id; taken from the service account key when empty.',
      format: String,
      default: '',
      env: 'GOOGLE_CLOUD_PROJECT',
    },
    storageBucket: {
      doc: 'Firebase Storage bucket, e.g. my-app.appspot.com.',
      format: String,
      default: '',
      env: 'STORAGE_BUCKET',
    },
    firestoreEmulatorHost: {
      doc: 'Use the Firestore emulator at host:port.',
      format: 'host-port',
      default: '',
      env: 'FIRESTORE_EMULATOR_HOST',
    },
    storageEmulatorHost: {
      doc: 'Use a Cloud Storage emulator at host:port.',
      format: 'host-port',
      default: '',
      env: 'FIREBASE_STORAGE_EMULATOR_HOST',
    },
    collection: {
      doc: 'The collection of character documents.',
      format: String,
      default: 'characters',
      env: 'FIRESTORE_COLLECTION',
    },
  },
  clipdrop: {
    apiKey: {
      doc: 'ClipDrop API key. Never logged.',
      format: String,
      default: '',
      env: 'CLIPDROP_API_KEY',
      sensitive: true,
    },
    apiUrl: {
      doc: 'Base URL of the ClipDrop API.',
      format: 'http-url',
      default: 'https://clipdrop-api.co',
      env: 'CLIPDROP_API_URL',
    },
    rpm: {
      doc: 'The ClipDrop key’s requests per minute, for the whole fleet: the live workers share it (docs/fleet.md).',
      format: 'nat',
      default: 60,
      env: 'CLIPDROP_RPM',
    },
    removeBackgroundTimeoutMs: {
      doc: 'Time limit of one remove-background call, upload to last byte of the answer.',
      format: 'nat',
      default: 60_000,
      env: 'CLIPDROP_REMOVE_BACKGROUND_TIMEOUT_MS',
    },
    upscaleTimeoutMs: {
      doc: 'Time limit of one upscale call (large outputs take longest).',
      format: 'nat',
      default: 120_000,
      env: 'CLIPDROP_UPSCALE_TIMEOUT_MS',
    },
    firstProbeMs: {
      doc: 'While paused (no credits, bad key, outage), the wait before the first probe; it doubles after each refused probe, up to CLIPDROP_PROBE_MS.',
      format: 'nat',
      default: 2_000,
      env: 'CLIPDROP_FIRST_PROBE_MS',
    },
    probeMs: {
      doc: 'While paused, the longest wait between two probes of ClipDrop (the probe interval backs off to this).',
      format: 'nat',
      default: 30_000,
      env: 'CLIPDROP_PROBE_MS',
    },
    outageThreshold: {
      doc: 'Consecutive 5xx/network failures that pause all calls until a probe succeeds.',
      format: 'nat',
      default: 5,
      env: 'CLIPDROP_OUTAGE_THRESHOLD',
    },
    dailyCreditBudget: {
      doc: 'Credits the whole fleet may spend a UTC day (Firestore’s clock), for the key; 0 = no budget. At the budget nothing new is claimed until the next day or a raised budget (`showcase-worker budget set N` overrides this without a restart; docs/budget.md).',
      format: 'nat',
      default: 0,
      env: 'CLIPDROP_DAILY_CREDIT_BUDGET',
    },
    creditsWarnBelow: {
      doc: 'Log a warning when ClipDrop reports fewer remaining credits than this.',
      format: 'nat',
      default: 100,
      env: 'CLIPDROP_CREDITS_WARN_BELOW',
    },
  },
  source: {
    allowedHosts: {
      doc: 'Extra host[:port] names http(s) sources may come from (comma-separated).',
      format: 'host-list',
      default: [] as string[],
      env: 'SOURCE_ALLOWED_HOSTS',
    },
    gsPaths: {
      doc: 'Patterns a gs:// source must match ({userId} as a whole folder, *, **; comma-separated). Default: raw-uploads/{userId}/**, where storage.rules let only the owner read.',
      format: 'gs-path-patterns',
      default: [...DEFAULT_GS_PATHS],
      env: 'SOURCE_GS_PATHS',
    },
    allowSharedGsPaths: {
      doc: 'Allow SOURCE_GS_PATHS patterns without {userId}: every user may then use any object they match as a source.',
      format: Boolean,
      default: false,
      env: 'SOURCE_GS_ALLOW_SHARED_PATHS',
    },
    maxBytes: {
      doc: 'Largest source file accepted, in bytes.',
      format: 'nat',
      default: 30 * 1024 * 1024,
      env: 'SOURCE_MAX_BYTES',
    },
    timeoutMs: {
      doc: 'Time limit for downloading a source.',
      format: 'nat',
      default: 30_000,
      env: 'SOURCE_TIMEOUT_MS',
    },
  },
  image: {
    resultCache: {
      doc: 'Reuse the result of an earlier job with the same source bytes and settings (no ClipDrop call).',
      format: Boolean,
      default: true,
      env: 'RESULT_CACHE',
    },
    resultCacheScope: {
      doc: 'Whose earlier results a job may reuse: the same owner’s (owner) or anyone’s (global: a user learns whether anyone processed the same bytes; docs/threat-model.md).',
      format: ['owner', 'global'],
      default: 'owner',
      env: 'RESULT_CACHE_SCOPE',
    },
    upscaleFactor: {
      doc: 'How much larger the showcase is than the source (long side capped at 4096).',
      format: 'nat',
      default: 2,
      env: 'UPSCALE_FACTOR',
    },
    pngFilters: {
      doc: 'Row filters of the result PNG: none (fastest) or adaptive (photos 20-50 % smaller, 1.6-2x the encode time).',
      format: ['none', 'adaptive'],
      default: 'none',
      env: 'PNG_FILTERS',
    },
    maxInputPixels: {
      doc: 'Largest image decoded (decompression bombs are refused above it).',
      format: 'nat',
      default: 100_000_000,
      env: 'IMAGE_MAX_INPUT_PIXELS',
    },
  },
  worker: {
    id: {
      doc: 'This process’s owner id in leases; generated when empty.',
      format: String,
      default: '',
      env: 'WORKER_ID',
    },
    concurrency: {
      doc: 'ClipDrop calls in flight at once (the paid slots).',
      format: 'nat',
      default: 4,
      env: 'WORKER_CONCURRENCY',
    },
    localJobs: {
      doc: 'Jobs held beyond the paid slots, doing their own work (fetch and checks, encode, upload, writes) beside the calls; a worker holds up to WORKER_CONCURRENCY + this claimed. Their decodes share one pixel budget.',
      format: 'nat',
      default: 2,
      env: 'WORKER_LOCAL_JOBS',
    },
    leaseMs: {
      doc: 'How long a claim holds without renewal; renewed every third of it.',
      format: 'nat',
      default: 60_000,
      env: 'LEASE_MS',
    },
    maxAttempts: {
      doc: 'Claims of one request before it fails with ATTEMPTS_EXHAUSTED.',
      format: 'nat',
      default: 3,
      env: 'JOB_MAX_ATTEMPTS',
    },
    heapGrowingPercent: {
      doc: 'V8 grows its heap to (1 + this/100) × the live heap before collecting it again (docs/performance.md); 0 leaves V8’s own, up to 4×.',
      format: 'nat',
      default: 50,
      env: 'HEAP_GROWING_PERCENT',
    },
    shutdownTimeoutMs: {
      doc: 'On SIGTERM, how long running jobs may finish before their leases are released.',
      format: 'nat',
      default: 25_000,
      env: 'SHUTDOWN_TIMEOUT_MS',
    },
    sweepMs: {
      doc: 'How often the fleet’s sweep leader runs the reconciling query; 0: every LEASE_MS/2.',
      format: 'nat',
      default: 0,
      env: 'SWEEP_MS',
    },
    listenerGiveUpMs: {
      doc: 'Exit non-zero when the Firestore listener cannot reconnect for this long.',
      format: 'nat',
      default: 300_000,
      env: 'LISTENER_GIVE_UP_MS',
    },
  },
  users: {
    dailyJobLimit: {
      doc: 'Jobs per user per UTC day that reach a paid ClipDrop call; over it: failed with USER_QUOTA_EXCEEDED. 0 = no limit; at most 10000. Per-user override: docs/fairness.md.',
      format: 'nat',
      default: 100,
      env: 'USER_DAILY_JOB_LIMIT',
    },
    dailyRequestLimit: {
      doc: 'Requests a user’s clicks start per UTC day (Firestore’s clock), paid or not: cache hits and refusals count; operator clicks do not. Counted by the claim; over it: failed with USER_QUOTA_EXCEEDED before any download. 0 = no limit.',
      format: 'nat',
      default: 500,
      env: 'USER_DAILY_REQUEST_LIMIT',
    },
    maxActive: {
      doc: 'Jobs of one user running at once across the fleet; more wait (unclaimed). 0 = no limit.',
      format: 'nat',
      default: 0,
      env: 'USER_MAX_ACTIVE',
    },
    deferredRetryMs: {
      doc: 'How soon a job whose user is at USER_MAX_ACTIVE is tried again.',
      format: 'nat',
      default: 2_000,
      env: 'USER_DEFERRED_RETRY_MS',
    },
  },
  fleet: {
    presenceTimeoutMs: {
      doc: 'A worker with no heartbeat for this long is dead: its jobs are taken over, its quota share returns.',
      format: 'nat',
      default: 15_000,
      env: 'PRESENCE_TIMEOUT_MS',
    },
    workersCollection: {
      doc: 'Collection of the workers’ heartbeat documents (closed to clients by firestore.rules).',
      format: String,
      default: 'showcaseWorkers',
      env: 'FLEET_WORKERS_COLLECTION',
    },
    collection: {
      doc: 'Collection of the fleet’s coordination documents: the quota ledger, the sweep leader lease, the credit budget, the operator’s intake flag.',
      format: String,
      default: 'showcaseFleet',
      env: 'FLEET_COLLECTION',
    },
  },
  retry: {
    maxTries: {
      doc: 'Tries of one call (first included) before a transient error fails the job.',
      format: 'nat',
      default: 5,
      env: 'RETRY_MAX_TRIES',
    },
    baseMs: {
      doc: 'Backoff before the first retry; doubles each time, with jitter.',
      format: 'nat',
      default: 1_000,
      env: 'RETRY_BASE_MS',
    },
    maxMs: {
      doc: 'Longest backoff between two tries.',
      format: 'nat',
      default: 30_000,
      env: 'RETRY_MAX_MS',
    },
  },
  log: {
    level: {
      doc: 'winston level.',
      format: ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'],
      default: 'info',
      env: 'LOG_LEVEL',
    },
    format: {
      doc: 'json (one object a line) or pretty; empty: json in production, pretty elsewhere.',
      format: ['', 'json', 'pretty'],
      default: '',
      env: 'LOG_FORMAT',
    },
  },
  console: {
    token: {
      doc: 'The operator console’s secret: its page, actions and /metrics (docs/console.md). The console does not start without it; the worker ignores it.',
      format: String,
      default: '',
      sensitive: true,
      env: 'CONSOLE_TOKEN',
    },
    readOnly: {
      doc: 'true: the console shows everything and refuses every action.',
      format: Boolean,
      default: false,
      env: 'CONSOLE_READ_ONLY',
    },
  },
  http: {
    port: {
      doc: 'Port for /healthz and /metrics; 0 or unset: no HTTP server.',
      format: 'port',
      default: 0,
      env: 'PORT',
    },
  },
};
