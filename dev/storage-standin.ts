/**
 * Cloud Storage stand-in for tests and the local demo.
 *
 * A small node:http server that speaks the part of the GCS JSON API (and the Firebase
 * `/v0/` download endpoint) that `@google-cloud/storage` 8.x really sends when it is
 * pointed at an emulator through `FIREBASE_STORAGE_EMULATOR_HOST=127.0.0.1:PORT`.
 *
 * How the client gets here (firebase-admin 14, @google-cloud/storage 8.4):
 *  - firebase-admin's `Storage` constructor copies `FIREBASE_STORAGE_EMULATOR_HOST` into
 *    `STORAGE_EMULATOR_HOST=http://HOST:PORT` **only if `STORAGE_EMULATOR_HOST` is unset**,
 *    and never clears it again.
 *  - @google-cloud/storage reads `STORAGE_EMULATOR_HOST` when a `Storage` is constructed:
 *    `apiEndpoint = http://HOST:PORT`, and the JSON API base URL becomes `http://HOST:PORT`
 *    itself (no `/storage/v1` prefix!). Uploads go to `{apiEndpoint}/upload/storage/v1/b/...`.
 *    No auth header is sent to a non-Google endpoint.
 *  - `getDownloadURL(file)` GETs `{STORAGE_EMULATOR_HOST}/v0/b/{bucket}/o/{encoded name}`
 *    for the Firebase metadata (`downloadTokens`) and returns
 *    `{STORAGE_EMULATOR_HOST}/v0/b/{bucket}/o/{encoded name}?alt=media&token={first token}`.
 *
 * Routes served (the JSON API ones with or without the `/storage/v1` prefix):
 *  - POST   /upload/storage/v1/b/{b}/o?uploadType=multipart|media|resumable&name=...
 *  - PUT    /upload/storage/v1/b/{b}/o?...&upload_id=ID   (resumable chunks / status query)
 *  - DELETE /upload/storage/v1/b/{b}/o?...&upload_id=ID   (cancel a session → 499)
 *  - GET    /b/{b}                                         (bucket resource, with its lifecycle)
 *  - PATCH  /b/{b}                                         (setMetadata: `lifecycle` only)
 *  - GET    /b/{b}/o                                       (list: prefix, delimiter, maxResults, pageToken)
 *  - GET    /b/{b}/o/{name}            (resource; `?alt=media` → bytes, Range supported)
 *  - GET    /download/storage/v1/b/{b}/o/{name}?alt=media  (bytes)
 *  - PATCH  /b/{b}/o/{name}                                (setMetadata)
 *  - DELETE /b/{b}/o/{name}
 *  - GET    /v0/b/{b}/o/{name}?alt=media&token=T           (Firebase download URL)
 *  - GET    /v0/b/{b}/o/{name}                             (Firebase metadata, `downloadTokens`)
 *  - anything else → 501 with the GCS JSON error shape.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StorageStandinOptions {
  /** Port to listen on (127.0.0.1); 0 or absent picks a free one. */
  port?: number;
  /** Buckets that exist; requests to others → 404. Absent: every bucket name exists. */
  buckets?: string[];
}

export interface StoredObject {
  bucket: string;
  name: string;
  data: Buffer;
  contentType: string;
  /** Custom metadata, e.g. firebaseStorageDownloadTokens. */
  metadata: Record<string, string>;
  generation: string;
  metageneration: string;
  /** base64 MD5 of `data`. */
  md5Hash: string;
  /** base64 big-endian CRC32C (Castagnoli) of `data`. */
  crc32c: string;
  updated: string;
  timeCreated: string;
  cacheControl?: string;
  contentDisposition?: string;
  contentEncoding?: string;
  contentLanguage?: string;
}

/** How object bytes are served when paced (see `paceMedia`): a chunk, then a pause. */
export interface MediaPace {
  chunkBytes: number;
  gapMs: number;
  /** How long the answer (its headers) waits first; 0 or absent: none. */
  answerAfterMs?: number;
}

/** One answer of object bytes: how many were due and how many went out before it ended. */
export interface MediaAnswer {
  name: string;
  /** The bytes the answer was to carry (the range's length). */
  bytes: number;
  /** The bytes written to the socket before the answer ended or its client went away. */
  sent: number;
  /** False until the answer ends; then whether every byte went out (false: the client left). */
  complete: boolean | undefined;
}

export interface StorageFault {
  /** HTTP status to answer with; 0 destroys the connection without an answer. */
  status: number;
  /** Tested against `${method} ${path}` (path includes the query string); absent = any request. */
  match?: RegExp;
}

