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

  it('scrubs a secret quoted in a URL or escaped in JSON, and in object keys', () => {
    const pem =
      '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n';
    const out = format(
      {
        url: `https://x.test/?k=${encodeURIComponent(`${KEY} ${OTHER}/+`)}`,
        body: JSON.stringify({ private_key: pem }),
        [KEY]: 'as a key',
      },
      [KEY, OTHER, pem, `${OTHER}/+`],
    );
    const text = JSON.stringify(out);
    expect(text).not.toContain(KEY);
    expect(text).not.toContain(OTHER);
    expect(text).not.toContain('MIIEvQIBADANBgkqhkiG9w0BAQEFAASC');
    expect(text).toContain('[REDACTED]');
  });

  it('survives a structure too deep to walk that cannot be serialized (a cycle)', () => {
    const cyclic: Record<string, unknown> = { secret: KEY };
    let node = cyclic;
    for (let i = 0; i < 10; i += 1) {
      node.next = { secret: KEY };
      node = node.next as Record<string, unknown>;
    }
    node.next = cyclic;
    const out = format({ cyclic });
    expect(JSON.stringify(out).includes(KEY)).toBe(false);
  });
});
