import type { Checkpoint, WorkCache } from '../../jobs/ports.js';
import { JobError, classify, describe } from '../../jobs/errors.js';
import type { Log } from '../../jobs/ports.js';
import { googleRequest } from '../round-trip-scope.js';

/** The slice of a Storage bucket the work cache needs (firebase-admin's bucket fits). */
export interface CacheBucket {
  getMetadata(): Promise<[unknown, ...unknown[]]>;
  file(path: string): {
    save(
      data: Buffer,
      options: {
        resumable: boolean;
        validation: 'md5';
        contentType: string;
        metadata: { contentType: string };
      },
    ): Promise<void>;
    download(): Promise<[Buffer, ...unknown[]]>;
    delete(options: { ignoreNotFound: boolean }): Promise<unknown>;
  };
}

const RESULTS = 'showcase-cache';

/**
 * Whose results a job may reuse (RESULT_CACHE_SCOPE). `owner`: results are kept per owner,
 * `showcase-cache/{userId}/{key}.png`, so a user learns nothing of anyone else's pictures (and
 * the same picture from two users is paid for twice). `global`: `showcase-cache/{key}.png`,
 * shared by all (docs/threat-model.md says what that reveals).
 */
export type ResultCacheScope = 'owner' | 'global';
/** Checkpoints; the bucket's lifecycle rule on this prefix removes any a crash left behind. */
export const WORK_PREFIX = 'showcase-work/';
const CHECKPOINTS: readonly Checkpoint[] = ['cutout', 'upscaled'];

/** The rule docs/performance.md asks for, as `gcloud storage buckets update --lifecycle-file` takes it. */
export const CHECKPOINT_LIFECYCLE = {
  rule: [{ action: { type: 'Delete' }, condition: { age: 1, matchesPrefix: [WORK_PREFIX] } }],
};

/**
 * The age (days) after which the bucket's lifecycle deletes leftover checkpoints, or
 * undefined when no Delete rule covers `showcase-work/` (from the bucket's metadata).
 */
export function checkpointExpiryDays(metadata: unknown): number | undefined {
  const rules = (metadata as { lifecycle?: { rule?: unknown } } | undefined)?.lifecycle?.rule;
  if (!Array.isArray(rules)) return undefined;
  const ages = rules.flatMap((rule: unknown) => {
    const { action, condition } = rule as {
      action?: { type?: unknown };
      condition?: { age?: unknown; matchesPrefix?: unknown };
    };
    if (action?.type !== 'Delete' || typeof condition?.age !== 'number') return [];
    const prefixes = condition.matchesPrefix;
    // No prefix condition: the rule covers every object, checkpoints included.
    const covers =
      prefixes === undefined ||
      (Array.isArray(prefixes) &&
        prefixes.some((p) => typeof p === 'string' && WORK_PREFIX.startsWith(p)));
    return covers ? [condition.age] : [];
  });
  return ages.length > 0 ? Math.min(...ages) : undefined;
}

/** How long the bucket's lifecycle rule, once read, is trusted before it is read again. */
const LIFECYCLE_RECHECK_MS = 60 * 60 * 1000;

/**
 * Keeps paid work in the bucket, out of the app's folders: `showcase-work/{characterId}/{key}/`
 * holds a running job's checkpoints, `showcase-cache/` finished results by content (and by
 * owner, `ResultCacheScope`), so an unchanged picture is never paid for twice.
 *
 * Checkpoints of a completed job are left to the bucket's lifecycle rule when it has one on
 * `showcase-work/` (docs/performance.md; read once an hour, one request): two DELETEs a job
 * fewer. Without the rule they are deleted by name (no listing) when the job completes.
 */
export function createWorkCache(
  bucket: CacheBucket,
  opts: {
    now?: () => number;
    log?: Pick<Log, 'info' | 'warn'>;
    /** Default `owner`: a cache shared by all users must be asked for. */
    resultScope?: ResultCacheScope;
  } = {},
): WorkCache {
  const now = opts.now ?? Date.now;
  // Under `showcase-cache/` either way: never a source (gs-paths.ts), never a client's read
  // (storage.rules), and out of the checkpoints' lifecycle rule (`showcase-work/`).
  const resultPath =
    opts.resultScope === 'global'
      ? (key: string) => `${RESULTS}/${key}.png`
      : (key: string, ownerId: string) => `${RESULTS}/${ownerId}/${key}.png`;
  /** The last read of the bucket's lifecycle, shared by the jobs that ask while it runs. */
  let lifecycle: { expires: Promise<boolean>; readAt: number } | undefined;
  let expiredBefore: boolean | undefined;
  const readLifecycle = async (): Promise<boolean> => {
    let expires = false;
    try {
      const [metadata] = await bucket.getMetadata();
      expires = checkpointExpiryDays(metadata) !== undefined;
    } catch (err) {
      opts.log?.warn('cache.lifecycle_unreadable', { detail: describe(err) });
    }
    if (expiredBefore !== expires) {
      opts.log?.info('cache.checkpoint_cleanup', { by: expires ? 'lifecycle rule' : 'delete' });
    }
    expiredBefore = expires;
    return expires;
  };
  /** Whether a lifecycle rule removes checkpoints; a failed read counts as no (delete them). */
  const lifecycleExpires = (): Promise<boolean> => {
    if (!lifecycle || now() - lifecycle.readAt >= LIFECYCLE_RECHECK_MS) {
      lifecycle = { expires: readLifecycle(), readAt: now() };
    }
    return lifecycle.expires;
  };
  const read = async (path: string): Promise<Buffer | undefined> => {
    try {
      const [data] = await googleRequest(() => bucket.file(path).download());
      return data;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw storageError(err);
    }
  };
  const write = async (path: string, data: Buffer, contentType: string): Promise<void> => {
    try {
      await googleRequest(() =>
        // MD5 (native) rather than the SDK's CRC32C in JavaScript: see bucket.ts.
        bucket.file(path).save(data, {
          resumable: false,
          validation: 'md5',
          contentType,
          metadata: { contentType },
        }),
      );
    } catch (err) {
      throw storageError(err);
    }
  };
  const checkpoint = (characterId: string, key: string, stage: Checkpoint) =>
    `${WORK_PREFIX}${characterId}/${key}/${stage}`;

  return {
    findResult: (key, ownerId) => read(resultPath(key, ownerId)),
    saveResult: (key, ownerId, png) => write(resultPath(key, ownerId), png, 'image/png'),
    findCheckpoint: (characterId, key, stage) => read(checkpoint(characterId, key, stage)),
    saveCheckpoint: (characterId, key, stage, data) =>
      write(checkpoint(characterId, key, stage), data, 'application/octet-stream'),
    async clearCheckpoints(characterId, key) {
      if (await lifecycleExpires()) return;
      try {
        await Promise.all(
          CHECKPOINTS.map((stage) =>
            googleRequest(() =>
              bucket.file(checkpoint(characterId, key, stage)).delete({ ignoreNotFound: true }),
            ),
          ),
        );
      } catch (err) {
        throw storageError(err);
      }
    },
  };
}

function statusOf(err: unknown): unknown {
  const { code, status } = err as { code?: unknown; status?: unknown };
  return typeof code === 'number' ? code : status;
}

function storageError(err: unknown): JobError {
  const status = statusOf(err);
  if (typeof status === 'number') {
    const transient = status === 408 || status === 429 || status >= 500;
    return new JobError(transient ? 'STORAGE_UNAVAILABLE' : 'STORAGE_FAILED', {
      detail: `storage answered ${status}`,
      cause: err,
    });
  }
  return classify(err);
}
