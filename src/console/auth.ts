import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/**
 * The console's one secret, CONSOLE_TOKEN, guards everything but `/healthz`: a browser signs
 * in with it once and gets a session cookie; a script sends it as a bearer header. Sessions
 * are stateless (an HMAC under the token), so any console process checks any session, a
 * restart keeps them, and changing the token ends them all. Pure functions: the server
 * (./server.ts) applies them, test/unit/console-auth.test.ts checks them.
 */

export const SESSION_COOKIE = 'console_session';
/** How long a sign-in lasts. */
export const SESSION_TTL_MS = 12 * 60 * 60 * 1000;

/** Who made a request: a signed-in browser (its session id) or a script with the token. */
export type Caller = { kind: 'session'; sid: string } | { kind: 'bearer' };

/**
 * Compares in constant time: both sides are hashed first, so neither the length nor the first
 * differing byte of the secret shows in the time taken.
 */
export function tokenMatches(given: string, token: string): boolean {
  if (token === '') return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}

function mac(token: string, text: string): string {
  return createHmac('sha256', token).update(text).digest('base64url');
}

/** A new session cookie's value: `sid.expiresAt.mac`. */
export function issueSession(token: string, nowMs: number, ttlMs = SESSION_TTL_MS): string {
  const sid = randomBytes(18).toString('base64url');
  const body = `${sid}.${nowMs + ttlMs}`;
  return `${body}.${mac(token, `session|${body}`)}`;
}

/** The session id of a cookie value the token signed and that has not expired, else undefined. */
export function verifySession(value: string, token: string, nowMs: number): string | undefined {
  const parts = value.split('.');
  if (parts.length !== 3 || token === '') return undefined;
  const [sid = '', expires = '', signature = ''] = parts;
  const expected = Buffer.from(mac(token, `session|${sid}.${expires}`));
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  const expiresAt = Number(expires);
  return Number.isFinite(expiresAt) && nowMs < expiresAt ? sid : undefined;
}

/** The CSRF token of a session: the page carries it, every action sends it back. */
export function csrfFor(token: string, sid: string): string {
  return mac(token, `csrf|${sid}`);
}

export function csrfMatches(given: string | undefined, token: string, sid: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(csrfFor(token, sid));
  return a.length === b.length && timingSafeEqual(a, b);
}

/** One cookie from a `Cookie` header. */
export function cookieOf(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Who is asking, or undefined: a bearer header with the token, else a valid session cookie. */
export function authenticate(
  headers: IncomingHttpHeaders,
  token: string,
  nowMs: number,
): Caller | undefined {
  const auth = headers.authorization;
  if (typeof auth === 'string' && /^bearer /i.test(auth)) {
    return tokenMatches(auth.slice(7).trim(), token) ? { kind: 'bearer' } : undefined;
  }
  const cookie = cookieOf(headers.cookie, SESSION_COOKIE);
  const sid = cookie === undefined ? undefined : verifySession(cookie, token, nowMs);
  return sid === undefined ? undefined : { kind: 'session', sid };
}

/** Whether the request came over TLS: itself, or as the platform's router says (Heroku, Render). */
export function isSecure(headers: IncomingHttpHeaders, encrypted: boolean): boolean {
  const proto = headers['x-forwarded-proto'];
  const first = (Array.isArray(proto) ? proto[0] : proto)?.split(',')[0]?.trim();
  return encrypted || first === 'https';
}

/**
 * Whether a state-changing request comes from the console's own pages: a browser says where a
 * request comes from (`Sec-Fetch-Site`, `Origin`); either naming another site refuses it. The
 * CSRF token is checked as well: this is the second lock, for browsers that send no token.
 */
export function fromOwnPage(headers: IncomingHttpHeaders, secure: boolean): boolean {
  const site = headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return false;
  const origin = headers.origin;
  if (origin === undefined) return true;
  const host = headers.host;
  return host !== undefined && origin === `${secure ? 'https' : 'http'}://${host}`;
}

/** The Set-Cookie value for a session (or, with `value` empty, one that ends it). */
export function sessionCookie(value: string, secure: boolean, maxAgeMs = SESSION_TTL_MS): string {
  const attrs = [
    `${SESSION_COOKIE}=${value}`,
    'Path=/',
    'HttpOnly',
    'SameSite=Strict',
    `Max-Age=${value === '' ? 0 : Math.floor(maxAgeMs / 1000)}`,
  ];
  if (secure) attrs.push('Secure');
  return attrs.join('; ');
}
