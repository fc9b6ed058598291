/**
 * A write whose answer is lost (gRPC UNKNOWN after it landed) is recognised by the read that
 * follows, by its `writeId`: the claim is not refused as someone else's, a bill is not counted
 * twice, and a terminal write is not taken for a lost lease.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DocumentData, DocumentReference } from 'firebase-admin/firestore';
import { createFirestoreJobStore } from '../../src/adapters/firestore/job-store.js';
import { createFirestoreUserQuota } from '../../src/adapters/firestore/user-quota.js';
import { createLiveJobsReader } from '../../src/adapters/firestore/job-fields.js';
import type {
  ClaimResult,
  DaySettlement,
  JobRequest,
  JobStore,
  OwnedWrite,
  Usage,
  Lease,
} from '../../src/jobs/ports.js';
import { WriteOutcomeUnknownError } from '../../src/jobs/ports.js';
import { createStatusSink } from '../../src/pipeline/status-sink.js';
import { losingAnswers } from '../support/lost-answers.js';
import { startStack, type Stack } from '../support/stack.js';

type Job = Record<string, unknown> & { calls?: Record<string, number>; credits?: number };

const RESULT = { url: 'https://example.test/x.png', path: 'x.png', width: 2, height: 2, bytes: 1 };
/** A completion as run-job writes it: two paid calls, two credits. */
const complete = (store: JobStore, lease: Lease, settlement?: DaySettlement) =>
  store.complete(
    lease,
    RESULT,
    ownedWrite({ calls: { removeBackground: 1, upscale: 1 }, credits: 2 }),
    settlement,
  );
/** A write as the status sink makes it: its own id, the usage since the last one. */
const ownedWrite = (usage: Usage): OwnedWrite => ({ id: randomUUID(), usage });
const visualsOf = async (ref: DocumentReference) =>
  ((await ref.get()).data() as DocumentData).visuals as Record<string, unknown>;

/** A paid job's day usage, not yet counted (no daily limit): the job and its 2 credits. */
const paidJobOf = (userId: string, lease: Lease): DaySettlement => ({
  userId,
  requestedAt: lease.requestedAt,
  credits: 2,
  countJob: true,
});

