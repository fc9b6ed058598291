import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { tuneHeap } from '../../src/compose.js';

describe('heap growing factor', () => {
  it('sets the V8 flag to the configured percent; 0 leaves V8 alone', () => {
    const flags: string[] = [];
    tuneHeap(50, (f) => flags.push(f));
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
