import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  OVERRIDE_TTL_MS,
  createFirestoreUserQuota,
} from '../../src/adapters/firestore/user-quota.js';
import { settlementWrite } from '../../src/adapters/firestore/usage-docs.js';
import { createLiveJobsReader } from '../../src/adapters/firestore/job-fields.js';
import type { QuotaTicket, UserQuota } from '../../src/jobs/ports.js';
import { startStack, type Stack } from '../support/stack.js';

const requestedAt = Date.parse('2026-11-28T12:00:00Z');
const ticket = (userId: string, jobId: string): QuotaTicket => ({
  userId,
  characterId: `char-${jobId}`,
  jobId,
  requestedAt,
});

describe('showcaseUsage counters (emulator)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack.close();
  });
  const quota = (dailyJobs: number, maxActive = 0) =>
    createFirestoreUserQuota(stack.db, {
      limits: { dailyJobs, maxActive },
      liveJobs: createLiveJobsReader(stack.db, 'characters'),
      slotGraceMs: 60_000,
    });
  /** What a paid job's final write commits to its owner's day (the job store's batch). */
  const settle = async (
    q: UserQuota,
    t: QuotaTicket,
    spent: { credits: number; counted: boolean },
  ): Promise<void> => {
    const settlement = q.settlement(t, spent);
    if (!settlement) return;
    const { ref, data } = settlementWrite(stack.db, settlement, Date.now());
    await ref.set(data, { merge: true });
  };

  it('30 admissions racing through 3 adapters admit exactly the limit', async () => {
    const adapters = [quota(7), quota(7), quota(7)];
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => adapters[i % 3]!.admit(ticket('racer', `job-${i}`))),
    );
    expect(results.filter((r) => r.kind === 'admitted')).toHaveLength(7);
    expect(results.filter((r) => r.kind === 'refused')).toHaveLength(23);
    const doc = (await stack.db.doc('showcaseUsage/day-2026-11-28-racer').get()).data();
    expect(doc?.jobs).toBe(7);
    expect(Object.keys(doc?.jobIds as object)).toHaveLength(7);
  });

  it('counts a jobId once, however often and by whomever it is admitted', async () => {
    const q = quota(2);
    const again = await Promise.all([1, 2, 3, 4].map(() => q.admit(ticket('same', 'job-x'))));
    expect(again.every((r) => r.kind === 'admitted')).toBe(true);
    expect(await q.admit(ticket('same', 'job-y'))).toEqual({ kind: 'admitted', counted: true });
    expect(await q.admit(ticket('same', 'job-z'))).toMatchObject({
      kind: 'refused',
      limit: 2,
      resetsAt: Date.parse('2026-11-29T00:00:00Z'),
    });
    // A refund frees the place, once; refunding twice changes nothing.
    await q.refund(ticket('same', 'job-y'));
    await q.refund(ticket('same', 'job-y'));
    expect(await q.admit(ticket('same', 'job-z'))).toEqual({ kind: 'admitted', counted: true });
    expect(await q.admit(ticket('same', 'job-w'))).toMatchObject({ kind: 'refused' });
    await settle(q, ticket('same', 'job-z'), { credits: 2, counted: true });
    const doc = (await stack.db.doc('showcaseUsage/day-2026-11-28-same').get()).data();
    expect(doc).toMatchObject({ jobs: 2, credits: 2 });
  });

  it('with no daily limit writes nothing at admission and counts a paid job once, at its end', async () => {
    const q = quota(0);
    const day = stack.db.doc('showcaseUsage/day-2026-11-28-free');
    const admissions = await Promise.all(['a', 'b', 'c'].map((j) => q.admit(ticket('free', j))));
    expect(admissions).toEqual(Array(3).fill({ kind: 'admitted', counted: false }));
    expect((await day.get()).exists).toBe(false);
    await settle(q, ticket('free', 'a'), { credits: 2, counted: false });
    await settle(q, ticket('free', 'b'), { credits: 0, counted: false });
    // 'c' paid nothing: its final write carries no settlement, and there is nothing to refund.
    await q.refund(ticket('free', 'c'));
    // No map of jobIds to grow: the document stays the same size however many jobs a day.
    const { updatedAt, ...counts } = (await day.get()).data() ?? {};
    expect(counts).toEqual({ userId: 'free', day: '2026-11-28', jobs: 2, credits: 2 });
    expect(updatedAt).toBeDefined();
  });

  it('an override imposes a limit where none is configured, and lifts one that is', async () => {
    await stack.db.doc('showcaseUsage/limits-capped').set({ dailyJobs: 1 });
    const open = quota(0);
    const capped = await Promise.all(['a', 'b'].map((j) => open.admit(ticket('capped', j))));
    expect(capped.map((r) => r.kind).sort()).toEqual(['admitted', 'refused']);
    expect(capped.find((r) => r.kind === 'admitted')).toEqual({ kind: 'admitted', counted: true });
    await stack.db.doc('showcaseUsage/limits-lifted').set({ dailyJobs: 0 });
    const strict = quota(1);
    const lifted = await Promise.all(['a', 'b'].map((j) => strict.admit(ticket('lifted', j))));
    expect(lifted).toEqual(Array(2).fill({ kind: 'admitted', counted: false }));
  });

  it('keeps an override for OVERRIDE_TTL_MS, but reads it again before refusing a job', async () => {
    let at = Date.parse('2026-11-28T12:00:00Z');
    const q = createFirestoreUserQuota(stack.db, {
      limits: { dailyJobs: 5, maxActive: 0 },
      liveJobs: createLiveJobsReader(stack.db, 'characters'),
      slotGraceMs: 60_000,
      now: () => at,
    });
    expect(await q.admit(ticket('kept', 'a'))).toEqual({ kind: 'admitted', counted: true });
    // Lowered to 1: the limit read a moment ago (5) still applies, without a read.
    await stack.db.doc('showcaseUsage/limits-kept').set({ dailyJobs: 1 });
    expect(await q.admit(ticket('kept', 'b'))).toEqual({ kind: 'admitted', counted: true });
    at += OVERRIDE_TTL_MS;
    expect(await q.admit(ticket('kept', 'c'))).toMatchObject({ kind: 'refused', limit: 1 });
    // Raised to 3 a moment after that read: the refusal reads it again, the job goes through.
    await stack.db.doc('showcaseUsage/limits-kept').set({ dailyJobs: 3 });
    expect(await q.admit(ticket('kept', 'c'))).toEqual({ kind: 'admitted', counted: true });
  });

  it('an override document replaces the configured limit for that user only', async () => {
    await stack.db.doc('showcaseUsage/limits-vip').set({ dailyJobs: 3 });
    const q = quota(1);
    const vip = await Promise.all(['a', 'b', 'c', 'd'].map((j) => q.admit(ticket('vip', j))));
    expect(vip.map((r) => r.kind).sort()).toEqual(['admitted', 'admitted', 'admitted', 'refused']);
    const other = await Promise.all(['a', 'b'].map((j) => q.admit(ticket('plain', j))));
    expect(other.filter((r) => r.kind === 'admitted')).toHaveLength(1);
  });

  it('USER_MAX_ACTIVE slots: racing takers get exactly the limit; a release frees one', async () => {
    const q = quota(0, 2);
    const taken = await Promise.all(
      ['c1', 'c2', 'c3', 'c4', 'c5'].map((c) => q.acquireSlot('busy-user', c)),
    );
    expect(taken.filter((s) => s.kind === 'acquired')).toHaveLength(2);
    const holder = ['c1', 'c2', 'c3', 'c4', 'c5'].find((_, i) => taken[i]?.kind === 'acquired')!;
    // The same character again: covered by its slot, not a holder of it.
    expect(await q.acquireSlot('busy-user', holder)).toEqual({ kind: 'acquired', holder: false });
    await q.releaseSlot('busy-user', holder);
    expect(await q.acquireSlot('busy-user', 'c9')).toEqual({ kind: 'acquired', holder: true });
  });

  it('a slot older than its grace whose job holds no live lease is reclaimed', async () => {
    let clock = 1_000_000;
    const q = createFirestoreUserQuota(stack.db, {
      limits: { dailyJobs: 0, maxActive: 1 },
      liveJobs: createLiveJobsReader(stack.db, 'characters'),
      slotGraceMs: 10_000,
      now: () => clock,
    });
    expect(await q.acquireSlot('crashy', 'dead-job')).toMatchObject({ kind: 'acquired' });
    expect(await q.acquireSlot('crashy', 'next-job')).toMatchObject({ kind: 'busy' });
    clock += 10_001; // the worker that took it crashed before its claim: no character lease
    expect(await q.acquireSlot('crashy', 'next-job')).toEqual({ kind: 'acquired', holder: true });
  });
});
