import { describe, expect, it } from 'vitest';
import { locateSource, type SourcePolicy } from '../../src/adapters/http/url-policy.js';
import { ERROR_CODES, JobError } from '../../src/jobs/errors.js';
import { DEFAULT_GS_PATHS } from '../../src/jobs/gs-paths.js';

const policy: SourcePolicy = {
  bucket: 'my-app.appspot.com',
  allowedHosts: ['cdn.example.com', 'localhost:9000'],
  storageEmulatorHost: '127.0.0.1:9199',
  gsPaths: DEFAULT_GS_PATHS,
};

function forbidden(imageUrl: string, p: SourcePolicy = policy, ownerId = 'u1'): JobError {
  let thrown: unknown;
  try {
    locateSource(imageUrl, p, ownerId);
  } catch (err) {
    thrown = err;
  }
  expect(thrown, imageUrl).toBeInstanceOf(JobError);
  const error = thrown as JobError;
  expect(error.code).toBe('SOURCE_URL_FORBIDDEN');
  expect(error.transient).toBe(false);
  expect(error.message).toBe(ERROR_CODES.SOURCE_URL_FORBIDDEN.message);
  return error;
}

function httpLocation(imageUrl: string, p: SourcePolicy = policy) {
  const location = locateSource(imageUrl, p, 'u1');
  if (location.kind !== 'http') throw new Error(`expected http, got ${location.kind}`);
  return location;
}

describe('locateSource: gs://', () => {
  it('accepts an object of the configured bucket', () => {
    expect(locateSource('gs://my-app.appspot.com/raw-uploads/u1/a b.png', policy, 'u1')).toEqual({
      kind: 'gs',
      bucket: 'my-app.appspot.com',
      path: 'raw-uploads/u1/a b.png',
    });
  });

  it('decodes percent-encoded object names', () => {
    const location = locateSource('gs://my-app.appspot.com/raw-uploads/u1/a%20b.png', policy, 'u1');
    expect(location).toMatchObject({ kind: 'gs', path: 'raw-uploads/u1/a b.png' });
  });

  it.each([
    'gs://other-bucket/raw-uploads/u1/a.png',
    'gs://my-app.appspot.com.evil/raw-uploads/a.png',
    'gs://appspot.com/my-app/a.png',
  ])('refuses another bucket: %s', (url) => {
    expect(forbidden(url).detail).toContain('gs bucket');
  });

  it('refuses the bucket root and encoded traversal', () => {
    forbidden('gs://my-app.appspot.com');
    forbidden('gs://my-app.appspot.com/');
    forbidden('gs://my-app.appspot.com/raw-uploads%2F..%2F..%2Fsecret');
  });

  it.each([
    // URL would resolve these to another object silently; the app never writes them.
    'gs://my-app.appspot.com/raw-uploads/../showcase-images/u2/c/showcase_c.png',
    'gs://my-app.appspot.com/raw-uploads/./u1/a.png',
    'gs://my-app.appspot.com/raw-uploads/%2e%2e/u1/a.png',
    'gs://my-app.appspot.com/raw-uploads//a.png',
    'gs://my-app.appspot.com/raw-uploads/a.png/',
    'gs://my-app.appspot.com/raw-uploads/%E0%A4%A.png',
    'gs://my-app.appspot.com/raw-uploads/a%0A.png',
    'gs://my-app.appspot.com:443/raw-uploads/a.png',
    'gs://user:pass@my-app.appspot.com/raw-uploads/a.png',
  ])('refuses an object name that is not canonical: %s', (url) => {
    forbidden(url);
  });

  it('accepts encoded slashes, as Firebase writes object names', () => {
    expect(
      locateSource('gs://my-app.appspot.com/raw-uploads%2Fu1%2Fa.png', policy, 'u1'),
    ).toMatchObject({ kind: 'gs', path: 'raw-uploads/u1/a.png' });
  });
});

