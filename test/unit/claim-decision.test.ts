import { describe, expect, it } from 'vitest';
import {
  decideClaim,
  isRecovery,
  requestedByOf,
  type ClaimContext,
  type PreviousJob,
} from '../../src/jobs/claim.js';

const NOW = Date.parse('2026-11-28T12:00:00Z');
const CLICKED = NOW - 2_000; // the document's update time: when the click was made
const FIRST_CLICK = NOW - 600_000;

const ctx = (over: Partial<ClaimContext> = {}): ClaimContext => ({
  characterId: 'char-1',
  owner: 'worker-b',
  nowMs: NOW,
  leaseMs: 60_000,
  maxAttempts: 3,
  documentUpdatedAtMs: CLICKED,
  newJobId: () => 'job-new',
  ...over,
});

const previous = (over: Partial<PreviousJob> = {}): PreviousJob => ({
  jobId: 'job-old',
  state: 'running',
  attempts: 1,
  requestedAt: FIRST_CLICK,
  requestedBy: 'user',
  ...over,
});

describe('claim decision: a new click', () => {
  const newClick = {
    kind: 'claim',
    job: {
      jobId: 'job-new',
      state: 'running',
      owner: 'worker-b',
      leaseExpiresAt: NOW + 60_000,
      attempts: 1,
      requestedAt: CLICKED,
      claimedAt: NOW,
      stage: 'removing-background',
      requestedBy: 'user',
    },
    lease: {
      characterId: 'char-1',
      jobId: 'job-new',
      owner: 'worker-b',
      attempt: 1,
      recovered: false,
      statusAtClaim: 'removing-background',
      expiresAt: NOW + 60_000,
      requestedAt: CLICKED,
      requestedBy: 'user',
    },
  };

  it('no job yet: a fresh jobId, attempt 1, requested when the document was updated', () => {
    expect(decideClaim(undefined, 'removing-background', ctx())).toEqual(newClick);
  });

  it('after a complete or failed job: a new request, its bill not carried', () => {
    for (const state of ['complete', 'failed'] as const) {
      const done = previous({
        state,
        attempts: 3,
        calls: { removeBackground: 1, upscale: 1 },
        credits: 2,
      });
      expect(decideClaim(done, 'removing-background', ctx())).toEqual(newClick);
    }
  });

  it('no update time known: requested now', () => {
    const decision = decideClaim(undefined, 'upscaling', ctx({ documentUpdatedAtMs: undefined }));
    expect(decision).toMatchObject({
      kind: 'claim',
      job: { requestedAt: NOW, stage: 'upscaling' },
      lease: { requestedAt: NOW, statusAtClaim: 'upscaling' },
    });
  });

  it("an operator's click mark makes the request the operator's", () => {
    const marked = { click: 'operator' } as PreviousJob; // the CLI writes only the mark
    expect(decideClaim(marked, 'removing-background', ctx())).toMatchObject({
      kind: 'claim',
      job: { jobId: 'job-new', attempts: 1, requestedAt: CLICKED, requestedBy: 'operator' },
      lease: { recovered: false, requestedBy: 'operator' },
    });
    const afterDone = previous({ state: 'complete', requestedBy: 'user', click: 'operator' });
    expect(decideClaim(afterDone, 'removing-background', ctx())).toMatchObject({
      lease: { requestedBy: 'operator' },
    });
  });
});