describe('writes whose answers are lost (emulator)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack.close();
  });

  // `answerMs`: only where a test needs the store to give up on a write (a slow emulator
  // would otherwise turn a plain write into a read-back).
  const setup = async (id: string, answerMs?: number) => {
    const faults = losingAnswers(stack.db);
    const reads = { count: 0 };
    const store = createFirestoreJobStore(faults.db, {
      collection: 'characters',
      owner: 'worker-a',
      leaseMs: 60_000,
      maxAttempts: 3,
      ...(answerMs ? { answerMs } : {}),
      onOps: (_id, r) => {
        reads.count += r;
      },
    });
    const ref = stack.db.doc(`characters/${id}`);
    await ref.set({
      meta: { userId: 'user-1' },
      visuals: { showcaseProcessingStatus: 'removing-background' },
    });
    const snap = await ref.get();
    const fromListener: JobRequest = {
      characterId: id,
      origin: 'listener',
      seenAt: Date.now(),
      document: snap.data(),
      updateTime: { seconds: snap.updateTime!.seconds, nanoseconds: snap.updateTime!.nanoseconds },
    };
    const fromSweep: JobRequest = { characterId: id, origin: 'sweep', seenAt: Date.now() };
    const job = async (): Promise<Job> =>
      ((await ref.get()).data() as { visuals: { showcaseJob: Job } }).visuals.showcaseJob;
    return { faults, store, ref, fromListener, fromSweep, job, reads };
  };
  const daysOf = async (userId: string) =>
    (await stack.db.collection('showcaseUsage').where('userId', '==', userId).get()).docs.map((d) =>
      d.data(),
    );
  const leaseOf = (claim: ClaimResult): Lease => {
    expect(claim.kind).toBe('claimed');
    return (claim as Extract<ClaimResult, { kind: 'claimed' }>).lease;
  };

  it('a fresh claim whose answer is lost is still ours, and the next write needs no read', async () => {
    const { faults, store, fromListener, job, reads } = await setup('lost-fresh');
    faults.plan.updates = 1;
    const lease = leaseOf(await store.claim(fromListener));
    expect(faults.lost).toBe(1);
    expect(await job()).toMatchObject({ jobId: lease.jobId, owner: 'worker-a', state: 'running' });
    // The version was learnt from the read: the stage write is one conditional update.
    const readsBefore = reads.count;
    await store.writeStage(
      lease,
      'upscaling',
      ownedWrite({ calls: { removeBackground: 1, upscale: 0 }, credits: 1 }),
    );
    expect(await job()).toMatchObject({ stage: 'upscaling', calls: { removeBackground: 1 } });
    expect(reads.count).toBe(readsBefore);
  });

  it('a transaction claim whose commit is answered UNKNOWN is recognised when the SDK runs it again', async () => {
    const { faults, store, fromSweep, job } = await setup('lost-tx');
    faults.plan.transactions = 1;
    const claim = await store.claim(fromSweep);
    const lease = leaseOf(claim);
    expect(faults.lost).toBe(1);
    expect(await job()).toMatchObject({ jobId: lease.jobId, owner: 'worker-a', attempts: 1 });
  });

  it('a stage write with usage whose answer is lost counts the calls and credits once', async () => {
    const { faults, store, fromListener, job } = await setup('lost-usage');
    const lease = leaseOf(await store.claim(fromListener));
    faults.plan.updates = 1;
    const usage = { calls: { removeBackground: 1, upscale: 0 }, credits: 1 };
    await store.writeStage(lease, 'upscaling', ownedWrite(usage));
    expect(faults.lost).toBe(1);
    const after = await job();
    expect(after.calls).toEqual({ removeBackground: 1, upscale: 0 });
    expect(after.credits).toBe(1);
  });

  it('CANCELLED, as the emulator answers when a listener’s connection died, is a lost answer too', async () => {
    const { faults, store, fromListener, job } = await setup('lost-cancelled');
    const lease = leaseOf(await store.claim(fromListener));
    faults.plan.code = 1;
    faults.plan.updates = 1;
    await store.writeStage(
      lease,
      'upscaling',
      ownedWrite({ calls: { removeBackground: 1, upscale: 0 }, credits: 1 }),
    );
    expect(faults.lost).toBe(1);
    expect(await job()).toMatchObject({ stage: 'upscaling', credits: 1 });
  });

  it('a completion whose answer is lost is complete, not a lost lease', async () => {
    const { faults, store, fromListener, ref } = await setup('lost-complete');
    const lease = leaseOf(await store.claim(fromListener));
    faults.plan.updates = 1;
    await complete(store, lease);
    expect(faults.lost).toBe(1);
    const visuals = await visualsOf(ref);
    expect(visuals.showcaseProcessingStatus).toBe('complete');
    expect(visuals.showcaseJob).toMatchObject({ state: 'complete', credits: 2 });
  });

  it.each([
    ['landed', true],
    ['did not land', false],
  ])(
    'a completion whose answer never comes (it %s) is complete within the deadline, written once',
    async (_, applies) => {
      const { faults, store, fromListener, ref } = await setup(`silent-complete-${applies}`, 300);
      const lease = leaseOf(await store.claim(fromListener));
      faults.plan.silent = 1;
      faults.plan.silentApplies = applies;
      // Not the SDK's 60 s: the test's timeout would end first.
      await complete(store, lease);
      expect(faults.lost).toBe(1);
      const visuals = await visualsOf(ref);
      expect(visuals.showcaseProcessingStatus).toBe('complete');
      expect(visuals.showcaseJob).toMatchObject({ state: 'complete', credits: 2 });
    },
  );

  it('a completion carrying its owner’s day usage, its answer lost, adds the job and its credits once', async () => {
    const { faults, store, fromListener, ref } = await setup('lost-settled');
    const lease = leaseOf(await store.claim(fromListener));
    const settlement = paidJobOf('settle-user', lease);
    faults.plan.commits = 1;
    // Recognised by the read-back: run-job never sees an error it would retry.
    await expect(complete(store, lease, settlement)).resolves.toBeUndefined();
    expect(faults.lost).toBe(1);
    expect((await visualsOf(ref)).showcaseProcessingStatus).toBe('complete');
    expect(await daysOf('settle-user')).toEqual([expect.objectContaining({ jobs: 1, credits: 2 })]);
  });

  it('a completion with its day usage that reaches Firestore after the worker gave up on it is refused there', async () => {
    const { faults, store, fromListener, ref } = await setup('late-settled', 300);
    const lease = leaseOf(await store.claim(fromListener));
    const settlement = paidJobOf('late-user', lease);
    faults.plan.lateCommits = 1;
    // Given up after 300 ms, not found by the read-back, sent again: that one lands.
    await complete(store, lease, settlement);
    expect((await visualsOf(ref)).showcaseProcessingStatus).toBe('complete');
    // The first batch arrives later still; its precondition (the version before) refuses it
    // whole, the day's increments with it.
    expect(await Promise.all(faults.late)).toEqual(['refused']);
    expect(await daysOf('late-user')).toEqual([expect.objectContaining({ jobs: 1, credits: 2 })]);
  });

  // The status sink sends a write that failed this way again with the same writeId
  // (status-sink.ts): a new one would not be recognised.
  it.each([
    ['UNAVAILABLE', 14],
    ['PERMISSION_DENIED', 7],
  ])(
    'a completion whose answer is lost and whose read-back fails (%s) is complete when sent again, counted once',
    async (_, code) => {
      const { faults, store, fromListener, ref } = await setup(`lost-twice-${code}`);
      const writer = createStatusSink(store).open(leaseOf(await store.claim(fromListener)));
      writer.recordCall('remove-background', 1);
      writer.recordCall('upscale', 1);
      const settlement = paidJobOf(`twice-user-${code}`, writer.lease);
      faults.plan.commits = 1;
      faults.plan.reads = 1;
      faults.plan.readCode = code;
      // Not transient either way: the store says the write may have landed.
      await expect(writer.complete(RESULT, settlement)).rejects.toBeInstanceOf(
        WriteOutcomeUnknownError,
      );
      // run-job's retry of a transient error: not a lost lease, nothing counted twice.
      await expect(writer.complete(RESULT, settlement)).resolves.toBeUndefined();
      const visuals = await visualsOf(ref);
      expect(visuals.showcaseProcessingStatus).toBe('complete');
      expect(visuals.showcaseJob).toMatchObject({ state: 'complete', credits: 2 });
      expect(await daysOf(`twice-user-${code}`)).toEqual([
        expect.objectContaining({ jobs: 1, credits: 2 }),
      ]);
    },
  );

  it('a stage write whose answer and read-back are both lost is sent again before the next, its calls counted once', async () => {
    const { faults, store, fromListener, job } = await setup('lost-twice-stage');
    const writer = createStatusSink(store).open(leaseOf(await store.claim(fromListener)));
    writer.recordCall('remove-background', 1);
    faults.plan.updates = 1;
    faults.plan.reads = 1;
    await expect(writer.stage('upscaling')).rejects.toMatchObject({ code: 14 }); // kept from the cause
    writer.recordCall('upscale', 1);
    await writer.stage('finalizing');
    expect(await job()).toMatchObject({
      stage: 'finalizing',
      calls: { removeBackground: 1, upscale: 1 },
      credits: 2,
    });
  });

  it('a user slot taken by a write whose answer is lost is held, so the job gives it back', async () => {
    const faults = losingAnswers(stack.db);
    const quota = createFirestoreUserQuota(faults.db, {
      limits: { dailyJobs: 0, maxActive: 2 },
      liveJobs: createLiveJobsReader(faults.db, 'characters'),
      slotGraceMs: 60_000,
    });
    expect(await quota.acquireSlot('slot-user', 'char-a')).toEqual({
      kind: 'acquired',
      holder: true,
    });
    faults.plan.updates = 1;
    expect(await quota.acquireSlot('slot-user', 'char-b')).toEqual({
      kind: 'acquired',
      holder: true,
    });
    expect(faults.lost).toBe(1);
  });
});
