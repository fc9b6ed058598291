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

  // The messages are shown to the user: word for word, whatever the validator's own say.
  it.each([
    ['no meta', { ...validDoc(), meta: undefined }, 'The field meta is missing.'],
    ['meta null', { ...validDoc(), meta: null }, 'The field meta must be an object.'],
    ['meta {}', { ...validDoc(), meta: {} }, 'The field meta.userId is missing.'],
    [
      'userId 42',
      { ...validDoc(), meta: { userId: 42 } },
      'The field meta.userId must be a string.',
    ],
    ['no visuals', { ...validDoc(), visuals: undefined }, 'The field visuals is missing.'],
    ['visuals []', { ...validDoc(), visuals: [] }, 'The field visuals must be an object.'],
    ['no imageUrl', { ...validDoc(), visuals: {} }, 'The field visuals.imageUrl is missing.'],
    [
      'imageUrl null',
      { ...validDoc(), visuals: { imageUrl: null } },
      'The field visuals.imageUrl must be a string.',
    ],
    [
      'imageUrl ""',
      { ...validDoc(), visuals: { imageUrl: '' } },
      'The field visuals.imageUrl is empty.',
    ],
    [
      'imageUrl huge',
      { ...validDoc(), visuals: { imageUrl: 'x'.repeat(5000) } },
      'The field visuals.imageUrl is too long.',
    ],
    ['core 5', { ...validDoc(), core: 5 }, 'The field core must be an object.'],
    ['name 5', { ...validDoc(), core: { name: 5 } }, 'The field core.name must be a string.'],
    ['an empty document', {}, 'The field meta is missing.'],
    ['an array', [], 'The document must be an object.'],
    ['a string', 'x', 'The document must be an object.'],
  ])('says word for word what is wrong: %s', (_name, data, message) => {
    expect(refusal('char_1', data).message).toBe(message);
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