describe('locateSource: gs:// objects belong to the owner (SOURCE_GS_PATHS)', () => {
  const gs = (path: string) => `gs://my-app.appspot.com/${path}`;

  it.each(['raw-uploads/u1/a.png', 'raw-uploads/u1/pics/a.png'])(
    'accepts the owner’s raw-uploads folder by default: %s',
    (path) => {
      expect(locateSource(gs(path), policy, 'u1')).toMatchObject({ kind: 'gs', path });
    },
  );

  it.each([
    // Another user's upload: the confused deputy this rule exists for.
    'raw-uploads/u2/a.png',
    // The owner's id as a folder outside raw-uploads: storage.rules do not let them read it.
    'moderation/u1/evidence.png',
    'users/u2/blocked/u1/photo.png',
    'users/u1/pics/a.png',
    'u1/a.png',
    // The owner's id as part of a name, not a whole folder.
    'raw-uploads/u1x/a.png',
    'raw-uploads/xu1/a.png',
    'raw-uploads/u1.png',
    'raw-uploads/U1/a.png',
    // A file named like the owner is not a folder of theirs.
    'raw-uploads/u1',
    'u1',
  ])('refuses an object that is not the owner’s: %s', (path) => {
    expect(forbidden(gs(path)).detail).toContain("outside the owner's paths");
  });

  it.each([
    'showcase-images/u1/c1/showcase_c1.png',
    'showcase-work/c1/key/cutout.png',
    'showcase-cache/key.png',
    'showcase-work/u1/a.png',
  ])('never reads the worker’s own folders, even the owner’s: %s', (path) => {
    expect(forbidden(gs(path)).detail).toContain("worker's showcase-");
    // Not even when the operator allows everything.
    forbidden(gs(path), { ...policy, gsPaths: ['**'] });
  });

  it('refuses the worker’s folders when spelled with encoded slashes', () => {
    expect(forbidden(gs('showcase-work%2Fu1%2Fa.png')).detail).toContain("worker's");
  });

  it('refuses every gs:// object when there is no owner to bind it to', () => {
    expect(forbidden(gs('raw-uploads/u1/a.png'), policy, '').detail).toContain('owner');
    expect(() => locateSource(gs('raw-uploads/u1/a.png'), policy)).toThrow(JobError);
  });

  it('follows configured patterns instead of the default', () => {
    const anchored = { ...policy, gsPaths: ['users/{userId}/**', 'avatars/{userId}/*.webp'] };
    expect(locateSource(gs('users/u1/a.png'), anchored, 'u1').kind).toBe('gs');
    expect(locateSource(gs('avatars/u1/me.webp'), anchored, 'u1').kind).toBe('gs');
    forbidden(gs('raw-uploads/u1/a.png'), anchored);
    forbidden(gs('avatars/u1/me.png'), anchored);
    forbidden(gs('avatars/u2/me.webp'), anchored);
  });

  it('leaves http(s) sources alone: a download URL’s token is its capability', () => {
    const url =
      'https://firebasestorage.googleapis.com/v0/b/my-app.appspot.com/o/raw-uploads%2Fu2%2Fa.png?alt=media&token=t';
    expect(httpLocation(url).trusted).toBe(false);
  });
});

describe('locateSource: schemes', () => {
  it.each([
    'file:///etc/passwd',
    'data:image/png;base64,iVBORw0KGgo=',
    'ftp://cdn.example.com/a.png',
    'javascript:alert(1)',
    'blob:https://cdn.example.com/uuid',
  ])('refuses %s', (url) => {
    forbidden(url);
  });

  it.each(['not a url', '', '/raw-uploads/a.png', 'cdn.example.com/a.png'])(
    'refuses a value that is not an absolute URL: %j',
    (url) => {
      forbidden(url);
    },
  );
});

