import { describe, expect, it } from 'vitest';
import { showcasePath } from '../../src/jobs/document.js';
import {
  DEFAULT_GS_PATHS,
  WORKER_PREFIXES,
  gsPatternProblem,
  isSharedGsPattern,
  judgeGsSource,
  matchesGsPattern,
} from '../../src/jobs/gs-paths.js';

const match = (pattern: string, path: string, userId = 'u1') =>
  matchesGsPattern(pattern, path, userId);

describe('matchesGsPattern', () => {
  it('matches literal segments exactly, case-sensitively', () => {
    expect(match('raw-uploads/a.png', 'raw-uploads/a.png')).toBe(true);
    expect(match('raw-uploads/a.png', 'Raw-uploads/a.png')).toBe(false);
    expect(match('raw-uploads/a.png', 'raw-uploads/a.png/b')).toBe(false);
    expect(match('raw-uploads/a.png', 'raw-uploads')).toBe(false);
  });

  it('{userId} is the owner’s id exactly, as a whole segment', () => {
    expect(match('raw-uploads/{userId}/a.png', 'raw-uploads/u1/a.png')).toBe(true);
    expect(match('raw-uploads/{userId}/a.png', 'raw-uploads/u2/a.png')).toBe(false);
    expect(match('raw-uploads/{userId}/a.png', 'raw-uploads/u1x/a.png')).toBe(false);
    expect(match('raw-uploads/{userId}/a.png', 'raw-uploads/xu1/a.png')).toBe(false);
  });

  it('never matches with {userId} inside a segment (config refuses it)', () => {
    expect(match('avatars/{userId}.*', 'avatars/u1.png')).toBe(false);
    expect(match('avatar-{userId}.*', 'avatar-bob.smith.png', 'bob')).toBe(false);
  });

  it('treats regular-expression characters of the id as text', () => {
    expect(match('{userId}/**', 'a.b/x.png', 'a.b')).toBe(true);
    expect(match('{userId}/**', 'axb/x.png', 'a.b')).toBe(false);
    expect(match('{userId}/**', 'a+/x.png', 'a+')).toBe(true);
    expect(match('{userId}/**', 'aa/x.png', 'a+')).toBe(false);
  });

  it('* is any text within one segment, never a slash', () => {
    expect(match('raw-uploads/*/a.png', 'raw-uploads/anyone/a.png')).toBe(true);
    expect(match('raw-uploads/*/a.png', 'raw-uploads/x/y/a.png')).toBe(false);
    expect(match('raw-uploads/{userId}/*.png', 'raw-uploads/u1/pic.png')).toBe(true);
    expect(match('raw-uploads/{userId}/*.png', 'raw-uploads/u1/pic.jpg')).toBe(false);
  });

  it('** is any number of folders; at the end, everything inside the folder', () => {
    expect(match('**/{userId}/**', 'u1/a.png')).toBe(true);
    expect(match('**/{userId}/**', 'raw-uploads/u1/a.png')).toBe(true);
    expect(match('**/{userId}/**', 'a/b/c/u1/d/e.png')).toBe(true);
    // Something must be inside the folder: a file named like the owner is not theirs.
    expect(match('**/{userId}/**', 'raw-uploads/u1')).toBe(false);
    expect(match('**/{userId}/**', 'u1')).toBe(false);
    expect(match('raw-uploads/**/a.png', 'raw-uploads/a.png')).toBe(true);
    expect(match('raw-uploads/**/a.png', 'raw-uploads/x/y/a.png')).toBe(true);
    expect(match('**', 'anything/at/all.png')).toBe(true);
  });

  it('never matches an empty owner, an unusable pattern or a path with empty segments', () => {
    expect(match('**/{userId}/**', 'raw-uploads//a.png', '')).toBe(false);
    expect(match('{userId}/**', '/a.png', '')).toBe(false);
    expect(match('raw-uploads/**', 'raw-uploads//a.png')).toBe(false);
    expect(match('raw-uploads/{owner}/**', 'raw-uploads/{owner}/a.png')).toBe(false);
  });
});

