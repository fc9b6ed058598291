import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load.js';

const FAKE_API_KEY = 'ck_fake_0123456789abcdefSECRET';
const PEM_BODY = [
  'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDfakefakefake1',
  'Q2FuIHlvdSByZWFkIHRoaXM/IFRoaXMgaXMgbm90IGEgcmVhbCBrZXkgYXQgYWxs',
  'c2VjcmV0LXByaXZhdGUta2V5LWxpbmUtdGhyZWU=',
];
const PRIVATE_KEY = `-----BEGIN PRIVATE KEY-----\n${PEM_BODY.join('\n')}\n-----END PRIVATE KEY-----\n`;
const SERVICE_ACCOUNT = {
  type: 'service_account',
  project_id: 'sa-project',
  client_email: 'worker@sa-project.iam.gserviceaccount.com',
  private_key: PRIVATE_KEY,
};
const RAW_KEY = JSON.stringify(SERVICE_ACCOUNT);
const BASE64_KEY = Buffer.from(RAW_KEY).toString('base64');

/** Every setting needed, with emulators instead of credentials. */
const emulated = {
  NODE_ENV: 'development',
  GOOGLE_CLOUD_PROJECT: 'demo-project',
  STORAGE_BUCKET: 'demo-project.appspot.com',
  CLIPDROP_API_KEY: FAKE_API_KEY,
  FIRESTORE_EMULATOR_HOST: '127.0.0.1:8080',
  FIREBASE_STORAGE_EMULATOR_HOST: '127.0.0.1:9199',
};

/** With credentials instead of emulators. */
const withKey = {
  NODE_ENV: 'production',
  STORAGE_BUCKET: 'sa-project.appspot.com',
  CLIPDROP_API_KEY: FAKE_API_KEY,
  FIREBASE_SERVICE_ACCOUNT_KEY: RAW_KEY,
};

let emptyDir: string;
let fileDir: string;

beforeAll(() => {
  emptyDir = mkdtempSync(join(tmpdir(), 'cfg-empty-'));
  fileDir = mkdtempSync(join(tmpdir(), 'cfg-files-'));
  writeFileSync(
    join(fileDir, 'default.json'),
    JSON.stringify({ worker: { concurrency: 7, leaseMs: 20_000 }, log: { level: 'warn' } }),
  );
  writeFileSync(
    join(fileDir, 'development.json'),
    JSON.stringify({ worker: { concurrency: 9 }, retry: { baseMs: 10 } }),
  );
});

afterAll(() => {
  rmSync(emptyDir, { recursive: true, force: true });
  rmSync(fileDir, { recursive: true, force: true });
});

/** A copy of `env` without the given variables. */
function without(env: NodeJS.ProcessEnv, ...names: string[]): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !names.includes(name)));
}