describe('locateSource: http(s)', () => {
  it('accepts an allowed host over https and http, as trusted', () => {
    expect(httpLocation('https://cdn.example.com/a.png')).toMatchObject({ trusted: true });
    const plain = httpLocation('http://cdn.example.com/a.png');
    expect(plain.trusted).toBe(true);
    expect(plain.url.href).toBe('http://cdn.example.com/a.png');
  });

  it('matches allowed host names case-insensitively', () => {
    expect(httpLocation('HTTPS://CDN.Example.COM/a.png').trusted).toBe(true);
    expect(
      httpLocation('https://cdn.example.com/a.png', {
        ...policy,
        allowedHosts: ['CDN.Example.com'],
      }).trusted,
    ).toBe(true);
  });

  it.each([
    'https://evil.example.com/a.png',
    'http://evil.example.com/a.png',
    'https://cdn.example.com.evil.net/a.png',
    'https://example.com/a.png',
    'http://169.254.169.254/latest/meta-data/',
    'http://127.0.0.1/a.png',
    'https://[::1]/a.png',
  ])('refuses a host that is not allowed: %s', (url) => {
    forbidden(url);
  });

  it('a bare allowed host allows its default port only', () => {
    forbidden('https://cdn.example.com:8443/a.png');
    expect(httpLocation('https://cdn.example.com:443/a.png').trusted).toBe(true);
  });

  it('an allowed host:port allows exactly that port', () => {
    expect(httpLocation('http://localhost:9000/a.png').trusted).toBe(true);
    forbidden('http://localhost/a.png');
    forbidden('http://localhost:9001/a.png');
  });

  it('an allowed host:port on the default port allows that URL', () => {
    const p = { ...policy, allowedHosts: ['localhost:80'] };
    expect(httpLocation('http://localhost:80/a.png', p).trusted).toBe(true);
  });

  it.each([
    'https://firebasestorage.googleapis.com/v0/b/my-app.appspot.com/o/raw-uploads%2Fa.png?alt=media&token=abc',
    'https://storage.googleapis.com/my-app.appspot.com/raw-uploads/a.png',
    'https://my-app.appspot.com.storage.googleapis.com/raw-uploads/a.png',
  ])('accepts Google storage over https, untrusted (addresses still checked): %s', (url) => {
    expect(httpLocation(url).trusted).toBe(false);
  });

  it.each([
    'http://firebasestorage.googleapis.com/v0/b/my-app.appspot.com/o/a.png',
    'http://storage.googleapis.com/my-app.appspot.com/a.png',
    'https://firebasestorage.googleapis.com:8443/v0/b/x/o/a.png',
    'https://other-bucket.storage.googleapis.com/a.png',
    'https://firebasestorage.googleapis.com.evil.net/v0/b/x/o/a.png',
  ])('refuses Google storage look-alikes and plain http: %s', (url) => {
    forbidden(url);
  });

  it('accepts the storage emulator host, trusted, on its port only', () => {
    expect(
      httpLocation('http://127.0.0.1:9199/v0/b/my-app.appspot.com/o/raw-uploads%2Fa.png').trusted,
    ).toBe(true);
    forbidden('http://127.0.0.1:9200/v0/b/my-app.appspot.com/o/a.png');
    forbidden('http://127.0.0.1:9199/x', { ...policy, storageEmulatorHost: '' });
  });

  it.each([
    // The emulator's JSON API answers anyone as an admin would: never a source.
    'http://127.0.0.1:9199/b/my-app.appspot.com/o/raw-uploads%2Fu2%2Fa.png?alt=media',
    'http://127.0.0.1:9199/storage/v1/b/my-app.appspot.com/o/raw-uploads%2Fu2%2Fa.png?alt=media',
    'http://127.0.0.1:9199/download/storage/v1/b/my-app.appspot.com/o/a.png?alt=media',
  ])('accepts only the emulator’s Firebase download endpoint: %s', (url) => {
    expect(forbidden(url).detail).toContain('storage emulator');
  });

  it.each([
    'https://user:pass@cdn.example.com/a.png',
    'https://user@cdn.example.com/a.png',
    'https://:pass@firebasestorage.googleapis.com/v0/b/x/o/a.png',
    'http://admin:admin@127.0.0.1:9199/a.png',
  ])('refuses credentials in the URL: %s', (url) => {
    expect(forbidden(url).detail).toContain('credentials');
  });

  it('does not put the URL in the user-facing message', () => {
    const error = forbidden('https://evil.example.com/steal?token=abc');
    expect(error.message).not.toContain('evil.example.com');
  });
});