describe('gsPatternProblem', () => {
  it.each(['**/{userId}/**', 'raw-uploads/{userId}/**', 'avatars/{userId}/*.png', '*', '**'])(
    'accepts %s',
    (pattern) => {
      expect(gsPatternProblem(pattern)).toBeUndefined();
    },
  );

  it.each([
    ['', 'empty'],
    ['/raw-uploads/**', '/'],
    ['raw-uploads/', '/'],
    ['raw-uploads//{userId}', 'empty segment'],
    ['raw-uploads/../{userId}/**', '..'],
    ['raw-uploads/a**/x', '**'],
    ['raw-uploads/{uid}/**', 'placeholder'],
    ['raw-uploads/{userId/**', 'placeholder'],
    ['avatar-{userId}.*', 'in a segment with other characters'],
    ['raw-uploads/{userId}x/**', 'in a segment with other characters'],
    ['raw-uploads/x{userId}/**', 'in a segment with other characters'],
    ['raw-uploads/{userId}*/**', 'in a segment with other characters'],
    ['raw-uploads/{userId}{userId}/**', 'in a segment with other characters'],
  ])('refuses %j', (pattern, why) => {
    expect(gsPatternProblem(pattern)).toContain(why);
  });

  it('says why {userId} must be a whole folder, and what to write instead', () => {
    const problem = gsPatternProblem('avatar-{userId}.*');
    expect(problem).toContain('user bob could read avatar-bob.smith.png');
    expect(problem).toContain('raw-uploads/{userId}/**');
  });
});

describe('isSharedGsPattern', () => {
  it.each(['**', '*', 'public/**', 'raw-uploads/*/**', 'raw-uploads/bench/**'])(
    '%s names no owner',
    (pattern) => {
      expect(isSharedGsPattern(pattern)).toBe(true);
    },
  );

  it.each(['raw-uploads/{userId}/**', '**/{userId}/**', '{userId}/*.png'])(
    '%s is bound to the owner',
    (pattern) => {
      expect(isSharedGsPattern(pattern)).toBe(false);
    },
  );
});

describe('judgeGsSource', () => {
  it('by default, only the owner’s raw-uploads folder: where storage.rules let them read', () => {
    expect(DEFAULT_GS_PATHS).toEqual(['raw-uploads/{userId}/**']);
    expect(judgeGsSource('raw-uploads/u1/a.png', 'u1', DEFAULT_GS_PATHS)).toEqual({ ok: true });
    expect(judgeGsSource('raw-uploads/u1/x/y.png', 'u1', DEFAULT_GS_PATHS)).toEqual({ ok: true });
    expect(judgeGsSource('raw-uploads/u2/a.png', 'u1', DEFAULT_GS_PATHS).ok).toBe(false);
    expect(judgeGsSource('raw-uploads/u1/a.png', undefined, DEFAULT_GS_PATHS).ok).toBe(false);
    // The owner's id as a folder elsewhere is not theirs to read (the old default's reach).
    expect(judgeGsSource('moderation/u1/evidence.png', 'u1', DEFAULT_GS_PATHS).ok).toBe(false);
    expect(judgeGsSource('users/u2/blocked/u1/a.png', 'u1', DEFAULT_GS_PATHS).ok).toBe(false);
    expect(judgeGsSource('u1/a.png', 'u1', DEFAULT_GS_PATHS).ok).toBe(false);
  });

  it('refuses the worker’s prefixes whatever the patterns allow', () => {
    for (const prefix of WORKER_PREFIXES) {
      expect(judgeGsSource(`${prefix}u1/a.png`, 'u1', ['**'])).toMatchObject({ ok: false });
    }
  });

  it('covers where the worker really writes its results', () => {
    const result = showcasePath({ userId: 'u1', characterId: 'c1' });
    expect(WORKER_PREFIXES.some((p) => result.startsWith(p))).toBe(true);
    expect(judgeGsSource(result, 'u1', DEFAULT_GS_PATHS).ok).toBe(false);
  });
});