describe('claim decision: the same request recovered', () => {
  it('a running job without its click time is refused, not dated anew (a second day)', () => {
    expect(() => decideClaim(previous({ requestedAt: undefined }), 'upscaling', ctx())).toThrow(
      /without requestedAt/,
    );
  });

  it('a running job (lease expired): attempt + 1, same jobId and requestedAt, its bill kept', () => {
    const running = previous({
      attempts: 1,
      calls: { removeBackground: 1, upscale: 0 },
      credits: 1,
    });
    let minted = 0;
    const decision = decideClaim(
      running,
      'upscaling',
      ctx({
        newJobId: () => {
          minted += 1;
          return 'job-new';
        },
      }),
    );
    expect(decision).toEqual({
      kind: 'claim',
      job: {
        jobId: 'job-old',
        state: 'running',
        owner: 'worker-b',
        leaseExpiresAt: NOW + 60_000,
        attempts: 2,
        requestedAt: FIRST_CLICK,
        claimedAt: NOW,
        stage: 'upscaling',
        requestedBy: 'user',
        calls: { removeBackground: 1, upscale: 0 },
        credits: 1,
      },
      lease: {
        characterId: 'char-1',
        jobId: 'job-old',
        owner: 'worker-b',
        attempt: 2,
        recovered: true,
        statusAtClaim: 'upscaling',
        expiresAt: NOW + 60_000,
        requestedAt: FIRST_CLICK,
        requestedBy: 'user',
        creditsBefore: 1,
      },
    });
    expect(minted).toBe(0);
  });

  it('nothing spent before: no creditsBefore', () => {
    const decision = decideClaim(previous({ credits: 0 }), 'upscaling', ctx());
    expect(decision.kind === 'claim' && 'creditsBefore' in decision.lease).toBe(false);
  });

  it('a released job resumes without using up an attempt', () => {
    expect(
      decideClaim(previous({ state: 'released', attempts: 2 }), 'finalizing', ctx()),
    ).toMatchObject({
      kind: 'claim',
      job: { jobId: 'job-old', attempts: 2, requestedAt: FIRST_CLICK },
      lease: { attempt: 2, recovered: true },
    });
  });

  it('a recovered job keeps who clicked, whatever mark the record carries', () => {
    const operators = previous({ requestedBy: 'operator' });
    expect(decideClaim(operators, 'upscaling', ctx())).toMatchObject({
      job: { requestedBy: 'operator' },
      lease: { requestedBy: 'operator' },
    });
    const users = previous({ requestedBy: 'user', click: 'operator' });
    expect(decideClaim(users, 'upscaling', ctx())).toMatchObject({
      lease: { requestedBy: 'user' },
    });
    // Written before requestedBy existed: the user's.
    const old = previous({ requestedBy: undefined });
    expect(decideClaim(old, 'upscaling', ctx())).toMatchObject({
      lease: { requestedBy: 'user' },
    });
  });
});

describe('claim decision: attempts exhausted', () => {
  it('a running job on its last attempt is exhausted, with the attempts it made', () => {
    expect(decideClaim(previous({ attempts: 3 }), 'upscaling', ctx())).toEqual({
      kind: 'exhausted',
      attempts: 3,
    });
    expect(decideClaim(previous({ attempts: 2 }), 'upscaling', ctx())).toMatchObject({
      kind: 'claim',
      lease: { attempt: 3 },
    });
  });

  it('a released job on its last attempt is resumed, past it exhausted', () => {
    expect(
      decideClaim(previous({ state: 'released', attempts: 3 }), 'upscaling', ctx()),
    ).toMatchObject({ kind: 'claim', lease: { attempt: 3 } });
    expect(decideClaim(previous({ state: 'released', attempts: 4 }), 'upscaling', ctx())).toEqual({
      kind: 'exhausted',
      attempts: 3,
    });
  });

  it('a new click is never exhausted by an earlier request', () => {
    const failed = previous({ state: 'failed', attempts: 3 });
    expect(decideClaim(failed, 'removing-background', ctx())).toMatchObject({
      kind: 'claim',
      lease: { attempt: 1 },
    });
  });
});

describe('new click or recovery', () => {
  it('only running and released jobs are recoveries', () => {
    expect(isRecovery(undefined)).toBe(false);
    expect(isRecovery({})).toBe(false);
    for (const state of ['complete', 'failed'] as const) expect(isRecovery({ state })).toBe(false);
    for (const state of ['running', 'released'] as const) expect(isRecovery({ state })).toBe(true);
  });

  it('requestedByOf: the mark for a new click, the record for a recovery', () => {
    expect(requestedByOf(undefined)).toBe('user');
    expect(requestedByOf({ click: 'operator' })).toBe('operator');
    expect(requestedByOf({ state: 'failed', requestedBy: 'operator' })).toBe('user');
    expect(requestedByOf({ state: 'released', requestedBy: 'operator' })).toBe('operator');
  });
});