export interface StorageStandin {
  /** '127.0.0.1:PORT' — the value for FIREBASE_STORAGE_EMULATOR_HOST. */
  host: string;
  /** 'http://127.0.0.1:PORT' */
  url: string;
  /** Key `${bucket}/${name}`. */
  objects: Map<string, StoredObject>;
  /** Bucket lifecycle rules as the JSON API holds them (`{ rule: [...] }`), by bucket. */
  lifecycles: Map<string, unknown>;
  /** Seed an object (e.g. a source image). */
  putObject(bucket: string, name: string, data: Buffer, contentType?: string): StoredObject;
  /** Every request received, in order; `path` is the raw request target (path + query). */
  requests: { method: string; path: string }[];
  /**
   * Object bytes (JSON API media, not Firebase download URLs) served in paced chunks from
   * now on, so a test can abort a read mid-body; undefined: all at once again.
   */
  paceMedia(pace: MediaPace | undefined): void;
  /** Every answer of object bytes (JSON API media), in order. */
  media: MediaAnswer[];
  /** Each fault is used once, in order, for the next request it matches. */
  injectFaults(...faults: StorageFault[]): void;
  /** Drops faults that were injected but not used yet. */
  clearFaults(): void;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Hashes

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC32C (Castagnoli) of `data` as an unsigned 32-bit integer. */
export function crc32c(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) crc = (CRC32C_TABLE[(crc ^ byte) & 0xff] as number) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** CRC32C as GCS reports it: base64 of the 4 big-endian bytes. */
export function crc32cBase64(data: Uint8Array): string {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(crc32c(data), 0);
  return out.toString('base64');
}

function md5Base64(data: Uint8Array): string {
  return createHash('md5').update(data).digest('base64');
}

// ---------------------------------------------------------------------------------------------
// Errors

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly reason: string = reasonFor(status),
  ) {
    super(message);
  }
}

function reasonFor(status: number): string {
  switch (status) {
    case 400:
      return 'invalid';
    case 401:
      return 'required';
    case 403:
      return 'forbidden';
    case 404:
      return 'notFound';
    case 409:
      return 'conflict';
    case 412:
      return 'conditionNotMet';
    case 413:
      return 'uploadTooLarge';
    case 429:
      return 'rateLimitExceeded';
    case 499:
      return 'clientClosedRequest';
    case 501:
      return 'notImplemented';
    default:
      return status >= 500 ? 'backendError' : 'invalid';
  }
}

function errorBody(status: number, message: string, reason = reasonFor(status)) {
  return { error: { code: status, message, errors: [{ message, domain: 'global', reason }] } };
}

// ---------------------------------------------------------------------------------------------
// Small helpers

const MAX_BODY_BYTES = 64 * 1024 * 1024;

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=UTF-8',
    'Content-Length': String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<Buffer | 'too-large'> {
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) tooLarge = true;
    if (!tooLarge) chunks.push(chunk);
  }
  return tooLarge ? 'too-large' : Buffer.concat(chunks);
}

function decode(segment: string, what: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, `Invalid ${what} encoding: ${segment.slice(0, 200)}`);
  }
}

