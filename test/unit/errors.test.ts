import { describe, expect, it } from 'vitest';
import {
  classify,
  ERROR_CODES,
  isJobError,
  JobError,
  type ErrorCode,
} from '../../src/jobs/errors.js';

function errnoError(code: string, message = 'socket hang up'): Error {
  return Object.assign(new Error(message), { code });
}

/** Shaped like got's TimeoutError (name TimeoutError, code ETIMEDOUT). */
class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
  readonly code = 'ETIMEDOUT';
  constructor() {
    super("Timeout awaiting 'request' for 30000ms");
  }
}

describe('JobError', () => {
  it.each(Object.keys(ERROR_CODES) as ErrorCode[])(
    '%s has the code’s user-safe message and retryability by default',
    (code) => {
      const error = new JobError(code);
      expect(error.message).toBe(ERROR_CODES[code].message);
      expect(error.transient).toBe(ERROR_CODES[code].transient);
      expect(error.code).toBe(code);
      expect(error.name).toBe('JobError');
      expect(error).toBeInstanceOf(Error);
    },
  );

  it('never uses the detail as its message', () => {
    const detail = 'ClipDrop 400: bad image; x-api-key=sk-live-0123456789abcdef';
    const error = new JobError('CLIPDROP_REJECTED', { detail });
    expect(error.message).toBe(ERROR_CODES.CLIPDROP_REJECTED.message);
    expect(error.message).not.toContain('sk-live');
    expect(error.detail).toBe(detail);
  });

  it('accepts overrides of message, retryability and Retry-After', () => {
    const error = new JobError('CLIPDROP_UNAVAILABLE', {
      message: 'Custom safe text.',
      transient: false,
      retryAfterMs: 1500,
    });
    expect(error.message).toBe('Custom safe text.');
    expect(error.transient).toBe(false);
    expect(error.retryAfterMs).toBe(1500);
  });

  it('is recognised across module copies by name and code', () => {
    const foreign = Object.assign(new Error('x'), { name: 'JobError', code: 'NETWORK' });
    expect(isJobError(foreign)).toBe(true);
    expect(isJobError(new Error('JobError'))).toBe(false);
    expect(isJobError({ name: 'JobError', code: 'NETWORK' })).toBe(false);
  });
});

describe('classify', () => {
  it('passes a JobError through unchanged', () => {
    const error = new JobError('SOURCE_NOT_FOUND', { detail: 'gs://b/x: 404' });
    expect(classify(error)).toBe(error);
  });

  it('turns ECONNRESET into a transient NETWORK error', () => {
    const cause = errnoError('ECONNRESET');
    const error = classify(cause);
    expect(error).toBeInstanceOf(JobError);
    expect(error.code).toBe('NETWORK');
    expect(error.transient).toBe(true);
    expect(error.message).toBe(ERROR_CODES.NETWORK.message);
    expect(error.detail).toContain('ECONNRESET');
    expect(error.cause).toBe(cause);
  });

  it.each(['ECONNREFUSED', 'EPIPE', 'EAI_AGAIN', 'UND_ERR_SOCKET'])(
    'turns %s into a transient NETWORK error',
    (code) => {
      const error = classify(errnoError(code));
      expect(error.code).toBe('NETWORK');
      expect(error.transient).toBe(true);
    },
  );

  it('turns a got-like TimeoutError into a transient TIMEOUT', () => {
    const error = classify(new TimeoutError());
    expect(error.code).toBe('TIMEOUT');
    expect(error.transient).toBe(true);
    expect(error.message).toBe(ERROR_CODES.TIMEOUT.message);
  });

  it('turns an AbortSignal.timeout() reason into TIMEOUT', () => {
    const reason = new DOMException('The operation was aborted due to timeout', 'TimeoutError');
    expect(classify(reason).code).toBe('TIMEOUT');
  });

  it('turns a bare ETIMEDOUT socket error into TIMEOUT', () => {
    expect(classify(errnoError('ETIMEDOUT')).code).toBe('TIMEOUT');
  });

  it('turns gRPC code 14 (UNAVAILABLE) into a transient FIRESTORE_UNAVAILABLE', () => {
    const grpc = Object.assign(new Error('14 UNAVAILABLE: No connection established'), {
      code: 14,
    });
    const error = classify(grpc);
    expect(error.code).toBe('FIRESTORE_UNAVAILABLE');
    expect(error.transient).toBe(true);
    expect(error.message).toBe(ERROR_CODES.FIRESTORE_UNAVAILABLE.message);
  });

  it.each([1, 2, 4, 8, 10])('treats gRPC code %i as transient', (code) => {
    const error = classify(Object.assign(new Error('grpc'), { code }));
    expect(error.code).toBe('FIRESTORE_UNAVAILABLE');
    expect(error.transient).toBe(true);
  });

  it('treats a gRPC PERMISSION_DENIED (7) as a permanent INTERNAL error', () => {
    const error = classify(Object.assign(new Error('7 PERMISSION_DENIED'), { code: 7 }));
    expect(error.code).toBe('INTERNAL');
    expect(error.transient).toBe(false);
  });

  it('turns a random Error into a permanent INTERNAL error whose message hides the original', () => {
    const cause = new TypeError("Cannot read properties of undefined (reading 'sk-secret')");
    const error = classify(cause);
    expect(error.code).toBe('INTERNAL');
    expect(error.transient).toBe(false);
    expect(error.message).toBe(ERROR_CODES.INTERNAL.message);
    expect(error.message).not.toContain('sk-secret');
    expect(error.detail).toContain('TypeError');
    expect(error.detail).toContain('sk-secret');
    expect(error.cause).toBe(cause);
  });

  it('classifies thrown non-errors as INTERNAL', () => {
    for (const thrown of ['just a string', 42, null, undefined, { code: 'ECONNRESET' }]) {
      const error = classify(thrown);
      expect(error).toBeInstanceOf(JobError);
      expect(error.message).toBe(
        error.code === 'INTERNAL' ? ERROR_CODES.INTERNAL.message : ERROR_CODES.NETWORK.message,
      );
    }
    expect(classify('just a string').code).toBe('INTERNAL');
    expect(classify(null).code).toBe('INTERNAL');
  });
});
