import { lastValueFrom, toArray } from 'rxjs';
import { describe, expect, it, vi } from 'vitest';
import { JobError } from '../../src/jobs/errors.js';
import type {
  Admission,
  ClaimResult,
  DaySettlement,
  JobOutcome,
  JobRequest,
  JobStore,
  Lease,
  PaidImage,
  QuotaTicket,
  SlotResult,
  UserQuota,
} from '../../src/jobs/ports.js';
import type { InProgressStatus } from '../../src/jobs/status.js';
import { createJobRunner } from '../../src/pipeline/run-job.js';
import { createStatusSink } from '../../src/pipeline/status-sink.js';
import { workKey } from '../../src/pipeline/work-key.js';
import { deferred, recordingLog, settle } from './fakes.js';

const RAW = Buffer.from('raw');
/** A PNG header (all a cached result needs to be read back): 64×64. */
const CACHED_PNG = (() => {
  const png = Buffer.alloc(33);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(png, 0);
  png.writeUInt32BE(13, 8);
  png.write('IHDR', 12, 'ascii');
  png.writeUInt32BE(64, 16);
  png.writeUInt32BE(64, 20);
  return png;
})();
const request: JobRequest = { characterId: 'c1', origin: 'listener', seenAt: 0, ownerId: 'u1' };
const lease: Lease = {
  characterId: 'c1',
  jobId: 'job-1',
  owner: 'w1',
  attempt: 1,
  recovered: false,
  statusAtClaim: 'removing-background',
  expiresAt: 60_000,
  requestedAt: Date.parse('2026-11-28T10:00:00Z'),
  requestedBy: 'user',
};
const documentData = {
  meta: { userId: 'u1' },
  visuals: {
    imageUrl: 'gs://b/raw-uploads/u1/c1.png',
    showcaseProcessingStatus: 'removing-background',
  },
};

