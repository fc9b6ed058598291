import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { JobError, classify, type ErrorCode } from '../../jobs/errors.js';
import type { ResultStore } from '../../jobs/ports.js';
import { googleRequest } from '../round-trip-scope.js';

/** The slice of @google-cloud/storage's Bucket the worker uses (firebase-admin's bucket). */
export interface BucketLike {
  name: string;
  file(path: string): {
    save(
      data: Buffer,
      options: {
        resumable: boolean;
        validation: 'md5';
        contentType: string;
        metadata: { contentType: string; cacheControl: string; metadata: Record<string, string> };
      },
    ): Promise<void>;
    createReadStream(options: { start: number; end: number }): Readable;
    /** Per-file request interceptors (a new File per `file()` call: they touch no other). */
    interceptors: { request(opts: object): object }[];
    metadata: { size?: string | number; contentType?: string };
  };
}

export interface ResultStoreOptions {
  /** host:port of a storage emulator; its download URLs are http://host/v0/... */
  emulatorHost: string;
}

/**
 * Stores the final PNG with a fresh Firebase download token, so the URL works under uniform
 * bucket-level access (no ACLs), and verifies what the upload answered before trusting it.
 */
export function createResultStore(bucket: BucketLike, opts: ResultStoreOptions): ResultStore {
  const origin = opts.emulatorHost
    ? `http://${opts.emulatorHost}`
    : 'https://firebasestorage.googleapis.com';
  return {
    async savePng(path, png) {
      const token = randomUUID();
      const file = bucket.file(path);
      try {
        await googleRequest(() =>
          file.save(png, {
            resumable: false,
            // MD5 is hashed natively; the SDK's default CRC32C is hashed in JavaScript, on the
            // worker's one thread (about a tenth of a small upload's CPU). Either way the SDK
            // checks the stored object's hash against the bytes sent.
            validation: 'md5',
            contentType: 'image/png',
            metadata: {
              contentType: 'image/png',
              cacheControl: 'public, max-age=3600',
              metadata: { firebaseStorageDownloadTokens: token },
            },
          }),
        );
      } catch (err) {
        throw storageError(err, 'STORAGE_UNAVAILABLE', 'STORAGE_FAILED');
      }
      const stored = Number(file.metadata.size);
      if (stored !== png.length || file.metadata.contentType !== 'image/png') {
        throw new JobError('STORAGE_UNAVAILABLE', {
          detail: `upload answered size ${String(file.metadata.size)}, type ${String(file.metadata.contentType)}`,
        });
      }
      return `${origin}/v0/b/${bucket.name}/o/${encodeURIComponent(path)}?alt=media&token=${token}`;
    },
  };
}

/**
 * Reads a `gs://` source of the configured bucket in one request: the first `maxBytes + 1`
 * bytes (a range), so a larger object is refused having cost at most that much, without a
 * metadata request before the download. An abort (the job's) destroys the read stream, which
 * closes the response's connection: the rest of the object is never sent.
 */
export function createBucketReader(bucket: BucketLike, maxBytes: number) {
  return async function read(path: string, signal: AbortSignal): Promise<Buffer> {
    signal.throwIfAborted();
    const file = bucket.file(path);
    // A read stream that ends in an error (an abort is one) makes the SDK destroy the agent it
    // came through, and every request shares one keep-alive agent (`forever`): an aborted read
    // would cut every other job's uploads and reads. Off the shared agent, it cuts only its own.
    file.interceptors.push({ request: (opts) => ({ ...opts, forever: false }) });
    try {
      const data = await googleRequest(() =>
        readAll(file.createReadStream({ start: 0, end: maxBytes }), signal),
      );
      if (data.length > maxBytes) {
        throw new JobError('SOURCE_TOO_LARGE', { detail: `more than ${maxBytes} bytes` });
      }
      return data;
    } catch (err) {
      // Aborted: the job has moved on, and what it meets is its own abort, not a storage error.
      if (signal.aborted) throw err;
      // A range of an empty object is "not satisfiable": the object is there, with no bytes.
      if (statusOf(err) === 416) return Buffer.alloc(0);
      throw storageError(err, 'SOURCE_UNAVAILABLE', 'SOURCE_NOT_FOUND');
    }
  };
}

/**
 * A read stream's bytes, or its abort: `file.download()` takes no signal (it is
 * createReadStream read to the end), so the stream itself is destroyed on abort. An abort
 * rejects at once; the stream goes as soon as it safely can: the SDK pipes the response into
 * it when the response's headers come, and a pipe into a destroyed stream throws there, out of
 * reach (an uncaught exception). So before the headers it is destroyed just after them.
 */
function readAll(stream: Readable, signal: AbortSignal): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let answered = false;
    const abort = () => {
      reject(signal.reason instanceof Error ? signal.reason : new Error('source read aborted'));
      if (answered) stream.destroy();
      else stream.once('response', () => process.nextTick(() => stream.destroy()));
    };
    // Emitted before the SDK's own handler, which sets up the pipe in the same tick.
    stream.once('response', () => {
      answered = true;
    });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.once('end', () => {
      signal.removeEventListener('abort', abort);
      resolve(Buffer.concat(chunks));
    });
    // Kept after an abort: a later error has nowhere else to go.
    stream.on('error', (err) => {
      signal.removeEventListener('abort', abort);
      reject(err);
    });
    signal.addEventListener('abort', abort, { once: true });
  });
}

function statusOf(err: unknown): unknown {
  const { code, status } = err as { code?: unknown; status?: unknown };
  return typeof code === 'number' ? code : status;
}

/** Cloud Storage errors carry the HTTP status as a numeric `code` (ApiError) or `status` (gaxios). */
function storageError(err: unknown, transient: ErrorCode, permanent: ErrorCode): JobError {
  if (err instanceof JobError) return err;
  const status = statusOf(err);
  if (typeof status === 'number' && status >= 400 && status < 600) {
    const retryable = status === 408 || status === 429 || status >= 500;
    return new JobError(retryable ? transient : permanent, {
      detail: `storage answered ${status}`,
      cause: err,
    });
  }
  return classify(err);
}
