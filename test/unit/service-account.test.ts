import { describe, expect, it } from 'vitest';
import { parseServiceAccount, secretsOf } from '../../src/config/service-account.js';

const PEM_BODY = [
  'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDfakefakefake1',
  'Q2FuIHlvdSByZWFkIHRoaXM/IFRoaXMgaXMgbm90IGEgcmVhbCBrZXkgYXQgYWxs',
  'c2VjcmV0LXByaXZhdGUta2V5LWxpbmUtdGhyZWU=',
];
const PRIVATE_KEY = `-----BEGIN PRIVATE KEY-----\n${PEM_BODY.join('\n')}\n-----END PRIVATE KEY-----\n`;
const ACCOUNT = {
  project_id: 'sa-project',
  client_email: 'worker@sa-project.iam.gserviceaccount.com',
  private_key: PRIVATE_KEY,
};
const RAW = JSON.stringify({ type: 'service_account', ...ACCOUNT });

describe('parseServiceAccount', () => {
  it('reads raw JSON', () => {
    expect(parseServiceAccount(RAW)).toMatchObject(ACCOUNT);
  });

  it('reads base64 of the JSON', () => {
    expect(parseServiceAccount(Buffer.from(RAW).toString('base64'))).toMatchObject(ACCOUNT);
  });

  it('is undefined when empty or blank', () => {
    expect(parseServiceAccount('')).toBeUndefined();
    expect(parseServiceAccount('  \n ')).toBeUndefined();
  });

  it('names the missing fields without echoing the value', () => {
    const value = JSON.stringify({ private_key: PRIVATE_KEY });
    expect(() => parseServiceAccount(value)).toThrow('is missing project_id, client_email');
    try {
      parseServiceAccount(value);
    } catch (err) {
      expect((err as Error).message).not.toContain(PEM_BODY[0]);
    }
  });

  it('refuses text that is neither JSON nor base64 of JSON, without echoing it', () => {
    expect(() => parseServiceAccount('sk-not-a-key')).toThrow(
      'is neither JSON nor base64-encoded JSON',
    );
    expect(() => parseServiceAccount('{"project_id": ')).toThrow(/neither JSON/);
  });
});

describe('secretsOf', () => {
  const config = (apiKey: string, key: string) => ({
    clipdrop: { apiKey },
    firebase: { serviceAccount: parseServiceAccount(key), serviceAccountKey: key },
  });

  it('lists the API key, the raw key value, the private key and each line of its body', () => {
    const secrets = secretsOf(config('ck_live_abcdef123456', RAW));
    expect(secrets).toContain('ck_live_abcdef123456');
    expect(secrets).toContain(RAW);
    expect(secrets).toContain(PRIVATE_KEY);
    for (const line of PEM_BODY) expect(secrets).toContain(line);
  });

  it('lists the base64 value as given', () => {
    const b64 = Buffer.from(RAW).toString('base64');
    const secrets = secretsOf(config('ck_live_abcdef123456', b64));
    expect(secrets).toContain(b64);
    expect(secrets).toContain(PRIVATE_KEY);
  });

  it('does not list the PEM armour lines, empty or very short values', () => {
    const secrets = secretsOf(config('', ''));
    expect(secrets).toEqual([]);
    const withKey = secretsOf(config('abc', RAW));
    expect(withKey).not.toContain('abc');
    expect(withKey).not.toContain('-----BEGIN PRIVATE KEY-----');
    expect(withKey).not.toContain('-----END PRIVATE KEY-----');
    expect(withKey).not.toContain('');
  });
});