function setup(
  opts: {
    admit?: () => Promise<Admission>;
    acquire?: () => Promise<SlotResult>;
    slots?: boolean;
    lease?: Partial<Lease>;
    claim?: ClaimResult;
    cachedResult?: boolean;
    fetch?: () => Promise<Buffer>;
    upscale?: () => Promise<PaidImage>;
    request?: Partial<JobRequest>;
  } = {},
) {
  const events: string[] = [];
  const claim = vi.fn(() =>
    Promise.resolve<ClaimResult>(
      opts.claim ?? {
        kind: 'claimed',
        lease: { ...lease, ...opts.lease },
        document: documentData,
      },
    ),
  );
  const store: JobStore = {
    claim,
    renew: (l) => Promise.resolve(l),
    writeStage: (l, status: InProgressStatus) => {
      events.push(`stage:${status}`);
      return Promise.resolve(l);
    },
    complete: (_l, _r, _u, settlement) => {
      events.push('complete');
      if (settlement) events.push(`${settled(settlement)}@complete`);
      return Promise.resolve();
    },
    fail: (_l, error: JobError, _s, _u, settlement) => {
      events.push(`fail:${error.code}:${error.message}`);
      if (settlement) events.push(`${settled(settlement)}@fail`);
      return Promise.resolve();
    },
    release: () => Promise.resolve(),
  };
  const admit = vi.fn((_t: QuotaTicket) => {
    events.push('admit');
    return opts.admit
      ? opts.admit()
      : Promise.resolve<Admission>({ kind: 'admitted', counted: true });
  });
  // The adapter decides what to write; the fake hands the pipeline's inputs to the final write.
  const settlement = vi.fn(
    (t: QuotaTicket, spent: { credits: number; counted: boolean }): DaySettlement => ({
      userId: t.userId,
      requestedAt: t.requestedAt,
      credits: spent.credits,
      countJob: !spent.counted,
    }),
  );
  const refund = vi.fn((_t: QuotaTicket) => {
    events.push('settle:refund');
    return Promise.resolve();
  });
  const acquireSlot = vi.fn(() => {
    events.push('acquire');
    return opts.acquire
      ? opts.acquire()
      : Promise.resolve<SlotResult>({ kind: 'acquired', holder: true });
  });
  const releaseSlot = vi.fn(() => {
    events.push('release-slot');
    return Promise.resolve();
  });
  const quota: UserQuota = {
    slotsEnabled: opts.slots ?? false,
    admit,
    settlement,
    refund,
    acquireSlot,
    releaseSlot,
  };
  const removeBackground = vi.fn(() => {
    events.push('remove-background');
    return Promise.resolve({ image: Buffer.from('cut'), credits: 1 });
  });
  const upscale = vi.fn(() => {
    events.push('upscale');
    return opts.upscale
      ? opts.upscale()
      : Promise.resolve({ image: Buffer.from('up'), credits: 1 });
  });
  const fetch = vi.fn(() => {
    events.push('fetch');
    return opts.fetch ? opts.fetch() : Promise.resolve(RAW);
  });
  const size = { width: 100, height: 100 };
  const runJob = createJobRunner({
    store,
    sink: createStatusSink(store),
    log: recordingLog(),
    quota,
    tools: {
      fetcher: { fetch },
      images: { removeBackground, upscale },
      results: { savePng: (path) => Promise.resolve(`https://x/${path}`) },
      cache: {
        findResult: (key) =>
          Promise.resolve(opts.cachedResult && key === workKey(RAW, 2) ? CACHED_PNG : undefined),
        saveResult: () => Promise.resolve(),
        findCheckpoint: () => Promise.resolve(undefined),
        saveCheckpoint: () => Promise.resolve(),
        clearCheckpoints: () => Promise.resolve(),
      },
      resultCache: true,
      steps: {
        prepareSource: (b) => Promise.resolve({ data: b, size }),
        prepareForUpscale: (b) => Promise.resolve({ data: b, size }),
        alphaMask: (b) => Promise.resolve(b),
        finalizePng: (b) => Promise.resolve({ data: b, size: { width: 200, height: 200 } }),
      },
      upscaleFactor: 2,
    },
    timing: {
      retry: { maxTries: 2, baseMs: 1, maxMs: 2, maxRetryAfterMs: 5 },
      renewEveryMs: 60_000,
    },
  });
  const run = async (): Promise<JobOutcome> => {
    const outcomes = await lastValueFrom(runJob({ ...request, ...opts.request }).pipe(toArray()));
    expect(outcomes).toHaveLength(1);
    return outcomes[0]!;
  };
  return {
    run,
    events,
    mocks: {
      claim,
      admit,
      settlement,
      refund,
      acquireSlot,
      releaseSlot,
      removeBackground,
      upscale,
      fetch,
    },
  };
}

function settled(s: DaySettlement): string {
  return `settle:paid:${s.credits}${s.countJob ? ':uncounted' : ''}`;
}

