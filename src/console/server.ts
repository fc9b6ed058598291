import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { TLSSocket } from 'node:tls';
import { describe } from '../jobs/errors.js';
import type { Log } from '../jobs/ports.js';
import { listen, sendJson, type HttpServer } from '../http/listen.js';
import type { LimitChange, UserLimitsView } from '../adapters/firestore/limit-override.js';
import { userIdProblem } from '../jobs/user-limits.js';
import {
  limitRequest,
  type IntakeOutcome,
  type LimitOutcome,
  type RetryOutcome,
} from './actions.js';
import {
  authenticate,
  csrfFor,
  csrfMatches,
  fromOwnPage,
  isSecure,
  issueSession,
  sessionCookie,
  tokenMatches,
  type Caller,
} from './auth.js';
import type { ConsoleFeed } from './feeds.js';
import { METRICS_CONTENT_TYPE, renderFleetMetrics } from './metrics.js';
import type { Picture } from './pictures.js';
import { RETRY_ALL_LIMIT } from './queries.js';
import { ERROR_CODE, type RetryCode } from './retry-code.js';
import type { JobDetail } from './state.js';
import { jobPage, overviewPage, signInPage } from './views.js';

/** What the server needs of one job (./main.ts binds it to Firestore). */
export interface JobsPort {
  /** Calls `onDetail` with the job now and at every change, until the returned function runs. */
  watch(id: string, onDetail: (d: JobDetail) => void, onError: (err: unknown) => void): () => void;
  picture(id: string, which: 'source' | 'result', signal: AbortSignal): Promise<Picture>;
}

export interface ConsoleServerOptions {
  port: number;
  /** 127.0.0.1 unless the platform gives PORT in production (./main.ts). */
  host: string;
  token: string;
  readOnly: boolean;
  feed: ConsoleFeed;
  jobs: JobsPort;
  retry(id: string): Promise<RetryOutcome>;
  /** Pause (true) or resume the whole fleet's intake; `by` names who, for people. */
  intake(paused: boolean, by: string, note: string): Promise<IntakeOutcome>;
  /** A user's limits: view them, set the override (`showcase-worker limit`'s rule and code). */
  limits: {
    view(userId: string): Promise<UserLimitsView>;
    set(userId: string, change: LimitChange): Promise<LimitOutcome>;
  };
  /** Retry all of a code: preview, run on the server, and the run's progress. */
  retryCode: RetryCode;
  log: Log;
  /** The folder of console.js and console.css. */
  assetsDir: string;
  /** More Prometheus text for `/metrics` (the console's own reads, ./read-meter.ts). */
  moreMetrics?: () => string;
  now?: () => number;
}

export type ConsoleServer = HttpServer;

/** No inline script or style, pictures only from here, no framing, forms only to here. */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

const ASSETS: Record<string, string> = {
  'console.js': 'text/javascript; charset=utf-8',
  'console.css': 'text/css; charset=utf-8',
};

const MAX_BODY = 4096;
const ACTIONS = new Set([
  '/actions/retry',
  '/actions/pause',
  '/actions/resume',
  '/actions/limit',
  '/actions/retry-code/preview',
  '/actions/retry-code',
]);
const MAX_STREAMS = 64;
const JOB_ID = /^[^/\\\s]{1,128}$/;

/**
 * The operator console's HTTP side, on node:http (docs/console.md): one token guards every
 * route but `/healthz` and the two static files; actions are POSTs that a browser must send
 * from the console's own page with its session's CSRF token; read-only refuses them all.
 */