function validateObjectName(name: string): void {
  if (
    name.length === 0 ||
    Buffer.byteLength(name) > 1024 ||
    /[\r\n]/.test(name) ||
    name === '.' ||
    name === '..'
  ) {
    throw new HttpError(400, 'The specified object name is not valid.');
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

function parseJsonObject(body: Buffer, what: string): Record<string, unknown> {
  if (body.length === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw new HttpError(400, `Parse Error: ${what} is not valid JSON`, 'parseError');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new HttpError(400, `${what} must be a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

interface MultipartPart {
  headers: Record<string, string>;
  body: Buffer;
}

/** Parses a multipart/related body; returns null when it is malformed. */
function parseMultipart(body: Buffer, boundary: string): MultipartPart[] | null {
  const delim = Buffer.from(`--${boundary}`);
  const crlfDelim = Buffer.from(`\r\n--${boundary}`);
  const parts: MultipartPart[] = [];
  let pos = body.indexOf(delim);
  if (pos < 0) return null;
  pos += delim.length;
  for (;;) {
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) return parts; // closing delimiter
    const lineEnd = body.indexOf('\r\n', pos);
    if (lineEnd < 0) return null;
    const headerEnd = body.indexOf('\r\n\r\n', lineEnd);
    if (headerEnd < 0) return null;
    const headers: Record<string, string> = {};
    const headerText = headerEnd > lineEnd ? body.subarray(lineEnd + 2, headerEnd).toString() : '';
    for (const line of headerText.split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0)
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const contentStart = headerEnd + 4;
    const next = body.indexOf(crlfDelim, contentStart);
    if (next < 0) return null;
    parts.push({ headers, body: body.subarray(contentStart, next) });
    pos = next + crlfDelim.length;
  }
}

function boundaryOf(contentType: string | undefined): string | undefined {
  if (!contentType || !/^multipart\/related\b/i.test(contentType)) return undefined;
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return m ? (m[1] ?? m[2]) : undefined;
}

// ---------------------------------------------------------------------------------------------
// Object metadata handling

const WRITABLE_STRING_FIELDS = [
  'contentType',
  'cacheControl',
  'contentDisposition',
  'contentEncoding',
  'contentLanguage',
] as const;
type WritableStringField = (typeof WRITABLE_STRING_FIELDS)[number];

interface WritableMetadata {
  fields: Partial<Record<WritableStringField, string | null>>;
  /** undefined: not given; null: clear all; record: merge (null values delete a key). */
  metadata?: Record<string, string | null> | null;
}

function readWritableMetadata(body: Record<string, unknown>): WritableMetadata {
  const out: WritableMetadata = { fields: {} };
  for (const field of WRITABLE_STRING_FIELDS) {
    const v = body[field];
    if (v === undefined) continue;
    if (v !== null && typeof v !== 'string') {
      throw new HttpError(400, `Invalid value for ${field}: must be a string`);
    }
    out.fields[field] = v;
  }
  const custom = body.metadata;
  if (custom === null) out.metadata = null;
  else if (custom !== undefined) {
    if (typeof custom !== 'object' || Array.isArray(custom)) {
      throw new HttpError(400, 'Invalid value for metadata: must be an object');
    }
    const merged: Record<string, string | null> = {};
    for (const [k, v] of Object.entries(custom as Record<string, unknown>)) {
      if (v === null) merged[k] = null;
      else if (typeof v === 'string') merged[k] = v;
      else if (typeof v === 'number' || typeof v === 'boolean') merged[k] = String(v);
      else throw new HttpError(400, `Invalid value for metadata.${k}: must be a string`);
    }
    out.metadata = merged;
  }
  return out;
}

function applyCustomMetadata(
  target: Record<string, string>,
  patch: Record<string, string | null> | null | undefined,
): Record<string, string> {
  if (patch === undefined) return target;
  if (patch === null) return {};
  const out = { ...target };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = v;
  }
  return out;
}

function checkPreconditions(existing: StoredObject | undefined, query: URLSearchParams): void {
  const gen = existing?.generation ?? '0';
  const ifGen = query.get('ifGenerationMatch');
  const ifGenNot = query.get('ifGenerationNotMatch');
  const ifMeta = query.get('ifMetagenerationMatch');
  const ifMetaNot = query.get('ifMetagenerationNotMatch');
  const failed = () =>
    new HttpError(412, 'At least one of the pre-conditions you specified did not hold.');
  if (ifGen !== null && ifGen !== gen) throw failed();
  if (ifGenNot !== null && ifGenNot === gen) throw failed();
  if (ifMeta !== null && (!existing || ifMeta !== existing.metageneration)) throw failed();
  if (ifMetaNot !== null && existing && ifMetaNot === existing.metageneration) throw failed();
}

// ---------------------------------------------------------------------------------------------
// The server

interface UploadSession {
  id: string;
  bucket: string;
  name: string;
  meta: WritableMetadata;
  query: URLSearchParams;
  chunks: Buffer[];
  received: number;
  total?: number;
  result?: StoredObject;
  failed?: boolean;
}

export async function startStorageStandin(
  opts: StorageStandinOptions = {},
): Promise<StorageStandin> {
  const knownBuckets = opts.buckets ? new Set(opts.buckets) : undefined;
  const objects = new Map<string, StoredObject>();
  const sessions = new Map<string, UploadSession>();
  const requests: { method: string; path: string }[] = [];
  const faults: StorageFault[] = [];
  const media: MediaAnswer[] = [];
  let pace: MediaPace | undefined;
  const bucketCreated = new Date().toISOString();
  const lifecycles = new Map<string, unknown>();
  let lastGeneration = 0;
  let baseUrl = '';

  const nextGeneration = (): string => {
    lastGeneration = Math.max(lastGeneration + 1, Date.now() * 1000);
    return String(lastGeneration);
  };

  const bucketExists = (bucket: string) => (knownBuckets ? knownBuckets.has(bucket) : true);

  const requireBucket = (bucket: string) => {
    if (!bucketExists(bucket)) throw new HttpError(404, 'The specified bucket does not exist.');
  };

  const key = (bucket: string, name: string) => `${bucket}/${name}`;

  const storeObject = (
    bucket: string,
    name: string,
    data: Buffer,
    meta: WritableMetadata,
    fallbackContentType: string | undefined,
  ): StoredObject => {
    const now = new Date().toISOString();
    const obj: StoredObject = {
      bucket,
      name,
      data,
      contentType: meta.fields.contentType ?? fallbackContentType ?? 'application/octet-stream',
      metadata: applyCustomMetadata({}, meta.metadata),
      generation: nextGeneration(),
      metageneration: '1',
      md5Hash: md5Base64(data),
      crc32c: crc32cBase64(data),
      updated: now,
      timeCreated: now,
    };
    for (const field of [
      'cacheControl',
      'contentDisposition',
      'contentEncoding',
      'contentLanguage',
    ] as const) {
      const v = meta.fields[field];
      if (typeof v === 'string') obj[field] = v;
    }
    objects.set(key(bucket, name), obj);
    return obj;
  };

  const objectResource = (o: StoredObject) => {
    const enc = encodeURIComponent(o.name);
    const resource: Record<string, unknown> = {
      kind: 'storage#object',
      id: `${o.bucket}/${o.name}/${o.generation}`,
      selfLink: `${baseUrl}/storage/v1/b/${o.bucket}/o/${enc}`,
      mediaLink: `${baseUrl}/download/storage/v1/b/${o.bucket}/o/${enc}?generation=${o.generation}&alt=media`,
      name: o.name,
      bucket: o.bucket,
      generation: o.generation,
      metageneration: o.metageneration,
      contentType: o.contentType,
      storageClass: 'STANDARD',
      size: String(o.data.length),
      md5Hash: o.md5Hash,
      crc32c: o.crc32c,
      etag: etagOf(o),
      timeCreated: o.timeCreated,
      updated: o.updated,
      timeStorageClassUpdated: o.timeCreated,
    };
    for (const field of [
      'cacheControl',
      'contentDisposition',
      'contentEncoding',
      'contentLanguage',
    ] as const) {
      if (o[field] !== undefined) resource[field] = o[field];
    }
    if (Object.keys(o.metadata).length > 0) resource.metadata = { ...o.metadata };
    return resource;
  };

  const etagOf = (o: StoredObject) =>
    Buffer.from(`${o.generation}/${o.metageneration}`).toString('base64');

  const downloadTokens = (o: StoredObject): string[] =>
    (o.metadata.firebaseStorageDownloadTokens ?? '')
      .split(',')
      .map((t) => t.trim())
      .filter((t) => t.length > 0);

  const sendMedia = (
    req: IncomingMessage,
    res: ServerResponse,
    o: StoredObject,
    firebase: boolean,
  ) => {
    const total = o.data.length;
    let start = 0;
    let end = total - 1;
    let status = 200;
    const range = header(req, 'range');
    if (range && !firebase) {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
      if (m && (m[1] || m[2])) {
        if (m[1]) {
          start = Number(m[1]);
          end = m[2] ? Math.min(Number(m[2]), total - 1) : total - 1;
        } else {
          start = Math.max(0, total - Number(m[2]));
        }
        if (start >= total || start > end) {
          sendJson(
            res,
            416,
            errorBody(
              416,
              'The requested range cannot be satisfied.',
              'requestedRangeNotSatisfiable',
            ),
            {
              'Content-Range': `bytes */${total}`,
            },
          );
          return;
        }
        status = 206;
      }
    }
    const body = o.data.subarray(start, end + 1);
    const headers: Record<string, string> = {
      'Content-Type': o.contentType,
      'Content-Length': String(body.length),
      ETag: `"${etagOf(o)}"`,
      'Last-Modified': new Date(o.updated).toUTCString(),
      'x-goog-generation': o.generation,
      'x-goog-metageneration': o.metageneration,
      'x-goog-hash': `crc32c=${o.crc32c},md5=${o.md5Hash}`,
      'x-goog-stored-content-encoding': o.contentEncoding ?? 'identity',
      'x-goog-stored-content-length': String(total),
      'Accept-Ranges': 'bytes',
    };
    if (status === 206) headers['Content-Range'] = `bytes ${start}-${end}/${total}`;
    if (o.cacheControl) headers['Cache-Control'] = o.cacheControl;
    else if (firebase) headers['Cache-Control'] = 'private, max-age=0';
    if (o.contentDisposition) headers['Content-Disposition'] = o.contentDisposition;
    else if (firebase) {
      const base = o.name.slice(o.name.lastIndexOf('/') + 1);
      headers['Content-Disposition'] = `inline; filename*=utf-8''${encodeURIComponent(base)}`;
    }
    if (o.contentEncoding) headers['Content-Encoding'] = o.contentEncoding;
    if (o.contentLanguage) headers['Content-Language'] = o.contentLanguage;
    if (firebase) headers['Access-Control-Allow-Origin'] = '*';
    if (firebase) {
      res.writeHead(status, headers);
      res.end(body);
      return;
    }
    const answer: MediaAnswer = { name: o.name, bytes: body.length, sent: 0, complete: undefined };
    media.push(answer);
    res.on('close', () => {
      answer.complete = res.writableFinished;
    });
    const paced = pace;
    if (!paced) {
      res.writeHead(status, headers);
      answer.sent = body.length;
      res.end(body);
      return;
    }
    // The headers (after a wait, if asked), then a chunk and a pause, until the body is out or
    // the client has gone away.
    const next = (offset: number): void => {
      if (res.destroyed) return;
      const chunk = body.subarray(offset, offset + paced.chunkBytes);
      answer.sent += chunk.length;
      if (offset + chunk.length >= body.length) {
        res.end(chunk);
        return;
      }
      res.write(chunk);
      setTimeout(() => next(offset + chunk.length), paced.gapMs);
    };
    setTimeout(() => {
      if (res.destroyed) return;
      res.writeHead(status, headers);
      next(0);
    }, paced.answerAfterMs ?? 0);
  };

  const getObject = (bucket: string, name: string, query: URLSearchParams): StoredObject => {
    requireBucket(bucket);
    const o = objects.get(key(bucket, name));
    const generation = query.get('generation');
    if (!o || (generation !== null && generation !== o.generation)) {
      throw new HttpError(404, `No such object: ${bucket}/${name}`);
    }
    return o;
  };

  // --- Firebase /v0/ endpoint --------------------------------------------------------------

  const handleFirebase = (
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    query: URLSearchParams,
  ) => {
    const m = /^\/v0\/b\/([^/]+)\/o\/([^/]+)$/.exec(path);
    if (!m || (req.method !== 'GET' && req.method !== 'HEAD')) {
      throw new HttpError(501, `Not implemented by the storage stand-in: ${req.method} ${path}`);
    }
    const bucket = decode(m[1] as string, 'bucket');
    const name = decode(m[2] as string, 'object name');
    const o = bucketExists(bucket) ? objects.get(key(bucket, name)) : undefined;
    if (!o) {
      sendJson(
        res,
        404,
        { error: { code: 404, message: 'Not Found.' } },
        { 'Access-Control-Allow-Origin': '*' },
      );
      return;
    }
    const token = query.get('token');
    const tokens = downloadTokens(o);
    if (token !== null && !tokens.includes(token)) {
      sendJson(
        res,
        403,
        { error: { code: 403, message: 'Permission denied.' } },
        { 'Access-Control-Allow-Origin': '*' },
      );
      return;
    }
    if (query.get('alt') === 'media') {
      if (token === null) {
        // A browser without a token is refused (as with default-deny security rules).
        sendJson(
          res,
          403,
          { error: { code: 403, message: 'Permission denied.' } },
          { 'Access-Control-Allow-Origin': '*' },
        );
        return;
      }
      sendMedia(req, res, o, true);
      return;
    }
    // Metadata: allowed with a valid token, or without one (firebase-admin sends no
    // credentials to an emulator, and getDownloadURL needs this to read `downloadTokens`).
    const custom = { ...o.metadata };
    delete custom.firebaseStorageDownloadTokens;
    const base = o.name.slice(o.name.lastIndexOf('/') + 1);
    const body: Record<string, unknown> = {
      name: o.name,
      bucket: o.bucket,
      generation: o.generation,
      metageneration: o.metageneration,
      contentType: o.contentType,
      timeCreated: o.timeCreated,
      updated: o.updated,
      storageClass: 'STANDARD',
      size: String(o.data.length),
      md5Hash: o.md5Hash,
      contentEncoding: o.contentEncoding ?? 'identity',
      contentDisposition:
        o.contentDisposition ?? `inline; filename*=utf-8''${encodeURIComponent(base)}`,
      crc32c: o.crc32c,
      etag: etagOf(o),
    };
    if (tokens.length > 0) body.downloadTokens = tokens.join(',');
    if (Object.keys(custom).length > 0) body.metadata = custom;
    sendJson(res, 200, body, { 'Access-Control-Allow-Origin': '*' });
  };

  // --- uploads -----------------------------------------------------------------------------

  const handleUpload = (
    req: IncomingMessage,
    res: ServerResponse,
    bucket: string,
    query: URLSearchParams,
    body: Buffer,
  ) => {
    const method = req.method ?? '';
    const uploadId = query.get('upload_id');
    if (uploadId !== null) {
      const session = sessions.get(uploadId);
      if (!session || session.bucket !== bucket) {
        throw new HttpError(404, 'No such upload session.');
      }
      if (method === 'DELETE') {
        sessions.delete(uploadId);
        sendJson(res, 499, errorBody(499, 'Upload cancelled.'));
        return;
      }
      if (method !== 'PUT' && method !== 'POST') {
        throw new HttpError(
          501,
          `Not implemented by the storage stand-in: ${method} on an upload session`,
        );
      }
      handleSessionPut(req, res, session, body);
      return;
    }
    if (method !== 'POST') {
      throw new HttpError(
        501,
        `Not implemented by the storage stand-in: ${method} upload without upload_id`,
      );
    }
    requireBucket(bucket);
    const uploadType = query.get('uploadType');
    if (uploadType === 'multipart') {
      const boundary = boundaryOf(header(req, 'content-type'));
      if (!boundary)
        throw new HttpError(
          400,
          'Multipart upload needs a multipart/related Content-Type with a boundary.',
        );
      const parts = parseMultipart(body, boundary);
      if (!parts || parts.length !== 2) {
        throw new HttpError(
          400,
          'Malformed multipart body: expected a metadata part and a media part.',
        );
      }
      const [metaPart, mediaPart] = parts as [MultipartPart, MultipartPart];
      const metaJson = parseJsonObject(metaPart.body, 'Metadata part');
      const name = objectNameFrom(query, metaJson);
      const meta = readWritableMetadata(metaJson);
      checkPreconditions(objects.get(key(bucket, name)), query);
      const o = storeObject(
        bucket,
        name,
        Buffer.from(mediaPart.body),
        meta,
        mediaPart.headers['content-type'],
      );
      sendJson(res, 200, objectResource(o));
      return;
    }
    if (uploadType === 'media') {
      const name = objectNameFrom(query, {});
      checkPreconditions(objects.get(key(bucket, name)), query);
      const o = storeObject(bucket, name, body, { fields: {} }, header(req, 'content-type'));
      sendJson(res, 200, objectResource(o));
      return;
    }
    if (uploadType === 'resumable') {
      const metaJson = parseJsonObject(body, 'Resumable upload metadata');
      const name = objectNameFrom(query, metaJson);
      const meta = readWritableMetadata(metaJson);
      const headerType = header(req, 'x-upload-content-type');
      if (meta.fields.contentType === undefined && headerType) meta.fields.contentType = headerType;
      const id = randomBytes(16).toString('hex');
      const sessionQuery = new URLSearchParams(query);
      sessions.set(id, { id, bucket, name, meta, query: sessionQuery, chunks: [], received: 0 });
      const location =
        `${baseUrl}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o` +
        `?uploadType=resumable&name=${encodeURIComponent(name)}&upload_id=${id}`;
      res.writeHead(200, {
        Location: location,
        'X-GUploader-UploadID': id,
        'Content-Length': '0',
      });
      res.end();
      return;
    }
    throw new HttpError(
      uploadType === null ? 400 : 501,
      uploadType === null
        ? 'Upload requests must include an uploadType URL parameter.'
        : `Not implemented by the storage stand-in: uploadType=${uploadType}`,
    );
  };

  const objectNameFrom = (query: URLSearchParams, metaJson: Record<string, unknown>): string => {
    const fromQuery = query.get('name');
    const fromBody = typeof metaJson.name === 'string' ? metaJson.name : undefined;
    const name = fromQuery ?? fromBody;
    if (name === undefined) throw new HttpError(400, 'Required: object name', 'required');
    validateObjectName(name);
    return name;
  };

  const handleSessionPut = (
    req: IncomingMessage,
    res: ServerResponse,
    s: UploadSession,
    body: Buffer,
  ) => {
    if (s.result) {
      sendJson(res, 200, objectResource(s.result));
      return;
    }
    if (s.failed)
      throw new HttpError(410, 'The upload session has failed; start a new one.', 'gone');
    const rangeHeader = header(req, 'content-range')?.trim();
    let start: number | undefined;
    let end: number | undefined;
    let total: number | undefined;
    if (rangeHeader === undefined) {
      start = 0;
      total = body.length;
    } else {
      const m = /^bytes (?:\*|(\d+)-(\d+|\*))\/(\*|\d+)$/.exec(rangeHeader);
      if (!m) throw new HttpError(400, `Invalid Content-Range: ${rangeHeader.slice(0, 100)}`);
      if (m[3] !== '*') total = Number(m[3]);
      if (m[1] !== undefined) {
        start = Number(m[1]);
        if (m[2] !== '*') end = Number(m[2]);
        else {
          // `bytes N-*/…` (what the client sends without a chunkSize): the body is the rest
          // of the object, so this request completes the upload.
          const implied = start + body.length;
          if (total !== undefined && total !== implied) {
            throw new HttpError(
              400,
              `Content-Range total ${total} does not match ${implied} bytes.`,
            );
          }
          total = implied;
        }
      }
    }
    if (start === undefined) {
      // Status query (`bytes */*` or `bytes */N`); a zero-byte body may finalize the upload.
      if (body.length > 0)
        throw new HttpError(400, 'Content-Range "bytes */..." must come with an empty body.');
    } else {
      if (end !== undefined && end - start + 1 !== body.length) {
        throw new HttpError(
          400,
          `Invalid request. There were ${body.length} byte(s) in the request body. There should have been ${end - start + 1} byte(s) (starting at offset ${start} and ending at offset ${end}) according to the Content-Range header.`,
        );
      }
      if (start > s.received) {
        throw new HttpError(
          400,
          `Invalid request. The Content-Range starts at ${start} but only ${s.received} byte(s) were persisted.`,
        );
      }
      const skip = s.received - start;
      if (skip < body.length) {
        const fresh = body.subarray(skip);
        s.chunks.push(Buffer.from(fresh));
        s.received += fresh.length;
      }
    }
    if (total !== undefined) {
      if (s.total !== undefined && s.total !== total) {
        throw new HttpError(400, `Total object size changed from ${s.total} to ${total}.`);
      }
      s.total = total;
    }
    if (s.total !== undefined && s.received > s.total) {
      s.failed = true;
      throw new HttpError(400, `Received ${s.received} bytes but the object size is ${s.total}.`);
    }
    if (s.total === undefined || s.received < s.total) {
      const headers: Record<string, string> = {
        'Content-Length': '0',
        'X-GUploader-UploadID': s.id,
      };
      if (s.received > 0) headers.Range = `bytes=0-${s.received - 1}`;
      res.writeHead(308, headers);
      res.end();
      return;
    }
    // Final: validate the client's X-Goog-Hash (sent on the last chunk), then store.
    const data = Buffer.concat(s.chunks);
    const googHash = header(req, 'x-goog-hash');
    if (googHash) {
      for (const pair of googHash.split(',')) {
        const eq = pair.indexOf('=');
        const kind = pair.slice(0, eq).trim().toLowerCase();
        const value = pair.slice(eq + 1).trim();
        const actual =
          kind === 'crc32c' ? crc32cBase64(data) : kind === 'md5' ? md5Base64(data) : undefined;
        if (actual !== undefined && actual !== value) {
          s.failed = true;
          throw new HttpError(
            400,
            `Provided ${kind.toUpperCase()} "${value}" doesn't match calculated ${kind.toUpperCase()} "${actual}".`,
          );
        }
      }
    }
    requireBucket(s.bucket);
    checkPreconditions(objects.get(key(s.bucket, s.name)), s.query);
    s.result = storeObject(s.bucket, s.name, data, s.meta, undefined);
    s.chunks = [];
    sendJson(res, 200, objectResource(s.result));
  };

  // --- JSON API ----------------------------------------------------------------------------

  const handleJsonApi = (
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    query: URLSearchParams,
    body: Buffer,
    downloadPrefix: boolean,
  ) => {
    const method = req.method ?? '';
    const notImplemented = () =>
      new HttpError(501, `Not implemented by the storage stand-in: ${method} ${path}`);

    const objectMatch = /^\/b\/([^/]+)\/o\/(.+)$/.exec(path);
    if (objectMatch) {
      const bucket = decode(objectMatch[1] as string, 'bucket');
      const name = decode(objectMatch[2] as string, 'object name');
      if (
        downloadPrefix &&
        (query.get('alt') !== 'media' || (method !== 'GET' && method !== 'HEAD'))
      ) {
        throw notImplemented();
      }
      switch (method) {
        case 'GET':
        case 'HEAD': {
          const o = getObject(bucket, name, query);
          checkPreconditions(o, query);
          if (query.get('alt') === 'media') sendMedia(req, res, o, false);
          else sendJson(res, 200, objectResource(o));
          return;
        }
        case 'PATCH': {
          const o = getObject(bucket, name, query);
          checkPreconditions(o, query);
          const patch = readWritableMetadata(parseJsonObject(body, 'Request body'));
          for (const [field, value] of Object.entries(patch.fields) as [
            WritableStringField,
            string | null,
          ][]) {
            if (field === 'contentType') o.contentType = value ?? 'application/octet-stream';
            else if (value === null) delete o[field];
            else o[field] = value;
          }
          o.metadata = applyCustomMetadata(o.metadata, patch.metadata);
          o.metageneration = String(Number(o.metageneration) + 1);
          o.updated = new Date().toISOString();
          sendJson(res, 200, objectResource(o));
          return;
        }
        case 'DELETE': {
          const o = getObject(bucket, name, query);
          checkPreconditions(o, query);
          objects.delete(key(bucket, name));
          res.writeHead(204, { 'Content-Length': '0' });
          res.end();
          return;
        }
        default:
          throw notImplemented();
      }
    }
    if (downloadPrefix) throw notImplemented();

    const listMatch = /^\/b\/([^/]+)\/o\/?$/.exec(path);
    if (listMatch && method === 'GET') {
      const bucket = decode(listMatch[1] as string, 'bucket');
      requireBucket(bucket);
      const prefix = query.get('prefix') ?? '';
      const delimiter = query.get('delimiter') ?? '';
      const maxResults = Math.max(
        1,
        Math.min(1000, Number(query.get('maxResults') ?? 1000) || 1000),
      );
      const pageToken = query.get('pageToken') ?? '';
      const names = [...objects.values()]
        .filter((o) => o.bucket === bucket && o.name.startsWith(prefix) && o.name > pageToken)
        .map((o) => o.name)
        .sort();
      const items: StoredObject[] = [];
      const prefixes = new Set<string>();
      let nextPageToken: string | undefined;
      for (const name of names) {
        if (items.length + prefixes.size >= maxResults) {
          nextPageToken = items.at(-1)?.name ?? [...prefixes].at(-1);
          break;
        }
        if (delimiter) {
          const idx = name.indexOf(delimiter, prefix.length);
          if (idx >= 0) {
            prefixes.add(name.slice(0, idx + delimiter.length));
            continue;
          }
        }
        items.push(objects.get(key(bucket, name)) as StoredObject);
      }
      const out: Record<string, unknown> = { kind: 'storage#objects' };
      if (items.length > 0) out.items = items.map(objectResource);
      if (prefixes.size > 0) out.prefixes = [...prefixes];
      if (nextPageToken !== undefined) out.nextPageToken = nextPageToken;
      sendJson(res, 200, out);
      return;
    }

    const bucketMatch = /^\/b\/([^/]+)\/?$/.exec(path);
    if (bucketMatch && method === 'PATCH') {
      const bucket = decode(bucketMatch[1] as string, 'bucket');
      requireBucket(bucket);
      const patch = parseJsonObject(body, 'Request body');
      if ('lifecycle' in patch) lifecycles.set(bucket, patch.lifecycle);
    }
    if (bucketMatch && (method === 'GET' || method === 'PATCH')) {
      const bucket = decode(bucketMatch[1] as string, 'bucket');
      requireBucket(bucket);
      const lifecycle = lifecycles.get(bucket);
      sendJson(res, 200, {
        ...(lifecycle ? { lifecycle } : {}),
        kind: 'storage#bucket',
        selfLink: `${baseUrl}/storage/v1/b/${encodeURIComponent(bucket)}`,
        id: bucket,
        name: bucket,
        projectNumber: '0',
        metageneration: '1',
        location: 'US',
        storageClass: 'STANDARD',
        etag: 'CAE=',
        timeCreated: bucketCreated,
        updated: bucketCreated,
        locationType: 'multi-region',
        iamConfiguration: {
          bucketPolicyOnly: { enabled: true },
          uniformBucketLevelAccess: { enabled: true },
          publicAccessPrevention: 'inherited',
        },
      });
      return;
    }
    throw notImplemented();
  };

  // --- dispatch ----------------------------------------------------------------------------

  const takeFault = (method: string, path: string): StorageFault | undefined => {
    const subject = `${method} ${path}`;
    const idx = faults.findIndex((f) => {
      if (!f.match) return true;
      f.match.lastIndex = 0;
      return f.match.test(subject);
    });
    return idx < 0 ? undefined : faults.splice(idx, 1)[0];
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = req.method ?? 'GET';
    let target = req.url ?? '/';
    if (!target.startsWith('/')) {
      // absolute-form request target
      try {
        const u = new URL(target);
        target = u.pathname + u.search;
      } catch {
        target = '/';
      }
    }
    requests.push({ method, path: target });

    const body = await readBody(req);

    const fault = takeFault(method, target);
    if (fault) {
      if (fault.status === 0) {
        req.socket.destroy();
        return;
      }
      sendJson(
        res,
        fault.status,
        errorBody(fault.status, `Injected fault ${fault.status} (storage stand-in).`),
      );
      return;
    }
    if (body === 'too-large') {
      throw new HttpError(413, `Request body larger than ${MAX_BODY_BYTES} bytes.`);
    }

    const qi = target.indexOf('?');
    const path = qi < 0 ? target : target.slice(0, qi);
    const query = new URLSearchParams(qi < 0 ? '' : target.slice(qi + 1));

    if (path.startsWith('/v0/')) {
      handleFirebase(req, res, path, query);
      return;
    }
    const upload = /^\/upload\/storage\/v1\/b\/([^/]+)\/o\/?$/.exec(path);
    if (upload) {
      handleUpload(req, res, decode(upload[1] as string, 'bucket'), query, body);
      return;
    }
    if (path.startsWith('/download/storage/v1/b/')) {
      handleJsonApi(req, res, path.slice('/download/storage/v1'.length), query, body, true);
      return;
    }
    if (path.startsWith('/storage/v1/b/') || path === '/storage/v1/b') {
      handleJsonApi(req, res, path.slice('/storage/v1'.length), query, body, false);
      return;
    }
    if (path.startsWith('/b/') || path === '/b') {
      // With STORAGE_EMULATOR_HOST the client's JSON API base URL is the bare host.
      handleJsonApi(req, res, path, query, body, false);
      return;
    }
    throw new HttpError(501, `Not implemented by the storage stand-in: ${method} ${path}`);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent || res.destroyed) {
        res.destroy();
        return;
      }
      if (err instanceof HttpError) {
        sendJson(res, err.status, errorBody(err.status, err.message, err.reason));
      } else {
        const message = err instanceof Error ? err.message : String(err);
        sendJson(
          res,
          500,
          errorBody(500, `Storage stand-in internal error: ${message}`, 'internalError'),
        );
      }
    });
  });
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = `127.0.0.1:${port}`;
  baseUrl = `http://${host}`;

  return {
    host,
    url: baseUrl,
    objects,
    lifecycles,
    requests,
    media,
    paceMedia(next) {
      pace = next;
    },
    putObject(bucket, name, data, contentType = 'application/octet-stream') {
      if (!bucketExists(bucket))
        throw new Error(`storage stand-in: bucket ${bucket} does not exist`);
      validateObjectName(name);
      return storeObject(bucket, name, Buffer.from(data), { fields: { contentType } }, undefined);
    },
    injectFaults(...newFaults) {
      faults.push(...newFaults);
    },
    clearFaults() {
      faults.length = 0;
    },
    close() {
      return new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      });
    },
  };
}
