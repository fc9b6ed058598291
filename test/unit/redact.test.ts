import { describe, expect, it } from 'vitest';
import { redactSecrets, scrub } from '../../src/log/redact.js';

const KEY = 'ck_live_0123456789abcdef';
const OTHER = 'another-secret-value';

/** Runs the format on an info object, as winston would. */
function format(info: Record<string, unknown>, secrets: readonly string[] = [KEY, OTHER]) {
  const out = redactSecrets(secrets).transform({ level: 'info', message: '', ...info }, {});
  if (!out || typeof out !== 'object') throw new Error('format dropped the line');
  return out as Record<string, unknown>;
}

describe('scrub', () => {
  it('replaces every occurrence of every secret', () => {
    expect(scrub(`a ${KEY} b ${KEY} c ${OTHER}`, [KEY, OTHER])).toBe(
      'a [REDACTED] b [REDACTED] c [REDACTED]',
    );
  });

  it('leaves text without secrets alone', () => {
    expect(scrub('nothing here', [KEY])).toBe('nothing here');
    expect(scrub(KEY, [])).toBe(KEY);
  });
});

describe('redactSecrets', () => {
  it('scrubs the message', () => {
    expect(format({ message: `calling with ${KEY}` }).message).toBe('calling with [REDACTED]');
  });

  it('scrubs nested fields and arrays', () => {
    const out = format({
      request: { headers: { 'x-api-key': KEY, accept: 'image/png' } },
      list: ['fine', `bearer ${OTHER}`],
      count: 3,
      ok: true,
      nothing: null,
    });
    expect(out.request).toEqual({ headers: { 'x-api-key': '[REDACTED]', accept: 'image/png' } });
    expect(out.list).toEqual(['fine', 'bearer [REDACTED]']);
    expect(out.count).toBe(3);
    expect(out.ok).toBe(true);
    expect(out.nothing).toBeNull();
  });

  it('turns an Error field into its name and scrubbed message, dropping other properties', () => {
    const err = Object.assign(new Error(`401 for key ${KEY}`), {
      options: { headers: { 'x-api-key': KEY } },
    });
    expect(format({ err }).err).toEqual({ name: 'Error', message: '401 for key [REDACTED]' });
  });

  it('leaves the line as it is when there are no secrets', () => {
    const info = { level: 'info', message: 'hello', nested: { a: 1 } };
    expect(redactSecrets([]).transform(info, {})).toBe(info);
  });
});
