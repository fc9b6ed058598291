import { describe, expect, it } from 'vitest';
import {
  CHECKPOINT_LIFECYCLE,
  checkpointExpiryDays,
  createWorkCache,
  type CacheBucket,
} from '../../src/adapters/storage/work-cache.js';

const rule = (type: string, condition: Record<string, unknown>) => ({
  action: { type },
  condition,
});

describe('checkpointExpiryDays (doctor: leftover checkpoints expire)', () => {
  it('finds the documented rule', () => {
    expect(checkpointExpiryDays({ lifecycle: CHECKPOINT_LIFECYCLE })).toBe(1);
  });

  it('accepts a broader prefix or none, and takes the shortest age', () => {
    const lifecycle = {
      rule: [rule('Delete', { age: 7, matchesPrefix: ['showcase-'] }), rule('Delete', { age: 3 })],
    };
    expect(checkpointExpiryDays({ lifecycle })).toBe(3);
  });

  it('ignores rules that do not delete checkpoints', () => {
    const lifecycle = {
      rule: [
        rule('Delete', { age: 1, matchesPrefix: ['showcase-cache/'] }),
        rule('SetStorageClass', { age: 1, matchesPrefix: ['showcase-work/'] }),
        rule('Delete', { createdBefore: '2020-01-01', matchesPrefix: ['showcase-work/'] }),
      ],
    };
    expect(checkpointExpiryDays({ lifecycle })).toBeUndefined();
    expect(checkpointExpiryDays({})).toBeUndefined();
    expect(checkpointExpiryDays(undefined)).toBeUndefined();
  });
});

describe('clearing a completed job’s checkpoints', () => {
  /** A bucket that records deletes and metadata reads; `metadata` may be changed or throw. */
  function fakeBucket(metadata: () => unknown) {
    const deleted: string[] = [];
    let metadataReads = 0;
    const bucket: CacheBucket = {
      getMetadata: () => {
        metadataReads += 1;
        return Promise.resolve([metadata()]);
      },
      file: (path) => ({
        save: () => Promise.resolve(),
        download: () => Promise.resolve([Buffer.alloc(0)]),
        delete: () => {
          deleted.push(path);
          return Promise.resolve();
        },
      }),
    };
    return { bucket, deleted, reads: () => metadataReads };
  }

  it('leaves them to the lifecycle rule when the bucket has one, reading it once an hour', async () => {
    let now = 0;
    const fake = fakeBucket(() => ({ lifecycle: CHECKPOINT_LIFECYCLE }));
    const cache = createWorkCache(fake.bucket, { now: () => now });
    // Jobs finishing together share one read.
    await Promise.all([cache.clearCheckpoints('c1', 'k'), cache.clearCheckpoints('c2', 'k')]);
    expect(fake.deleted).toEqual([]);
    expect(fake.reads()).toBe(1);
    now += 60 * 60 * 1000;
    await cache.clearCheckpoints('c3', 'k');
    expect(fake.reads()).toBe(2);
  });

  it('deletes them by name without the rule, or when the bucket cannot be read', async () => {
    const none = fakeBucket(() => ({}));
    await createWorkCache(none.bucket).clearCheckpoints('c1', 'k');
    expect(none.deleted).toEqual(['showcase-work/c1/k/cutout', 'showcase-work/c1/k/upscaled']);
    const refused = fakeBucket(() => {
      throw new Error('403 storage.buckets.get denied');
    });
    await createWorkCache(refused.bucket).clearCheckpoints('c2', 'k');
    expect(refused.deleted).toHaveLength(2);
  });
});
