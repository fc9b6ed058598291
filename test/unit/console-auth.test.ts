import { describe, expect, it } from 'vitest';
import {
  authenticate,
  cookieOf,
  csrfFor,
  csrfMatches,
  fromOwnPage,
  isSecure,
  issueSession,
  sessionCookie,
  SESSION_COOKIE,
  tokenMatches,
  verifySession,
} from '../../src/console/auth.js';

const TOKEN = 'console-token-0123456789abcdef';
const NOW = 1_750_000_000_000;

describe('the console token', () => {
  it('matches only itself, and never when no token is configured', () => {
    expect(tokenMatches(TOKEN, TOKEN)).toBe(true);
    expect(tokenMatches(`${TOKEN}x`, TOKEN)).toBe(false);
    expect(tokenMatches(TOKEN.slice(0, -1), TOKEN)).toBe(false);
    expect(tokenMatches('', '')).toBe(false);
  });

  it('admits a bearer header with the token, and nothing else', () => {
    expect(authenticate({ authorization: `Bearer ${TOKEN}` }, TOKEN, NOW)).toEqual({
      kind: 'bearer',
    });
    expect(authenticate({ authorization: 'Bearer wrong' }, TOKEN, NOW)).toBeUndefined();
    // A wrong bearer header is not rescued by a valid cookie (no ambiguity about who asks).
    const cookie = `${SESSION_COOKIE}=${issueSession(TOKEN, NOW)}`;
    expect(authenticate({ authorization: 'Bearer x', cookie }, TOKEN, NOW)).toBeUndefined();
    expect(authenticate({}, TOKEN, NOW)).toBeUndefined();
  });
});

describe('sessions', () => {
  it('are signed by the token and expire', () => {
    const value = issueSession(TOKEN, NOW, 60_000);
    const sid = verifySession(value, TOKEN, NOW + 59_000);
    expect(sid).toMatch(/^[\w-]{20,}$/);
    expect(verifySession(value, TOKEN, NOW + 60_000)).toBeUndefined();
    // Another token (rotated) ends every session.
    expect(verifySession(value, 'another-token-0123456789', NOW)).toBeUndefined();
  });

  it('refuse a forged or altered cookie', () => {
    const value = issueSession(TOKEN, NOW, 60_000);
    const [sid, expires, mac] = value.split('.');
    expect(verifySession(`${sid}.${Number(expires) + 1e9}.${mac}`, TOKEN, NOW)).toBeUndefined();
    expect(verifySession(`other.${expires}.${mac}`, TOKEN, NOW)).toBeUndefined();
    expect(verifySession(`${sid}.${expires}.`, TOKEN, NOW)).toBeUndefined();
    expect(verifySession('garbage', TOKEN, NOW)).toBeUndefined();
  });

  it('come from the cookie header among others', () => {
    const value = issueSession(TOKEN, NOW);
    const header = `theme=dark; ${SESSION_COOKIE}=${value}; other=1`;
    expect(cookieOf(header, SESSION_COOKIE)).toBe(value);
    expect(authenticate({ cookie: header }, TOKEN, NOW)).toEqual({
      kind: 'session',
      sid: verifySession(value, TOKEN, NOW),
    });
  });

  it('set a cookie scripts cannot read, sent to this site only, Secure behind TLS', () => {
    const plain = sessionCookie('v', false);
    expect(plain).toMatch(/HttpOnly/);
    expect(plain).toMatch(/SameSite=Strict/);
    expect(plain).not.toMatch(/Secure/);
    expect(sessionCookie('v', true)).toMatch(/; Secure$/);
    expect(sessionCookie('', true)).toMatch(/Max-Age=0/);
    expect(isSecure({ 'x-forwarded-proto': 'https' }, false)).toBe(true);
    expect(isSecure({ 'x-forwarded-proto': 'http' }, false)).toBe(false);
    expect(isSecure({}, true)).toBe(true);
  });
});

describe('CSRF', () => {
  it("binds the page's token to its session", () => {
    const csrf = csrfFor(TOKEN, 'sid-a');
    expect(csrfMatches(csrf, TOKEN, 'sid-a')).toBe(true);
    expect(csrfMatches(csrf, TOKEN, 'sid-b')).toBe(false);
    expect(csrfMatches(undefined, TOKEN, 'sid-a')).toBe(false);
    expect(csrfMatches('', TOKEN, 'sid-a')).toBe(false);
  });

  it("refuses a request another site's page sends", () => {
    const host = 'console.example.com';
    expect(
      fromOwnPage({ host, origin: `https://${host}`, 'sec-fetch-site': 'same-origin' }, true),
    ).toBe(true);
    expect(fromOwnPage({ host }, true)).toBe(true);
    expect(fromOwnPage({ host, 'sec-fetch-site': 'cross-site' }, true)).toBe(false);
    expect(fromOwnPage({ host, 'sec-fetch-site': 'same-site' }, true)).toBe(false);
    expect(fromOwnPage({ host, origin: 'https://evil.example' }, true)).toBe(false);
    expect(fromOwnPage({ host, origin: 'null' }, true)).toBe(false);
    // The scheme counts: an http page is another origin than the https console.
    expect(fromOwnPage({ host, origin: `http://${host}` }, true)).toBe(false);
  });
});
