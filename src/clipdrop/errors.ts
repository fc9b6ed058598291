import type { Response } from 'got';
import { JobError, type ErrorCode } from '../jobs/errors.js';

/** A ClipDrop answer as the client keeps it: got's status and headers, the body as a Buffer. */
export type ClipdropAnswer = Pick<Response, 'statusCode' | 'headers'> & { body: Buffer };

/** ClipDrop's answer statuses (CONTRACT §3), mapped once to job errors. */
export function httpStatusError(response: ClipdropAnswer): JobError {
  const status = response.statusCode;
  const detail = `ClipDrop ${status}: ${errorText(response.body)}`;
  const code: ErrorCode =
    status === 401 || status === 403
      ? 'CLIPDROP_UNAUTHORIZED'
      : status === 402
        ? 'CLIPDROP_NO_CREDITS'
        : status === 429
          ? 'CLIPDROP_RATE_LIMITED'
          : status >= 500
            ? 'CLIPDROP_UNAVAILABLE'
            : 'CLIPDROP_REJECTED';
  return new JobError(code, {
    detail,
    retryAfterMs: parseRetryAfter(response.headers['retry-after']),
  });
}

/** Retry-After in seconds or as an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(
  value: string | string[] | undefined,
  now: number = Date.now(),
): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return undefined;
  if (/^\d+(\.\d+)?$/.test(text.trim())) return Math.round(Number(text) * 1000);
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** The `{ "error": "..." }` body, shortened; ClipDrop never echoes the key, but we cap it anyway. */
function errorText(body: Buffer): string {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { error?: unknown };
    if (typeof parsed.error === 'string') return parsed.error.slice(0, 200);
  } catch {
    // Not JSON: fall through to the raw text.
  }
  return body.toString('utf8', 0, 200);
}
