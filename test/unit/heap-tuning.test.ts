import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { tuneHeap } from '../../src/compose.js';
import { loadConfig } from '../../src/config/load.js';

describe('heap growing factor', () => {
  it('defaults to 50 % and sets the V8 flag; 0 leaves V8 alone', () => {
    const config = loadConfig({
      env: {
        NODE_ENV: 'test',
        FIRESTORE_EMULATOR_HOST: '127.0.0.1:8080',
        FIREBASE_STORAGE_EMULATOR_HOST: '127.0.0.1:9199',
        GOOGLE_CLOUD_PROJECT: 'demo-test',
        STORAGE_BUCKET: 'demo-test.appspot.com',
        CLIPDROP_API_KEY: 'k',
      },
      configDir: 'config',
    });
    expect(config.worker.heapGrowingPercent).toBe(50);
    const flags: string[] = [];
    tuneHeap(config.worker.heapGrowingPercent, (f) => flags.push(f));
    tuneHeap(0, (f) => flags.push(f));
    expect(flags).toEqual(['--heap-growing-percent=50']);
  });

  it('is a flag this Node’s V8 knows (setFlagsFromString ignores unknown ones silently)', () => {
    // On the command line an unknown V8 flag is an error, so this fails if a Node line drops it.
    const known = spawnSync(process.execPath, ['--heap-growing-percent=50', '-e', '0']);
    expect(known.status, known.stderr.toString()).toBe(0);
    const unknown = spawnSync(process.execPath, ['--heap-growing-prcent=50', '-e', '0']);
    expect(unknown.status).not.toBe(0);
  });
});