export async function startConsoleServer(opts: ConsoleServerOptions): Promise<ConsoleServer> {
  const now = opts.now ?? Date.now;
  let streams = 0;

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://console');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const secure = isSecure(req.headers, req.socket instanceof TLSSocket);
    setCommonHeaders(res);

    if (path === '/healthz') return sendJson(res, 200, { status: 'ok' });
    const asset = /^\/assets\/([\w.-]+)$/.exec(path)?.[1];
    if (asset !== undefined && ASSETS[asset] && method === 'GET') {
      const body = await readFile(join(opts.assetsDir, asset));
      res.writeHead(200, { 'content-type': ASSETS[asset], 'cache-control': 'no-cache' });
      return void res.end(body);
    }
    if (path === '/login') {
      if (method === 'GET') return sendHtml(res, 200, signInPage());
      if (method !== 'POST') return sendJson(res, 405, { error: 'method not allowed' });
      const form = await readForm(req);
      if (!fromOwnPage(req.headers, secure)) return sendJson(res, 403, { error: 'cross-site' });
      if (!tokenMatches(form.get('token') ?? '', opts.token)) {
        opts.log.warn('console.signin.refused', { address: req.socket.remoteAddress });
        return sendHtml(res, 401, signInPage('That is not the console token.'));
      }
      opts.log.info('console.signin', { address: req.socket.remoteAddress });
      res.setHeader('set-cookie', sessionCookie(issueSession(opts.token, now()), secure));
      return redirect(res, '/');
    }

    const caller = authenticate(req.headers, opts.token, now());
    if (!caller) {
      res.setHeader('www-authenticate', 'Bearer realm="showcase-console"');
      return wantsHtml(req) && method === 'GET'
        ? sendHtml(res, 401, signInPage())
        : sendJson(res, 401, { error: 'sign in, or send the token as a bearer header' });
    }
    const csrf = caller.kind === 'session' ? csrfFor(opts.token, caller.sid) : '';

    if (method === 'POST') return post(req, res, path, caller, secure);
    if (method !== 'GET') return sendJson(res, 405, { error: 'method not allowed' });

    if (path === '/') return sendHtml(res, 200, overviewPage(csrf, opts.readOnly));
    if (path === '/metrics') {
      const body = renderFleetMetrics(await opts.feed.snapshot()) + (opts.moreMetrics?.() ?? '');
      res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE });
      return void res.end(body);
    }
    if (path === '/api/state') return sendJson(res, 200, await opts.feed.snapshot());
    if (path === '/events') {
      return stream(req, res, (send) => opts.feed.subscribe((state) => send('state', state)));
    }
    if (path === '/api/retry-code') return sendJson(res, 200, { run: opts.retryCode.status() });
    const user = /^\/api\/limits\/([^/]+)$/.exec(path)?.[1];
    if (user !== undefined) {
      const userId = decodeURIComponent(user);
      const problem = userIdProblem(userId);
      if (problem) return sendJson(res, 400, { error: problem });
      return sendJson(res, 200, await opts.limits.view(userId));
    }
    const job = /^\/jobs\/([^/]+)(?:\/(events|source|result))?$/.exec(path);
    const id = job?.[1] === undefined ? undefined : decodeURIComponent(job[1]);
    if (id === undefined || !JOB_ID.test(id)) return sendJson(res, 404, { error: 'not found' });
    const part = job?.[2];
    if (part === undefined) return sendHtml(res, 200, jobPage(id, csrf, opts.readOnly));
    if (part === 'events') {
      return stream(req, res, (send) =>
        opts.jobs.watch(
          id,
          (detail) => send('job', detail),
          (err) => send('failed', { error: describe(err) }),
        ),
      );
    }
    return picture(req, res, id, part === 'source' ? 'source' : 'result');
  }

  async function post(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    caller: Caller,
    secure: boolean,
  ): Promise<void> {
    const form = await readForm(req);
    // A browser's POST must come from the console's own page and carry its session's token;
    // a script with the bearer token has no ambient credentials to abuse.
    if (caller.kind === 'session') {
      const token = form.get('csrf') ?? header(req, 'x-csrf-token');
      if (!fromOwnPage(req.headers, secure) || !csrfMatches(token, opts.token, caller.sid)) {
        opts.log.warn('console.action.refused', { path, reason: 'csrf' });
        return sendJson(res, 403, { error: 'refused: not from the console page (CSRF)' });
      }
    }
    if (path === '/logout') {
      res.setHeader('set-cookie', sessionCookie('', secure));
      return redirect(res, '/login');
    }
    if (!ACTIONS.has(path)) return sendJson(res, 404, { error: 'not found' });
    if (opts.readOnly) {
      opts.log.warn('console.action.refused', { path, reason: 'read-only' });
      return sendJson(res, 403, { error: 'refused: the console is read-only' });
    }
    if (path === '/actions/pause' || path === '/actions/resume') {
      const paused = path === '/actions/pause';
      const outcome = await opts.intake(paused, `console (${caller.kind})`, form.get('note') ?? '');
      opts.log.info('console.action', { ...outcome, by: caller.kind });
      if (wantsHtml(req)) return redirect(res, '/#control');
      return sendJson(res, 200, outcome);
    }
    const by = caller.kind;
    if (path === '/actions/limit') {
      const request = limitRequest(form);
      if ('problem' in request) return sendJson(res, 400, { error: request.problem });
      const outcome = await opts.limits.set(request.userId, request.change);
      const { action, userId, changed, view } = outcome;
      opts.log.info('console.action', { action, userId, changed, limits: view.limits, by });
      if (wantsHtml(req)) return redirect(res, '/#spend');
      return sendJson(res, 200, outcome);
    }
    if (path.startsWith('/actions/retry-code')) return retryCode(req, res, path, form, by);
    const id = form.get('id') ?? '';
    if (!JOB_ID.test(id)) return sendJson(res, 400, { error: 'give the character id' });
    const outcome = await opts.retry(id);
    opts.log.info('console.action', { ...outcome, by: caller.kind });
    if (wantsHtml(req)) return redirect(res, '/#failures');
    return sendJson(res, 200, outcome);
  }

  /** Retry all of a code: the preview counts; the confirm starts the run on the server. */
  async function retryCode(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    form: Map<string, string>,
    by: Caller['kind'],
  ): Promise<void> {
    const code = form.get('code') ?? '';
    if (!ERROR_CODE.test(code)) return sendJson(res, 400, { error: 'give an error code' });
    if (path.endsWith('/preview')) {
      const preview = await opts.retryCode.preview(code);
      opts.log.info('console.action.preview', { ...preview, by });
      return sendJson(res, 200, preview);
    }
    // At most what the preview showed (`max`): failures that came since are not clicked unseen.
    const max = Number(form.get('max') ?? RETRY_ALL_LIMIT);
    if (!Number.isSafeInteger(max) || max < 1) {
      return sendJson(res, 400, {
        error: `max must be a whole number from 1 to ${RETRY_ALL_LIMIT}`,
      });
    }
    const started = await opts.retryCode.start(code, `console (${by})`, max);
    if ('busy' in started) {
      return sendJson(res, 409, { error: 'a Retry all is still running', run: started.busy });
    }
    opts.log.info('console.action.started', {
      action: started.action,
      code,
      selected: started.selected,
      perMinute: started.perMinute,
      by,
    });
    if (wantsHtml(req)) return redirect(res, '/#failures');
    return sendJson(res, 202, started);
  }

  async function picture(
    req: IncomingMessage,
    res: ServerResponse,
    id: string,
    which: 'source' | 'result',
  ): Promise<void> {
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    let pic: Picture;
    try {
      pic = await opts.jobs.picture(id, which, abort.signal);
    } catch (err) {
      pic = { missing: describe(err) };
    }
    if ('missing' in pic) return sendJson(res, 404, { error: pic.missing });
    res.writeHead(200, {
      'content-type': pic.type,
      'content-length': pic.body.length,
      'content-security-policy': "default-src 'none'",
      'cache-control': 'private, no-store',
    });
    res.end(req.method === 'HEAD' ? undefined : pic.body);
  }

  /** Server-Sent Events: `open` subscribes with a sender and returns its unsubscribe. */
  function stream(
    req: IncomingMessage,
    res: ServerResponse,
    open: (send: (event: string, data: unknown) => void) => () => void,
  ): void {
    if (streams >= MAX_STREAMS) return sendJson(res, 503, { error: 'too many open pages' });
    streams++;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      // Heroku's and Render's routers pass streams through; nginx-like proxies must not buffer.
      'x-accel-buffering': 'no',
    });
    res.write('retry: 3000\n\n');
    const send = (event: string, data: unknown) =>
      res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    const stop = open(send);
    // Routers close a connection idle for ~55 s (Heroku): a comment keeps it open.
    const ping = setInterval(() => res.write(': ping\n\n'), 20_000);
    req.on('close', () => {
      streams--;
      clearInterval(ping);
      stop();
    });
  }

  return listen(route, {
    port: opts.port,
    host: opts.host,
    log: opts.log,
    prefix: 'console.http',
    describe,
  });
}

