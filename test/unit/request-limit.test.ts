import { describe, expect, it } from 'vitest';
import {
  countsRequest,
  requestLimitMessage,
  startsEarly,
  withinRequestLimit,
} from '../../src/jobs/request-limit.js';
import {
  asksForAnotherPicture,
  checkSameSource,
  sourceHash,
  sourceToBind,
} from '../../src/jobs/source-binding.js';
import { decideClaim, type ClaimContext, type PreviousJob } from '../../src/jobs/claim.js';
import { JobError } from '../../src/jobs/errors.js';

describe('USER_DAILY_REQUEST_LIMIT: which claims count', () => {
  it('counts a new click by a user, never a recovery or an operator click, and nothing at 0', () => {
    expect(countsRequest({ recovered: false, requestedBy: 'user' }, 5)).toBe(true);
    expect(countsRequest({ recovered: false }, 5)).toBe(true);
    expect(countsRequest({ recovered: true, requestedBy: 'user' }, 5)).toBe(false);
    expect(countsRequest({ recovered: false, requestedBy: 'operator' }, 5)).toBe(false);
    expect(countsRequest({ recovered: false, requestedBy: 'user' }, 0)).toBe(false);
  });

  it('admits exactly the limit in a day', () => {
    expect([0, 1, 4, 5, 6].map((n) => withinRequestLimit(n, 5))).toEqual([
      true,
      true,
      true,
      false,
      false,
    ]);
    expect(withinRequestLimit(1_000_000, 0)).toBe(true);
  });

  it('starts a download before the claim only when the claim cannot refuse it, as far as known', () => {
    expect(startsEarly(4, 0, 5)).toBe(true); // the fifth
    expect(startsEarly(5, 0, 5)).toBe(false); // the sixth: refused by its claim
    expect(startsEarly(3, 2, 5)).toBe(false); // two claims ahead of it take the last places
    expect(startsEarly(3, 1, 5)).toBe(true);
    // Count unknown (this worker's first claim of the user today): only one at a time.
    expect(startsEarly(undefined, 0, 5)).toBe(true);
    expect(startsEarly(undefined, 1, 5)).toBe(false);
    expect(startsEarly(99, 9, 0)).toBe(true); // no limit
  });

  it('tells the user which limit, and when it resets', () => {
    const message = requestLimitMessage(5, Date.parse('2026-12-08T00:00:00Z'));
    expect(message).toContain('5 showcase requests per day');
    expect(message).toContain('every Process click counts');
    expect(message).toContain('2026-12-08T00:00:00Z');
    expect(requestLimitMessage(1, 0)).toContain('1 showcase request per day');
  });
});

describe('a job is bound to its picture', () => {
  it('binds a recovery to its own source, an operator click to the CLI’s URL, a click to the document’s', () => {
    const own = { url: 'gs://b/raw-uploads/u/a.png', sha256: 'aa' };
    expect(sourceToBind({ recovered: own, clickedUrl: 'x', imageUrl: 'new' })).toBe(own);
    expect(sourceToBind({ clickedUrl: 'checked', imageUrl: 'new' })).toEqual({ url: 'checked' });
    expect(sourceToBind({ imageUrl: 'new' })).toEqual({ url: 'new' });
    expect(sourceToBind({ imageUrl: undefined })).toBeUndefined();
  });

  it('sees a request for another picture only where the document shows a click for one', () => {
    const source = { url: 'a' };
    expect(asksForAnotherPicture('removing-background', 'b', source)).toBe(true);
    expect(asksForAnotherPicture('removing-background', 'a', source)).toBe(false); // coalesced
    expect(asksForAnotherPicture('upscaling', 'b', source)).toBe(false); // changed, no click
    expect(asksForAnotherPicture('removing-background', 'b', undefined)).toBe(false);
    expect(asksForAnotherPicture('removing-background', 42, source)).toBe(false);
  });

  it('fails a later attempt that reads other bytes with SOURCE_CHANGED', () => {
    const bytes = Buffer.from('picture');
    const sha256 = sourceHash(bytes);
    expect(sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(() => checkSameSource({ url: 'a', sha256 }, sha256)).not.toThrow();
    expect(() => checkSameSource({ url: 'a' }, sha256)).not.toThrow(); // not read before
    expect(() => checkSameSource(undefined, sha256)).not.toThrow();
    let thrown: unknown;
    try {
      checkSameSource({ url: 'a', sha256 }, sourceHash(Buffer.from('swapped')));
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(JobError);
    expect((thrown as JobError).code).toBe('SOURCE_CHANGED');
    expect((thrown as JobError).transient).toBe(false);
  });

  describe('in the claim decision', () => {
    const NOW = Date.parse('2026-11-28T12:00:00Z');
    const ctx: ClaimContext = {
      characterId: 'c',
      owner: 'w',
      nowMs: NOW,
      leaseMs: 60_000,
      maxAttempts: 3,
      documentUpdatedAtMs: NOW - 1_000,
      imageUrl: 'gs://b/raw-uploads/u/now.png',
      newJobId: () => 'job-new',
    };
    const sourceOf = (previous: PreviousJob | undefined) => {
      const decision = decideClaim(previous, 'removing-background', ctx);
      if (decision.kind !== 'claim') throw new Error(decision.kind);
      expect(decision.lease.source).toEqual(decision.job.source);
      return decision.job.source;
    };
    const old = { url: 'gs://b/raw-uploads/u/then.png', sha256: 'ab' };

    it('a new click takes the picture the claimed version names', () => {
      expect(sourceOf(undefined)).toEqual({ url: ctx.imageUrl });
      // A finished job's source is the old request's: not carried over.
      expect(
        sourceOf({ jobId: 'j', state: 'complete', attempts: 1, requestedAt: 0, source: old }),
      ).toEqual({ url: ctx.imageUrl });
    });

    it('a recovered or released job keeps its recorded picture, hash included', () => {
      const running = { jobId: 'j', attempts: 1, requestedAt: NOW - 9_000, source: old };
      expect(sourceOf({ ...running, state: 'running' })).toEqual(old);
      expect(sourceOf({ ...running, state: 'released' })).toEqual(old);
      // A record from before sources were recorded: the document's, as then.
      expect(sourceOf({ jobId: 'j', state: 'running', attempts: 1, requestedAt: 0 })).toEqual({
        url: ctx.imageUrl,
      });
    });

    it('an operator click takes the URL its CLI checked', () => {
      const mark = { jobId: 'j', attempts: 1, click: 'operator' as const };
      expect(sourceOf({ ...mark, clickedUrl: 'gs://b/raw-uploads/u/checked.png' })).toEqual({
        url: 'gs://b/raw-uploads/u/checked.png',
      });
      expect(sourceOf(mark)).toEqual({ url: ctx.imageUrl }); // a mark from an older CLI
    });
  });
});