describe('run-job with per-user limits', () => {
  it('asks for admission alongside the source fetch, and makes no paid call before it', async () => {
    const fetched = deferred<Buffer>();
    const admitted = deferred<Admission>();
    const { run, events, mocks } = setup({
      fetch: () => fetched.promise,
      admit: () => admitted.promise,
    });
    const done = run();
    await settle();
    // Both started, neither finished: the admission adds no round trip to the job's path.
    expect(events).toEqual(expect.arrayContaining(['fetch', 'admit']));
    fetched.resolve(RAW);
    await settle();
    await settle();
    expect(mocks.removeBackground).not.toHaveBeenCalled();
    admitted.resolve({ kind: 'admitted', counted: true });
    expect(await done).toMatchObject({ kind: 'complete' });
    expect(mocks.admit.mock.calls[0]?.[0]).toEqual({
      userId: 'u1',
      characterId: 'c1',
      jobId: 'job-1',
      requestedAt: lease.requestedAt,
    });
    // Carried by the final write itself: counted when the job ends, in the same commit.
    expect(events.slice(-2)).toEqual(['complete', 'settle:paid:2@complete']);
  });

  it('fails a refused job with USER_QUOTA_EXCEEDED, the limit and reset time, no ClipDrop call', async () => {
    const resetsAt = Date.parse('2026-11-29T00:00:00Z');
    const { run, events, mocks } = setup({
      admit: () => Promise.resolve({ kind: 'refused', limit: 5, resetsAt }),
    });
    expect(await run()).toMatchObject({ kind: 'failed', code: 'USER_QUOTA_EXCEEDED' });
    expect(mocks.removeBackground).not.toHaveBeenCalled();
    expect(mocks.upscale).not.toHaveBeenCalled();
    const failure = events.find((e) => e.startsWith('fail:'));
    expect(failure).toContain('USER_QUOTA_EXCEEDED');
    expect(failure).toContain('limit of 5 showcase jobs per day');
    expect(failure).toContain('2026-11-29T00:00:00Z');
    // Never counted (refused): nothing to add, nothing to refund.
    expect(mocks.settlement).not.toHaveBeenCalled();
    expect(mocks.refund).not.toHaveBeenCalled();
  });

  it('a cache hit completes even over the limit', async () => {
    const { run, mocks } = setup({
      cachedResult: true,
      admit: () => Promise.resolve({ kind: 'refused', limit: 5, resetsAt: 0 }),
    });
    expect(await run()).toMatchObject({ kind: 'complete' });
    expect(mocks.removeBackground).not.toHaveBeenCalled();
  });

  it('refunds a cache hit once its admission has been counted, never before', async () => {
    const admitted = deferred<Admission>();
    const { run, events } = setup({ cachedResult: true, admit: () => admitted.promise });
    const done = run();
    for (let i = 0; i < 10; i++) await settle();
    expect(events).toContain('complete');
    expect(events.some((e) => e.startsWith('settle:'))).toBe(false);
    admitted.resolve({ kind: 'admitted', counted: true });
    expect(await done).toMatchObject({ kind: 'complete' });
    expect(events.slice(-1)).toEqual(['settle:refund']);
  });

  it('refunds a job that failed before any paid call', async () => {
    const { run, events } = setup({
      fetch: () => Promise.reject(new JobError('SOURCE_NOT_FOUND')),
    });
    expect(await run()).toMatchObject({ kind: 'failed', code: 'SOURCE_NOT_FOUND' });
    expect(events.slice(-1)).toEqual(['settle:refund']);
  });

  it('with no daily limit, counts a paid job in its final write, and an unpaid one not at all', async () => {
    const unlimited = () => Promise.resolve<Admission>({ kind: 'admitted', counted: false });
    const paid = setup({ admit: unlimited });
    expect(await paid.run()).toMatchObject({ kind: 'complete' });
    // Counted now, with its credits: the admission wrote nothing.
    expect(paid.events.slice(-1)).toEqual(['settle:paid:2:uncounted@complete']);
    const hit = setup({ admit: unlimited, cachedResult: true });
    expect(await hit.run()).toMatchObject({ kind: 'complete' });
    expect(hit.events.some((e) => e.startsWith('settle:'))).toBe(false);
  });

  it('a job that paid and then failed carries its settlement in the failed write', async () => {
    const { run, events } = setup({
      upscale: () => Promise.reject(new JobError('CLIPDROP_REJECTED')),
    });
    expect(await run()).toMatchObject({ kind: 'failed', code: 'CLIPDROP_REJECTED' });
    expect(events.slice(-1)).toEqual(['settle:paid:1@fail']);
  });

  it('does not count a click made by the operator CLI', async () => {
    const { run, mocks } = setup({ lease: { requestedBy: 'operator' } });
    expect(await run()).toMatchObject({ kind: 'complete' });
    expect(mocks.admit).not.toHaveBeenCalled();
    expect(mocks.settlement).not.toHaveBeenCalled();
    expect(mocks.refund).not.toHaveBeenCalled();
  });

  it('keeps a recovered job counted even when this attempt paid nothing', async () => {
    const { run, events } = setup({ cachedResult: true, lease: { recovered: true, attempt: 2 } });
    expect(await run()).toMatchObject({ kind: 'complete' });
    expect(events.slice(-1)).toEqual(['settle:paid:0@complete']);
  });

  it('adds the credits of earlier attempts to a recovered job’s settlement', async () => {
    const { run, events } = setup({ lease: { recovered: true, attempt: 2, creditsBefore: 1 } });
    expect(await run()).toMatchObject({ kind: 'complete' });
    // One credit paid before the crash, two in this attempt.
    expect(events.slice(-1)).toEqual(['settle:paid:3@complete']);
  });

  it('defers a job whose owner is at USER_MAX_ACTIVE: no claim, nothing written', async () => {
    const { run, events, mocks } = setup({
      slots: true,
      acquire: () => Promise.resolve({ kind: 'busy', limit: 2 }),
    });
    expect(await run()).toMatchObject({ kind: 'deferred' });
    expect(mocks.claim).not.toHaveBeenCalled();
    expect(events).toEqual(['acquire']);
  });

  it('a fresh click deferred at USER_MAX_ACTIVE starts no download; one with the slot starts it after', async () => {
    // A click seen by the listener carries its document: its download starts with the claim.
    const fresh = { request: { document: documentData } };
    const held = setup({
      ...fresh,
      slots: true,
      acquire: () => Promise.resolve({ kind: 'busy', limit: 1 }),
    });
    expect(await held.run()).toMatchObject({ kind: 'deferred' });
    expect(held.events).toEqual(['acquire']);

    const slotted = setup({ ...fresh, slots: true });
    expect(await slotted.run()).toMatchObject({ kind: 'complete' });
    expect(slotted.events.filter((e) => e === 'acquire' || e === 'fetch')).toEqual([
      'acquire',
      'fetch',
    ]);
  });

  it('a fresh click whose slot another worker took for it downloads only once claimed here', async () => {
    const covered = {
      request: { document: documentData },
      slots: true,
      acquire: () => Promise.resolve<SlotResult>({ kind: 'acquired', holder: false }),
    };
    // That worker holds the job: this one's claim is refused, with no download.
    const held = setup({ ...covered, claim: { kind: 'skipped', reason: 'held' } });
    expect(await held.run()).toMatchObject({ kind: 'skipped' });
    expect(held.events).toEqual(['acquire']);
    // Claimed here after all: the job fetches its source itself.
    const claimed = setup(covered);
    expect(await claimed.run()).toMatchObject({ kind: 'complete' });
    expect(claimed.events.filter((e) => e === 'fetch')).toEqual(['fetch']);
    expect(claimed.mocks.claim.mock.invocationCallOrder[0]).toBeLessThan(
      claimed.mocks.fetch.mock.invocationCallOrder[0] ?? 0,
    );
  });

  it('takes a slot before the claim and gives it back after the final write', async () => {
    const { run, events } = setup({ slots: true });
    expect(await run()).toMatchObject({ kind: 'complete' });
    expect(events[0]).toBe('acquire');
    expect(events.indexOf('release-slot')).toBeGreaterThan(events.indexOf('complete'));
  });

  it('gives the slot back when the claim is skipped because the job is over', async () => {
    const { run, events } = setup({
      slots: true,
      claim: { kind: 'skipped', reason: 'not-requested' },
    });
    expect(await run()).toMatchObject({ kind: 'skipped' });
    expect(events).toEqual(['acquire', 'release-slot']);
  });

  // Two workers see the same click: one takes the slot, the other (covered by it) wins the
  // claim. Freeing it here would let a second job of the owner start beside the running one.
  it('keeps the slot it took when the claim finds the job held: its runner gives it back', async () => {
    const { run, events } = setup({
      slots: true,
      claim: { kind: 'skipped', reason: 'held' },
    });
    expect(await run()).toMatchObject({ kind: 'skipped', code: 'held' });
    expect(events).toEqual(['acquire']);
  });

  it('gives back, when the job ends, a slot another worker took for the same click', async () => {
    const { run, events } = setup({
      slots: true,
      acquire: () => Promise.resolve({ kind: 'acquired', holder: false }),
    });
    expect(await run()).toMatchObject({ kind: 'complete' });
    expect(events.indexOf('release-slot')).toBeGreaterThan(events.indexOf('complete'));
  });

  it('a job that is covered by a slot and skipped leaves the slot to its taker', async () => {
    const { run, events } = setup({
      slots: true,
      acquire: () => Promise.resolve({ kind: 'acquired', holder: false }),
      claim: { kind: 'skipped', reason: 'not-requested' },
    });
    expect(await run()).toMatchObject({ kind: 'skipped' });
    expect(events).toEqual(['acquire']);
  });

  it('takes no slot for an operator click', async () => {
    const { run, mocks } = setup({ slots: true, request: { requestedBy: 'operator' } });
    expect(await run()).toMatchObject({ kind: 'complete' });
    expect(mocks.acquireSlot).not.toHaveBeenCalled();
  });
});
