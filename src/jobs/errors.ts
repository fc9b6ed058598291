/**
 * Every failure a job can meet, with a stable code (CONTRACT §1), whether retrying can help,
 * and a message that is safe to show a user. Adapters throw `JobError`s; `classify` turns
 * anything else into one, so the retry policy and the failure write see a single shape.
 */
export const ERROR_CODES = {
  INVALID_DOCUMENT: {
    transient: false,
    message: 'The character document is missing or has an invalid field.',
  },
  SOURCE_URL_FORBIDDEN: { transient: false, message: 'The image URL is not an allowed location.' },
  SOURCE_NOT_FOUND: { transient: false, message: 'The original image could not be found.' },
  SOURCE_NOT_IMAGE: { transient: false, message: 'The original file is not a supported image.' },
  SOURCE_TOO_LARGE: { transient: false, message: 'The original image is too large.' },
  SOURCE_TOO_SMALL: { transient: false, message: 'The original image is too small to process.' },
  SOURCE_CHANGED: {
    transient: false,
    // A later attempt read other bytes at the recorded URL (source-binding.ts).
    message: 'The picture changed while it was being processed. Click Process again.',
  },
  SOURCE_UNAVAILABLE: {
    transient: true,
    message: 'The original image could not be downloaded right now.',
  },
  CLIPDROP_REJECTED: { transient: false, message: 'The image service rejected this image.' },
  CLIPDROP_UNAUTHORIZED: {
    transient: false,
    message: 'The image service refused the worker’s API key.',
  },
  CLIPDROP_NO_CREDITS: {
    transient: false,
    message: 'The image service account has no credits left.',
  },
  CLIPDROP_RATE_LIMITED: {
    transient: true,
    message: 'The image service is busy; the job will be retried.',
  },
  CLIPDROP_UNAVAILABLE: { transient: true, message: 'The image service is unavailable right now.' },
  CLIPDROP_BAD_RESPONSE: {
    transient: true,
    message: 'The image service returned an unusable image.',
  },
  STORAGE_UNAVAILABLE: { transient: true, message: 'The result could not be stored right now.' },
  STORAGE_FAILED: { transient: false, message: 'The result could not be stored.' },
  FIRESTORE_UNAVAILABLE: { transient: true, message: 'The database is unavailable right now.' },
  NETWORK: { transient: true, message: 'A network error interrupted the job.' },
  TIMEOUT: { transient: true, message: 'A step of the job took too long.' },
  ATTEMPTS_EXHAUSTED: {
    transient: false,
    message: 'The job failed too many times and was stopped.',
  },
  USER_QUOTA_EXCEEDED: {
    transient: false,
    // Thrown with the limit and its reset time (user-limits.ts dailyLimitMessage).
    message: 'You have reached your daily limit of showcase jobs. It resets at midnight UTC.',
  },
  INTERNAL: { transient: false, message: 'An unexpected error stopped the job.' },
} as const satisfies Record<string, { transient: boolean; message: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface JobErrorOptions {
  /** Overrides the code's default user message; must stay user-safe (no keys, no stack). */
  message?: string;
  /** Overrides the code's default retryability (e.g. a 500 we know to be permanent). */
  transient?: boolean;
  /** Server-requested wait (Retry-After) before the next try. */
  retryAfterMs?: number;
  /** Operator-facing detail for logs; never written to the document. */
  detail?: string;
  cause?: unknown;
}

export class JobError extends Error {
  override readonly name = 'JobError';
  readonly code: ErrorCode;
  readonly transient: boolean;
  readonly retryAfterMs: number | undefined;
  readonly detail: string | undefined;

  constructor(code: ErrorCode, opts: JobErrorOptions = {}) {
    super(opts.message ?? ERROR_CODES[code].message, { cause: opts.cause });
    this.code = code;
    this.transient = opts.transient ?? ERROR_CODES[code].transient;
    this.retryAfterMs = opts.retryAfterMs;
    this.detail = opts.detail;
  }
}

export function isJobError(err: unknown): err is JobError {
  // `name` as well as instanceof: errors may cross module copies (tests, stand-ins).
  return (
    err instanceof JobError || (err instanceof Error && err.name === 'JobError' && 'code' in err)
  );
}

/** Node socket errors that a retry can cure. */
const TRANSIENT_ERRNO = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'UND_ERR_SOCKET',
]);

/**
 * gRPC status codes for conditions that pass: ABORTED, UNAVAILABLE, ... and UNKNOWN or CANCELLED,
 * which a dropped stream gets ("Stream removed", "call already cancelled"); the stores make a
 * write that may have landed safe to try again (`writeId`).
 */
const TRANSIENT_GRPC = new Set([
  1 /* CANCELLED */, 2 /* UNKNOWN */, 4 /* DEADLINE_EXCEEDED */, 8 /* RESOURCE_EXHAUSTED */,
  10 /* ABORTED */, 13 /* INTERNAL */, 14 /* UNAVAILABLE */,
]);

/** The one place an unknown error becomes a `JobError`. */
export function classify(err: unknown): JobError {
  if (isJobError(err)) return err;
  const detail = describe(err);
  const code = (err as { code?: unknown } | null)?.code;
  const name = err instanceof Error ? err.name : '';
  if (name === 'TimeoutError' || code === 'ETIMEDOUT') {
    return new JobError('TIMEOUT', { detail, cause: err });
  }
  if (typeof code === 'string' && TRANSIENT_ERRNO.has(code)) {
    return new JobError('NETWORK', { detail, cause: err });
  }
  if (typeof code === 'number' && TRANSIENT_GRPC.has(code)) {
    return new JobError('FIRESTORE_UNAVAILABLE', { detail, cause: err });
  }
  return new JobError('INTERNAL', { detail, cause: err });
}

/** A one-line operator-facing description (logs only). */
export function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' || typeof code === 'number'
      ? `${err.name} [${code}]: ${err.message}`
      : `${err.name}: ${err.message}`;
  }
  return String(err);
}
