import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { parseServiceAccount, secretsOf } from '../../src/config/service-account.js';
import { createLogger } from '../../src/log/logger.js';

const API_KEY = 'ck_live_9f8e7d6c5b4a3210fedcba';
const PEM_BODY = [
  'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDfakefakefake1',
  'Q2FuIHlvdSByZWFkIHRoaXM/IFRoaXMgaXMgbm90IGEgcmVhbCBrZXkgYXQgYWxs',
  'c2VjcmV0LXByaXZhdGUta2V5LWxpbmUtdGhyZWU=',
];
const PRIVATE_KEY = `-----BEGIN PRIVATE KEY-----\n${PEM_BODY.join('\n')}\n-----END PRIVATE KEY-----\n`;
const SERVICE_ACCOUNT_KEY = Buffer.from(
  JSON.stringify({
    project_id: 'p',
    client_email: 'worker@p.iam.gserviceaccount.com',
    private_key: PRIVATE_KEY,
  }),
).toString('base64');

const secrets = secretsOf({
  clipdrop: { apiKey: API_KEY },
  firebase: {
    serviceAccount: parseServiceAccount(SERVICE_ACCOUNT_KEY),
    serviceAccountKey: SERVICE_ACCOUNT_KEY,
  },
});

/** Everything a secret could leak as: the API key, the raw setting, the key, each line. */
const FORBIDDEN = [API_KEY, SERVICE_ACCOUNT_KEY, ...PEM_BODY];

function setup(format: 'json' | 'pretty' = 'json') {
  const stream = new PassThrough();
  let output = '';
  stream.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  const logger = createLogger({ level: 'debug', format, secrets, stream });
  return {
    logger,
    /** The lines written so far (winston writes to the stream synchronously). */
    output: () => output,
    expectClean: () => {
      expect(output.length).toBeGreaterThan(0);
      for (const secret of FORBIDDEN) expect(output).not.toContain(secret);
    },
  };
}

describe('logger with secrets', () => {
  it('redacts the API key from the message, keeping the rest', () => {
    const { logger, output, expectClean } = setup();
    logger.info(`clipdrop.call with key ${API_KEY}`);
    expectClean();
    const line = JSON.parse(output().trim()) as Record<string, unknown>;
    expect(line.message).toBe('clipdrop.call with key [REDACTED]');
    expect(line.level).toBe('info');
  });

  it('redacts nested fields and arrays', () => {
    const { logger, output, expectClean } = setup();
    logger.warn('clipdrop.call', {
      status: 401,
      request: { headers: { 'x-api-key': API_KEY }, body: { key: [PRIVATE_KEY] } },
    });
    expectClean();
    const line = JSON.parse(output().trim()) as { status: number; request: unknown };
    expect(line.status).toBe(401);
    expect(line.request).toEqual({
      headers: { 'x-api-key': '[REDACTED]' },
      body: { key: ['[REDACTED]'] },
    });
  });

  it('redacts an Error field', () => {
    const { logger, output, expectClean } = setup();
    const err = Object.assign(new Error(`request failed: x-api-key=${API_KEY}`), {
      options: { headers: { 'x-api-key': API_KEY } },
    });
    logger.error('job.failed', { err, detail: String(err) });
    expectClean();
    expect(output()).toContain('request failed: x-api-key=[REDACTED]');
  });

  it('redacts an Error logged as the meta argument, stack included', () => {
    const { logger, output, expectClean } = setup();
    logger.error('job.failed', new Error(`bad key ${API_KEY}`));
    expectClean();
    expect(output()).toContain('bad key [REDACTED]');
  });

  it('never writes the private key or any line of it', () => {
    const { logger, expectClean } = setup();
    logger.debug('config', { key: SERVICE_ACCOUNT_KEY });
    logger.debug(`pem ${PRIVATE_KEY}`);
    logger.info('json', { raw: JSON.stringify({ private_key: PRIVATE_KEY }) });
    for (const line of PEM_BODY) logger.warn('partial', { fragment: `...${line}...` });
    expectClean();
  });

  it('redacts fields of a child logger', () => {
    const { logger, output, expectClean } = setup();
    logger.child({ component: 'clipdrop', apiKey: API_KEY }).info('clipdrop.ready');
    expectClean();
    expect(output()).toContain('"component":"clipdrop"');
  });

  it('redacts in the pretty format too', () => {
    const { logger, output, expectClean } = setup('pretty');
    logger.info(`hello ${API_KEY}`, { nested: { key: PEM_BODY[1] } });
    expectClean();
    expect(output()).toContain('hello [REDACTED]');
  });

  it('redacts a secret nested deeper than six levels', () => {
    const { logger, expectClean } = setup();
    logger.info('deep', {
      a: { b: { c: { d: { e: { f: { g: { h: { 'x-api-key': API_KEY } } } } } } } },
    });
    expectClean();
  });
});
