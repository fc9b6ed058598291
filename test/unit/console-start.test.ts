import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { secretsOf } from '../../src/config/service-account.js';
import { bindingOf, ConsoleTokenMissingError, startConsole } from '../../src/console/main.js';

const BASE = {
  GOOGLE_CLOUD_PROJECT: 'demo-console',
  STORAGE_BUCKET: 'demo-console.appspot.com',
  FIRESTORE_EMULATOR_HOST: '127.0.0.1:1',
  FIREBASE_STORAGE_EMULATOR_HOST: '127.0.0.1:2',
};
const configOf = (env: Record<string, string>) =>
  loadConfig({ env: { ...BASE, ...env }, configDir: 'config', role: 'console' });

describe('starting the console', () => {
  it('refuses to start without CONSOLE_TOKEN, before opening anything', async () => {
    await expect(startConsole(configOf({}), { port: 0 })).rejects.toBeInstanceOf(
      ConsoleTokenMissingError,
    );
  });

  it('binds every interface only for the platform: PORT with NODE_ENV=production', () => {
    const token = { CONSOLE_TOKEN: 'console-token-0123456789' };
    expect(bindingOf(configOf({ ...token, NODE_ENV: 'production', PORT: '5000' }), 8090)).toEqual({
      host: '0.0.0.0',
      port: 5000,
    });
    expect(bindingOf(configOf({ ...token, NODE_ENV: 'production' }), 8090)).toEqual({
      host: '127.0.0.1',
      port: 8090,
    });
    expect(bindingOf(configOf({ ...token, NODE_ENV: 'development', PORT: '5000' }), 8090)).toEqual({
      host: '127.0.0.1',
      port: 5000,
    });
  });

  it('needs no ClipDrop key, unlike the worker; its token is a secret the logs never show', () => {
    const config = configOf({ CONSOLE_TOKEN: 'console-token-0123456789' });
    expect(config.clipdrop.apiKey).toBe('');
    expect(() => loadConfig({ env: BASE, configDir: 'config' })).toThrow(/CLIPDROP_API_KEY/);
    expect(secretsOf(config)).toContain('console-token-0123456789');
  });
});
