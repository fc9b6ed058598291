import { describe, expect, it } from 'vitest';
import { locateSource } from '../../src/adapters/http/url-policy.js';
import { createWorkCache, type CacheBucket } from '../../src/adapters/storage/work-cache.js';
import { JobError } from '../../src/jobs/errors.js';

/** A bucket of objects by name that records what the cache reads and writes. */
function fakeBucket() {
  const objects = new Map<string, Buffer>();
  const touched: string[] = [];
  const bucket: CacheBucket = {
    getMetadata: () => Promise.resolve([{}]),
    file: (path) => ({
      save: (data) => {
        touched.push(`save ${path}`);
        objects.set(path, data);
        return Promise.resolve();
      },
      download: () => {
        touched.push(`read ${path}`);
        const data = objects.get(path);
        return data
          ? Promise.resolve([data])
          : Promise.reject(Object.assign(new Error('No such object'), { code: 404 }));
      },
      delete: () => Promise.resolve(),
    }),
  };
  return { bucket, touched };
}

const signal = new AbortController().signal;
const PNG = Buffer.from('png');

describe('RESULT_CACHE_SCOPE', () => {
  it('owner (the default): a result is kept under its owner, and found by that owner only', async () => {
    const { bucket, touched } = fakeBucket();
    const cache = createWorkCache(bucket);
    await cache.saveResult('k', 'alice', PNG, signal);
    expect(await cache.findResult('k', 'alice', signal)).toEqual(PNG);
    expect(await cache.findResult('k', 'bob', signal)).toBeUndefined();
    expect(touched).toEqual([
      'save showcase-cache/alice/k.png',
      'read showcase-cache/alice/k.png',
      'read showcase-cache/bob/k.png',
    ]);
  });

  it('global: one result for the same bytes, whoever asks', async () => {
    const { bucket, touched } = fakeBucket();
    const cache = createWorkCache(bucket, { resultScope: 'global' });
    await cache.saveResult('k', 'alice', PNG, signal);
    expect(await cache.findResult('k', 'bob', signal)).toEqual(PNG);
    expect(touched).toEqual(['save showcase-cache/k.png', 'read showcase-cache/k.png']);
  });

  it('an owner’s cached result is never a source, even under a pattern its id as a folder matches', () => {
    const policy = {
      bucket: 'b',
      allowedHosts: [],
      storageEmulatorHost: '',
      gsPaths: ['**/{userId}/**'],
    };
    let refused: unknown;
    try {
      locateSource('gs://b/showcase-cache/alice/k.png', policy, 'alice');
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(JobError);
    expect((refused as JobError).code).toBe('SOURCE_URL_FORBIDDEN');
  });
});
