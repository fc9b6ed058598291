import type { Response } from 'got';
import { describe, expect, it } from 'vitest';
import { httpStatusError, parseRetryAfter } from '../../src/clipdrop/errors.js';
import { ERROR_CODES } from '../../src/jobs/errors.js';

describe('parseRetryAfter', () => {
  const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');

  it('reads delay-seconds', () => {
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter('0', now)).toBe(0);
    expect(parseRetryAfter(' 7 ', now)).toBe(7_000);
  });

  it('reads fractional seconds', () => {
    expect(parseRetryAfter('1.5', now)).toBe(1_500);
  });

  it('reads an HTTP-date relative to now', () => {
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 21 Oct 2015 08:28:00 GMT', now)).toBe(3_600_000);
  });

  it('reads a past HTTP-date as no wait', () => {
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:00:00 GMT', now)).toBe(0);
  });

  it('takes the first of repeated headers', () => {
    expect(parseRetryAfter(['3', '9'], now)).toBe(3_000);
  });

  it('is undefined when absent or unreadable', () => {
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter('', now)).toBeUndefined();
    expect(parseRetryAfter([], now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
  });
});

describe('httpStatusError', () => {
  const response = (statusCode: number, body: string, headers: Record<string, string> = {}) =>
    ({ statusCode, body: Buffer.from(body), headers }) as unknown as Response<Buffer>;

  it.each([
    [400, 'CLIPDROP_REJECTED', false],
    [401, 'CLIPDROP_UNAUTHORIZED', false],
    [403, 'CLIPDROP_UNAUTHORIZED', false],
    [402, 'CLIPDROP_NO_CREDITS', false],
    [429, 'CLIPDROP_RATE_LIMITED', true],
    [500, 'CLIPDROP_UNAVAILABLE', true],
    [503, 'CLIPDROP_UNAVAILABLE', true],
  ] as const)('maps %i to %s (transient: %s)', (status, code, transient) => {
    const error = httpStatusError(response(status, '{"error":"nope"}'));
    expect(error.code).toBe(code);
    expect(error.transient).toBe(transient);
    expect(error.message).toBe(ERROR_CODES[code].message);
    expect(error.detail).toBe(`ClipDrop ${status}: nope`);
  });

  it('carries Retry-After of a 429', () => {
    const error = httpStatusError(
      response(429, '{"error":"Too many requests"}', { 'retry-after': '12' }),
    );
    expect(error.retryAfterMs).toBe(12_000);
  });

  it('keeps a non-JSON body to the detail, shortened, never in the message', () => {
    const body = `<html>${'x'.repeat(500)}</html>`;
    const error = httpStatusError(response(502, body));
    expect(error.detail).toBe(`ClipDrop 502: ${body.slice(0, 200)}`);
    expect(error.message).not.toContain('<html>');
  });
});