function setCommonHeaders(res: ServerResponse): void {
  res.setHeader('content-security-policy', CSP);
  res.setHeader('x-content-type-options', 'nosniff');
  // Not no-referrer: with it, Chromium sends `Origin: null` on the console's own form POSTs,
  // and the origin check could not tell them from another site's.
  res.setHeader('referrer-policy', 'same-origin');
  res.setHeader('x-frame-options', 'DENY');
  res.setHeader('cache-control', 'no-store');
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function wantsHtml(req: IncomingMessage): boolean {
  return (header(req, 'accept') ?? '').includes('text/html');
}

/** A small urlencoded or JSON body (actions, sign-in); anything larger is cut off. */
async function readForm(req: IncomingMessage): Promise<Map<string, string>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) break;
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  const type = header(req, 'content-type') ?? '';
  if (type.startsWith('application/json')) {
    try {
      const parsed = JSON.parse(text) as unknown;
      if (parsed && typeof parsed === 'object') {
        return new Map(
          Object.entries(parsed).filter((e): e is [string, string] => typeof e[1] === 'string'),
        );
      }
    } catch {
      return new Map();
    }
    return new Map();
  }
  return new Map(new URLSearchParams(text));
}

function redirect(res: ServerResponse, location: string): void {
  res.writeHead(303, { location });
  res.end();
}

function sendHtml(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(html),
  });
  res.end(html);
}
