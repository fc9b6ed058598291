import { describe, expect, it } from 'vitest';
import { parseJobDocument, showcasePath } from '../../src/jobs/document.js';
import { JobError } from '../../src/jobs/errors.js';

const validDoc = () => ({
  core: { name: 'Aria', description: 'ignored' },
  meta: { userId: 'user_123', createdAt: 1 },
  visuals: {
    imageUrl: 'gs://my-app.appspot.com/raw-uploads/user_123/aria.png',
    showcaseProcessingStatus: 'removing-background',
  },
});

/** Parses and returns the INVALID_DOCUMENT error it must throw. */
function refusal(characterId: string, data: unknown): JobError {
  let thrown: unknown;
  try {
    parseJobDocument(characterId, data);
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(JobError);
  const error = thrown as JobError;
  expect(error.code).toBe('INVALID_DOCUMENT');
  expect(error.transient).toBe(false);
  return error;
}

describe('parseJobDocument', () => {
  it('accepts a valid document', () => {
    expect(parseJobDocument('char_1', validDoc())).toEqual({
      characterId: 'char_1',
      userId: 'user_123',
      imageUrl: 'gs://my-app.appspot.com/raw-uploads/user_123/aria.png',
      name: 'Aria',
    });
  });

  it('accepts a document without core (the name is optional)', () => {
    const doc = { ...validDoc(), core: undefined };
    expect(parseJobDocument('char_1', doc).name).toBeUndefined();
  });

  it('refuses a document without meta, naming the field', () => {
    const doc = { ...validDoc(), meta: undefined };
    const error = refusal('char_1', doc);
    expect(error.message).toMatch(/\bmeta\b/);
    expect(error.detail).toBe('meta');
  });

  it('refuses a document without meta.userId, naming the field', () => {
    const error = refusal('char_1', { ...validDoc(), meta: {} });
    expect(error.message).toContain('meta.userId');
  });

  it('refuses a non-string imageUrl, naming the field', () => {
    const doc = validDoc();
    const error = refusal('char_1', { ...doc, visuals: { ...doc.visuals, imageUrl: 42 } });
    expect(error.message).toContain('visuals.imageUrl');
    expect(error.detail).toBe('visuals.imageUrl');
  });

  it('refuses an empty imageUrl', () => {
    const doc = validDoc();
    const error = refusal('char_1', { ...doc, visuals: { ...doc.visuals, imageUrl: '' } });
    expect(error.message).toContain('visuals.imageUrl');
  });

  it.each([
    ['../x', /slash/],
    ['a/b', /slash/],
    ['a\\b', /slash/],
    ['..', /relative path segment/],
    ['.', /relative path segment/],
    ['', /empty/],
    ['x'.repeat(300), /longer than 128/],
    ['bad\nid', /control character/],
    ['nul\u0000', /control character/],
    ['del\u007f', /control character/],
    ['c1\u0085', /control character/],
    ['user\u202egnp.exe', /control character/],
    ['zero\u200bwidth', /control character/],
    ['line\u2028sep', /control character/],
  ])('refuses userId %j with a message naming meta.userId', (userId, reason) => {
    const doc = validDoc();
    const error = refusal('char_1', { ...doc, meta: { userId } });
    expect(error.message).toContain('meta.userId');
    expect(error.message).toMatch(reason);
    // The message is shown to the user: it explains, it does not echo the value.
    if (userId.length > 2) expect(error.message).not.toContain(userId);
  });

  it('accepts a userId of exactly 128 characters', () => {
    const doc = validDoc();
    expect(
      parseJobDocument('c', { ...doc, meta: { userId: 'u'.repeat(128) } }).userId,
    ).toHaveLength(128);
  });

  it.each([
    ['..', /relative path segment/],
    ['a/b', /slash/],
    ['', /empty/],
    ['c'.repeat(129), /longer than 128/],
    ['tab\there', /control character/],
  ])('refuses character id %j, naming the id', (id, reason) => {
    const error = refusal(id, validDoc());
    expect(error.message).toContain('character id');
    expect(error.message).toMatch(reason);
    expect(error.detail).toBe('id');
  });

  it('checks the id before the document', () => {
    const error = refusal('..', null);
    expect(error.detail).toBe('id');
  });

  it('refuses a document that is not an object, with a message naming the document', () => {
    const error = refusal('char_1', null);
    expect(error.message).toMatch(/document/);
    expect(error.detail).toBe('document');
  });
});

describe('showcasePath', () => {
  it('is showcase-images/{userId}/{characterId}/showcase_{characterId}.png', () => {
    expect(showcasePath({ userId: 'user_123', characterId: 'char_1' })).toBe(
      'showcase-images/user_123/char_1/showcase_char_1.png',
    );
  });

  it('uses the parsed spec as is', () => {
    const spec = parseJobDocument('Zx9', validDoc());
    expect(showcasePath(spec)).toBe('showcase-images/user_123/Zx9/showcase_Zx9.png');
  });
});