/** The ConfigError that loading must throw. */
function configError(env: NodeJS.ProcessEnv, configDir = emptyDir): ConfigError {
  let thrown: unknown;
  try {
    loadConfig({ env, configDir });
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(ConfigError);
  return thrown as ConfigError;
}

describe('loadConfig', () => {
  describe('defaults', () => {
    it('fills every setting from the schema', () => {
      const config = loadConfig({ env: emulated, configDir: emptyDir });
      expect(config.env).toBe('development');
      expect(config.clipdrop.apiUrl).toBe('https://clipdrop-api.co');
      expect(config.clipdrop.apiKey).toBe(FAKE_API_KEY);
      expect(config.firebase.collection).toBe('characters');
      expect(config.worker).toMatchObject({
        concurrency: 4,
        leaseMs: 60_000,
        maxAttempts: 3,
        heapGrowingPercent: 50,
      });
      expect(config.retry).toEqual({ maxTries: 5, baseMs: 1_000, maxMs: 30_000 });
      expect(config.image.upscaleFactor).toBe(2);
      expect(config.image.pngFilters).toBe('none');
      expect(config.source.allowedHosts).toEqual([]);
      expect(config.source.maxBytes).toBe(30 * 1024 * 1024);
      expect(config.http.port).toBe(0);
      expect(config.log).toEqual({ level: 'info', format: 'pretty' });
      expect(config.firebase.serviceAccount).toBeUndefined();
    });

    it('generates a worker id when none is set, and keeps a given one', () => {
      expect(loadConfig({ env: emulated, configDir: emptyDir }).worker.id).not.toBe('');
      expect(
        loadConfig({ env: { ...emulated, WORKER_ID: 'dyno-1' }, configDir: emptyDir }).worker.id,
      ).toBe('dyno-1');
    });

    it('logs JSON in production unless told otherwise', () => {
      const env = { ...emulated, NODE_ENV: 'production' };
      expect(loadConfig({ env, configDir: emptyDir }).log.format).toBe('json');
      expect(
        loadConfig({ env: { ...env, LOG_FORMAT: 'pretty' }, configDir: emptyDir }).log.format,
      ).toBe('pretty');
    });

    it('returns a frozen config', () => {
      const config = loadConfig({ env: emulated, configDir: emptyDir });
      expect(Object.isFrozen(config)).toBe(true);
      expect(Object.isFrozen(config.worker)).toBe(true);
      expect(Object.isFrozen(config.source.allowedHosts)).toBe(true);
    });
  });

  describe('precedence', () => {
    it('applies default.json, then <NODE_ENV>.json', () => {
      const config = loadConfig({ env: emulated, configDir: fileDir });
      expect(config.worker.concurrency).toBe(9);
      expect(config.worker.leaseMs).toBe(20_000);
      expect(config.retry.baseMs).toBe(10);
      expect(config.log.level).toBe('warn');
    });

    it('lets the environment win over config/<env>.json', () => {
      const config = loadConfig({
        env: { ...emulated, WORKER_CONCURRENCY: '11', LOG_LEVEL: 'error', RETRY_BASE_MS: '25' },
        configDir: fileDir,
      });
      expect(config.worker.concurrency).toBe(11);
      expect(config.log.level).toBe('error');
      expect(config.retry.baseMs).toBe(25);
      expect(config.worker.leaseMs).toBe(20_000);
    });

    it('reads the repository config folder (NODE_ENV=test) and lets env override it', () => {
      const env = { ...emulated, NODE_ENV: 'test' };
      const fromFiles = loadConfig({ env, configDir: 'config' });
      expect(fromFiles.log.level).toBe('warn');
      expect(fromFiles.retry).toMatchObject({ baseMs: 50, maxMs: 500 });
      const overridden = loadConfig({ env: { ...env, LOG_LEVEL: 'debug' }, configDir: 'config' });
      expect(overridden.log.level).toBe('debug');
    });

    it('refuses a setting in a file that the schema does not declare', () => {
      const dir = mkdtempSync(join(tmpdir(), 'cfg-strict-'));
      try {
        writeFileSync(join(dir, 'default.json'), JSON.stringify({ worker: { concurency: 2 } }));
        expect(configError(emulated, dir).message).toContain('worker.concurency');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('errors', () => {
    it('lists every missing setting at once, by env name', () => {
      const error = configError({ NODE_ENV: 'production' });
      const names = error.problems.map((p) => p.split(':')[0]);
      expect(names).toEqual(
        expect.arrayContaining([
          'GOOGLE_CLOUD_PROJECT',
          'STORAGE_BUCKET',
          'CLIPDROP_API_KEY',
          'FIREBASE_SERVICE_ACCOUNT_KEY',
        ]),
      );
      for (const name of names) expect(error.message).toContain(name);
    });

    it('reports missing CLIPDROP_API_KEY and STORAGE_BUCKET together', () => {
      const env = without(emulated, 'CLIPDROP_API_KEY', 'STORAGE_BUCKET');
      const error = configError(env);
      expect(error.problems).toHaveLength(2);
      expect(error.problems[0]).toMatch(/^STORAGE_BUCKET: /);
      expect(error.problems[1]).toMatch(/^CLIPDROP_API_KEY: /);
    });

    it('names format errors by env name, not by schema path', () => {
      const error = configError({
        ...emulated,
        WORKER_CONCURRENCY: 'lots',
        LOG_LEVEL: 'loud',
        PNG_FILTERS: 'some',
        FIRESTORE_EMULATOR_HOST: 'no-port',
        SOURCE_ALLOWED_HOSTS: 'https://cdn.example.com',
      });
      const names = error.problems.map((p) => p.split(':')[0]);
      expect(names).toEqual(
        expect.arrayContaining([
          'WORKER_CONCURRENCY',
          'LOG_LEVEL',
          'PNG_FILTERS',
          'FIRESTORE_EMULATOR_HOST',
          'SOURCE_ALLOWED_HOSTS',
        ]),
      );
      expect(error.message).not.toContain('worker.concurrency');
      expect(error.message).not.toContain('log.level');
    });

    it('refuses a CLIPDROP_API_URL that is not an absolute http(s) URL', () => {
      expect(
        configError({ ...emulated, CLIPDROP_API_URL: 'ftp://clipdrop.example' }).problems,
      ).toEqual([expect.stringMatching(/^CLIPDROP_API_URL: /)]);
      expect(configError({ ...emulated, CLIPDROP_API_URL: 'clipdrop-api.co' }).problems).toEqual([
        expect.stringMatching(/^CLIPDROP_API_URL: /),
      ]);
      const config = loadConfig({
        env: { ...emulated, CLIPDROP_API_URL: 'http://127.0.0.1:7070' },
        configDir: emptyDir,
      });
      expect(config.clipdrop.apiUrl).toBe('http://127.0.0.1:7070');
    });

    it('refuses numbers below their minimum', () => {
      const error = configError({
        ...emulated,
        WORKER_CONCURRENCY: '0',
        LEASE_MS: '500',
        RETRY_MAX_TRIES: '0',
        UPSCALE_FACTOR: '0',
      });
      expect(error.problems).toEqual([
        'WORKER_CONCURRENCY: must be at least 1',
        'LEASE_MS: must be at least 1000',
        'RETRY_MAX_TRIES: must be at least 1',
        'UPSCALE_FACTOR: must be at least 1',
      ]);
    });

    it('refuses a daily limit a day document could not list (0 lifts it instead)', () => {
      const error = configError({ ...emulated, USER_DAILY_JOB_LIMIT: '10001' });
      expect(error.problems).toEqual([
        'USER_DAILY_JOB_LIMIT: must be at most 10000 (0 = no limit, for more than that)',
      ]);
    });

    it('does not echo a service account key it cannot use', () => {
      const incomplete = { ...SERVICE_ACCOUNT, client_email: undefined };
      const error = configError({
        ...withKey,
        FIREBASE_SERVICE_ACCOUNT_KEY: JSON.stringify(incomplete),
      });
      expect(error.problems).toContain('FIREBASE_SERVICE_ACCOUNT_KEY: is missing client_email');
      for (const line of PEM_BODY) expect(error.message).not.toContain(line);
      expect(error.message).not.toContain('PRIVATE KEY');
    });

    it('does not echo an unreadable service account key', () => {
      const garbage = `not-json-${PEM_BODY[0]}`;
      const error = configError({ ...withKey, FIREBASE_SERVICE_ACCOUNT_KEY: garbage });
      expect(error.message).toContain('FIREBASE_SERVICE_ACCOUNT_KEY');
      expect(error.message).not.toContain(PEM_BODY[0]);
    });

    it('does not echo the API key when another setting is missing', () => {
      const error = configError({ ...emulated, STORAGE_BUCKET: '' });
      expect(error.message).not.toContain(FAKE_API_KEY);
    });

    it('never shows a secret that was put in an invalid setting', () => {
      const error = configError({
        ...emulated,
        LOG_LEVEL: FAKE_API_KEY,
        FIREBASE_STORAGE_EMULATOR_HOST: FAKE_API_KEY,
      });
      expect(error.problems.map((p) => p.split(':')[0])).toEqual(
        expect.arrayContaining(['LOG_LEVEL', 'FIREBASE_STORAGE_EMULATOR_HOST']),
      );
      expect(error.message).not.toContain(FAKE_API_KEY);
    });
  });

  describe('credentials', () => {
    it('accepts a raw JSON service account key and takes the project from it', () => {
      const config = loadConfig({ env: withKey, configDir: emptyDir });
      expect(config.firebase.serviceAccount).toEqual(SERVICE_ACCOUNT);
      expect(config.firebase.serviceAccount?.private_key).toBe(PRIVATE_KEY);
      expect(config.firebase.projectId).toBe('sa-project');
    });

    it('accepts a base64 service account key', () => {
      const config = loadConfig({
        env: { ...withKey, FIREBASE_SERVICE_ACCOUNT_KEY: BASE64_KEY },
        configDir: emptyDir,
      });
      expect(config.firebase.serviceAccount).toEqual(SERVICE_ACCOUNT);
      expect(config.firebase.projectId).toBe('sa-project');
    });

    it('accepts a key surrounded by whitespace (as pasted)', () => {
      const config = loadConfig({
        env: { ...withKey, FIREBASE_SERVICE_ACCOUNT_KEY: `\n  ${BASE64_KEY}\n` },
        configDir: emptyDir,
      });
      expect(config.firebase.serviceAccount?.client_email).toBe(SERVICE_ACCOUNT.client_email);
    });

    it('prefers GOOGLE_CLOUD_PROJECT to the key’s project', () => {
      const config = loadConfig({
        env: { ...withKey, GOOGLE_CLOUD_PROJECT: 'explicit' },
        configDir: emptyDir,
      });
      expect(config.firebase.projectId).toBe('explicit');
    });

    it('needs no credentials in production when both emulators are set', () => {
      const config = loadConfig({
        env: { ...emulated, NODE_ENV: 'production' },
        configDir: emptyDir,
      });
      expect(config.env).toBe('production');
      expect(config.firebase.serviceAccount).toBeUndefined();
      expect(config.firebase.firestoreEmulatorHost).toBe('127.0.0.1:8080');
      expect(config.firebase.storageEmulatorHost).toBe('127.0.0.1:9199');
    });

    it('needs credentials when only one emulator is set', () => {
      const env = without(emulated, 'FIREBASE_STORAGE_EMULATOR_HOST');
      expect(configError(env).problems).toEqual([
        expect.stringMatching(/^FIREBASE_SERVICE_ACCOUNT_KEY: required unless/),
      ]);
    });

    it('accepts GOOGLE_APPLICATION_CREDENTIALS instead of a key', () => {
      const config = loadConfig({
        env: {
          NODE_ENV: 'production',
          GOOGLE_CLOUD_PROJECT: 'p',
          STORAGE_BUCKET: 'p.appspot.com',
          CLIPDROP_API_KEY: FAKE_API_KEY,
          GOOGLE_APPLICATION_CREDENTIALS: '/secrets/sa.json',
        },
        configDir: emptyDir,
      });
      expect(config.firebase.credentialsFile).toBe('/secrets/sa.json');
    });
  });

  describe('SOURCE_ALLOWED_HOSTS', () => {
    it('is parsed as a lower-cased, trimmed list', () => {
      const config = loadConfig({
        env: {
          ...emulated,
          SOURCE_ALLOWED_HOSTS: ' CDN.Example.com , localhost:9000,,Images.Test ',
        },
        configDir: emptyDir,
      });
      expect(config.source.allowedHosts).toEqual([
        'cdn.example.com',
        'localhost:9000',
        'images.test',
      ]);
    });

    it('refuses an entry that is not host[:port]', () => {
      const error = configError({ ...emulated, SOURCE_ALLOWED_HOSTS: 'cdn.example.com,a/b' });
      expect(error.problems).toHaveLength(1);
      expect(error.problems[0]).toMatch(/^SOURCE_ALLOWED_HOSTS: /);
    });
  });

  describe('SOURCE_GS_PATHS', () => {
    it('defaults to the owner’s raw-uploads folder, where storage.rules let them read', () => {
      const config = loadConfig({ env: emulated, configDir: emptyDir });
      expect(config.source.gsPaths).toEqual(['raw-uploads/{userId}/**']);
      expect(config.source.allowSharedGsPaths).toBe(false);
    });

    it('is parsed as a trimmed list of patterns', () => {
      const config = loadConfig({
        env: { ...emulated, SOURCE_GS_PATHS: ' raw-uploads/{userId}/** , avatars/{userId}/*,' },
        configDir: emptyDir,
      });
      expect(config.source.gsPaths).toEqual(['raw-uploads/{userId}/**', 'avatars/{userId}/*']);
    });

    it('takes an empty value as the default', () => {
      const config = loadConfig({
        env: { ...emulated, SOURCE_GS_PATHS: ' , ' },
        configDir: emptyDir,
      });
      expect(config.source.gsPaths).toEqual(['raw-uploads/{userId}/**']);
    });

    it.each([
      'avatar-{userId}.*',
      'raw-uploads/{userId}x/**',
      'raw-uploads/{userId}/**,a{userId}/*',
    ])('refuses {userId} sharing a segment with other characters, and says why: %j', (value) => {
      const error = configError({ ...emulated, SOURCE_GS_PATHS: value });
      expect(error.problems).toHaveLength(1);
      expect(error.problems[0]).toMatch(/^SOURCE_GS_PATHS: /);
      expect(error.problems[0]).toContain('in a segment with other characters');
      expect(error.problems[0]).toContain('user bob could read avatar-bob.smith.png');
    });

    it.each(['**', 'public/**', 'raw-uploads/{userId}/**,raw-uploads/*/shared/*.png'])(
      'refuses a pattern without {userId} unless SOURCE_GS_ALLOW_SHARED_PATHS opts in: %j',
      (value) => {
        const error = configError({ ...emulated, SOURCE_GS_PATHS: value });
        expect(error.problems).toHaveLength(1);
        expect(error.problems[0]).toMatch(/^SOURCE_GS_PATHS: .* names no owner/);
        expect(error.problems[0]).toContain('SOURCE_GS_ALLOW_SHARED_PATHS=true');
        expect(
          configError({
            ...emulated,
            SOURCE_GS_PATHS: value,
            SOURCE_GS_ALLOW_SHARED_PATHS: 'false',
          }).problems,
        ).toHaveLength(1);

        const config = loadConfig({
          env: { ...emulated, SOURCE_GS_PATHS: value, SOURCE_GS_ALLOW_SHARED_PATHS: 'true' },
          configDir: emptyDir,
        });
        expect(config.source.gsPaths).toEqual(value.split(','));
        expect(config.source.allowSharedGsPaths).toBe(true);
      },
    );

    it('names only the patterns without {userId}', () => {
      const error = configError({
        ...emulated,
        SOURCE_GS_PATHS: 'raw-uploads/{userId}/**,public/**',
      });
      expect(error.problems[0]).toContain('"public/**"');
      expect(error.problems[0]).not.toContain('"raw-uploads/{userId}/**"');
    });

    it.each(['/raw-uploads/{userId}/**', 'raw-uploads/{uid}/**', 'a**/b', 'a/../{userId}/**'])(
      'refuses an unusable pattern: %j',
      (value) => {
        const error = configError({ ...emulated, SOURCE_GS_PATHS: value });
        expect(error.problems).toHaveLength(1);
        expect(error.problems[0]).toMatch(/^SOURCE_GS_PATHS: /);
      },
    );
  });
});
