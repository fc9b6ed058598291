import { describe, expect, it } from 'vitest';
import { clickNote } from '../../src/cli/batch.js';
import { stillFailed } from '../../src/cli/click.js';
import { limitRequest } from '../../src/console/actions.js';
import { RETRY_ALL_LIMIT } from '../../src/console/queries.js';
import { ERROR_CODE, pickFailures } from '../../src/console/retry-code.js';

const form = (entries: Record<string, string>) => new Map(Object.entries(entries));

describe("the console's Set limits (showcase-worker limit's rule)", () => {
  it('takes each limit given; an empty field is left as it is', () => {
    expect(limitRequest(form({ user: 'u1', daily: '3', active: '' }))).toEqual({
      userId: 'u1',
      change: { dailyJobs: 3 },
    });
    expect(limitRequest(form({ user: ' u1 ', daily: 'default', active: ' 0 ' }))).toEqual({
      userId: 'u1',
      change: { dailyJobs: 'default', maxActive: 0 },
    });
  });

  it('refuses what the CLI refuses, in its words, naming the field', () => {
    expect(limitRequest(form({ user: 'u1', daily: '10001' }))).toEqual({
      problem: 'daily jobs must be at most 10000; for more, 0 (no limit)',
    });
    expect(limitRequest(form({ user: 'u1', active: '-2' }))).toEqual({
      problem: 'jobs at once must be a whole number (0 = no limit) or "default", not "-2"',
    });
    expect(limitRequest(form({ user: 'a/b', daily: '1' }))).toEqual({
      problem: '"a/b" is not a valid user id',
    });
    expect(limitRequest(form({ daily: '1' }))).toEqual({ problem: '"" is not a valid user id' });
    expect(limitRequest(form({ user: 'u1', daily: ' ', active: '' }))).toMatchObject({
      problem: expect.stringMatching(/^give daily jobs or jobs at once/) as unknown,
    });
  });
});

describe('Retry all of a code', () => {
  const NOW = Date.parse('2026-03-01T12:00:00Z');
  const since = NOW - 24 * 3_600_000;
  // Newest first, as the query reads them.
  const docs = [
    { id: 'new', at: NOW - 1_000 },
    { id: 'mid', at: NOW - 60_000 },
    { id: 'old', at: NOW - 3_600_000 },
    { id: 'no-time', at: undefined },
    { id: 'yesterday', at: since - 1 },
  ];

  it('clicks the failures in the window, oldest first, as retry-failed does', () => {
    expect(pickFailures(docs, since)).toEqual({ ids: ['old', 'mid', 'new'], more: false });
  });

  it('never more than the preview showed: failures since are not clicked unseen', () => {
    expect(pickFailures(docs, since, 2)).toEqual({ ids: ['old', 'mid'], more: true });
    expect(pickFailures(docs, since, 0)).toEqual({ ids: [], more: true });
  });

  it(`never more than ${RETRY_ALL_LIMIT} in one run`, () => {
    const many = Array.from({ length: RETRY_ALL_LIMIT + 1 }, (_, i) => ({
      id: `f${i}`,
      at: NOW - i,
    }));
    const picked = pickFailures(many, since, 1_000);
    expect(picked.ids).toHaveLength(RETRY_ALL_LIMIT);
    expect(picked.more).toBe(true);
    expect(picked.ids[0]).toBe(`f${RETRY_ALL_LIMIT}`);
  });

  it('takes error codes only', () => {
    for (const code of ['SOURCE_NOT_FOUND', 'UNKNOWN', 'CLIPDROP_HTTP_500']) {
      expect(ERROR_CODE.test(code), code).toBe(true);
    }
    for (const code of ['', 'source', 'A B', 'A/B', `A${'B'.repeat(64)}`]) {
      expect(ERROR_CODE.test(code), code).toBe(false);
    }
  });

  it('re-checks each character in its click: still failed, with the code it was selected for', () => {
    const wanted = stillFailed(['SOURCE_NOT_FOUND']);
    const failed = (code: string) => ({
      showcaseProcessingStatus: 'failed',
      showcaseProcessingError: { code },
    });
    expect(wanted(failed('SOURCE_NOT_FOUND'))).toBeUndefined();
    expect(wanted(failed('CLIPDROP_RATE_LIMITED'))).toBe('now failed with CLIPDROP_RATE_LIMITED');
    expect(wanted({ showcaseProcessingStatus: 'complete' })).toBe('now complete');
    expect(wanted({})).toBe('now not requested');
  });

  it('tallies why a click was not made', () => {
    expect(clickNote({ kind: 'clicked', previous: 'failed' })).toBe('enqueued');
    expect(clickNote({ kind: 'changed', reason: 'now complete' })).toBe('skipped: now complete');
    expect(clickNote({ kind: 'in-progress', status: 'upscaling' })).toBe(
      'skipped: in progress (upscaling)',
    );
    expect(clickNote({ kind: 'missing' })).toBe('skipped: deleted');
    expect(clickNote({ kind: 'forbidden', reason: 'host' })).toBe(
      'refused: source not allowed (host)',
    );
  });
});
