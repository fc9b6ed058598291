/**
 * The fence at the store, on the emulator, with the real adapters: worker A claims a job and
 * writes its first stage; its heartbeats stop (its document stays and runs out, as when the
 * process is paused or cut off); worker B sees it dead and takes the job over. Every write A
 * still makes, a stage, `complete` or `fail` with its usage and its owner's day settlement, is
 * refused and changes nothing: not the document (its update time), not the job's calls, not
 * the user's day; also when the answer to A's write is lost, or never comes and the write
 * reaches Firestore later.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { DocumentReference, Firestore, Timestamp } from 'firebase-admin/firestore';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLiveJobsReader } from '../../src/adapters/firestore/job-fields.js';
import { createFirestoreJobStore } from '../../src/adapters/firestore/job-store.js';
import {
  createFirestorePresence,
  createPresenceReader,
} from '../../src/adapters/firestore/presence.js';
import { createFirestoreUserQuota } from '../../src/adapters/firestore/user-quota.js';
import { JobError } from '../../src/jobs/errors.js';
import {
  LeaseLostError,
  WriteOutcomeUnknownError,
  type ClaimResult,
  type DaySettlement,
  type JobStore,
  type Lease,
  type Log,
  type OwnedWrite,
  type QuotaTicket,
  type Usage,
} from '../../src/jobs/ports.js';
import { losingAnswers, type LostAnswers } from '../support/lost-answers.js';
import { startStack, type Stack } from '../support/stack.js';

const WORKERS = 'showcaseWorkers';
const CHARACTERS = 'characters';
/** A's heartbeats run out this long after its last one (a short PRESENCE_TIMEOUT_MS). */
const PRESENCE_MS = 2_000;
/** Long: B takes the job over because A's presence lapsed, not because a lease ran out. */
const LEASE_MS = 60_000;
/** What A and B would each write as the job's result (B's is the one that may land). */
const resultOf = (who: 'a' | 'b') => ({
  url: `https://example.test/${who}.png`,
  path: `${who}.png`,
  width: 2,
  height: 2,
  bytes: 1,
});

const usage = (removeBackground: number, upscale: number): Usage => ({
  calls: { removeBackground, upscale },
  credits: removeBackground + upscale,
});
const ownedWrite = (u: Usage): OwnedWrite => ({ id: randomUUID(), usage: u });
const quiet: Log = {
  error: () => undefined,
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
  child: () => quiet,
};
const leaseOf = (claim: ClaimResult): Lease => {
  expect(claim.kind).toBe('claimed');
  return (claim as Extract<ClaimResult, { kind: 'claimed' }>).lease;
};
const version = (t: Timestamp | undefined) => (t ? `${t.seconds}.${t.nanoseconds}` : 'none');

/** A client whose document reads and writes fail (UNAVAILABLE) once `cut()`. */
function cuttable(real: Firestore): { db: Firestore; cut(): void } {
  let cut = false;
  const OPS = new Set(['get', 'set', 'update', 'delete', 'create']);
  const wrap = <T extends object>(target: T): T =>
    new Proxy(target, {
      get(t, prop, receiver) {
        const value: unknown = Reflect.get(t, prop, receiver);
        if (typeof value !== 'function') return value;
        const fn = value as (...a: unknown[]) => unknown;
        return (...args: unknown[]) => {
          if (cut && OPS.has(String(prop))) {
            return Promise.reject(
              Object.assign(new Error('14 UNAVAILABLE: cut off'), { code: 14 }),
            );
          }
          const result = fn.apply(t, args);
          return prop === 'collection' || prop === 'doc' ? wrap(result as object) : result;
        };
      },
    });
  return {
    db: wrap(real),
    cut: () => {
      cut = true;
    },
  };
}

/** One job taken over from A by B, and what A kept of it. */
interface TakenOver {
  ref: DocumentReference;
  userId: string;
  /** A's client: its answers can be lost or held up. */
  faults: LostAnswers;
  storeA: JobStore;
  storeB: JobStore;
  leaseA: Lease;
  leaseB: Lease;
  /** What A's final write would add to the user's day (the user quota's own settlement). */
  settlementA: DaySettlement;
}

describe('the fence at the store: a worker whose job was taken over changes nothing (emulator)', () => {
  let stack: Stack;
  const cleanups: Array<() => Promise<void>> = [];
  beforeAll(async () => {
    stack = await startStack();
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });
  afterAll(async () => {
    await stack.close();
  });

  /**
   * A's presence, beating until `lapse()`: from then on every write and read it makes is
   * refused (UNAVAILABLE), as for a process cut off from Firestore; its document stays and
   * runs out.
   */
  async function presenceOf(workerId: string): Promise<{ lapse(): void }> {
    const link = cuttable(stack.db);
    const presence = createFirestorePresence(link.db, {
      collection: WORKERS,
      workerId,
      timeoutMs: PRESENCE_MS,
      log: quiet,
      load: () => ({ running: 1, demand: 1 }),
    });
    await presence.start();
    cleanups.push(() => presence.stop());
    return { lapse: () => link.cut() };
  }

  /** B's claim, tried until A is seen dead (its heartbeat document ran out). */
  async function claimOnceDead(store: JobStore, characterId: string): Promise<Lease> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const claim = await store.claim({ characterId, origin: 'takeover', seenAt: Date.now() });
      if (claim.kind === 'claimed') return claim.lease;
      expect(claim).toEqual({ kind: 'skipped', reason: 'held' });
      if (Date.now() > deadline) throw new Error(`${characterId}: A never seen dead`);
      await delay(100);
    }
  }

  /**
   * A claims `name`'s job, pays for the cut-out and writes its stage (then `beforeLapse`);
   * A's presence lapses; B takes the job over. `dailyJobs`: the user's daily limit (0: none,
   * so A's settlement would count the job too).
   */
  async function takenOver(
    name: string,
    opts: {
      dailyJobs?: number;
      beforeLapse?: (storeA: JobStore, leaseA: Lease, faults: LostAnswers) => Promise<void>;
    } = {},
  ): Promise<TakenOver> {
    const characterId = `fence-${name}`;
    const userId = `user-${name}`;
    const [a, b] = [`worker-a-${name}`, `worker-b-${name}`];
    const ref = stack.db.doc(`${CHARACTERS}/${characterId}`);
    await ref.set({
      meta: { userId },
      visuals: { showcaseProcessingStatus: 'removing-background' },
    });
    const presenceA = await presenceOf(a);
    const faults = losingAnswers(stack.db);
    const storeOf = (db: typeof stack.db, owner: string) =>
      createFirestoreJobStore(db, {
        collection: CHARACTERS,
        owner,
        leaseMs: LEASE_MS,
        maxAttempts: 3,
        ownerAlive: createPresenceReader(stack.db, { collection: WORKERS, timeoutMs: PRESENCE_MS }),
        // A write held up on its way is given up on (and read back) within the test.
        answerMs: 500,
      });
    const storeA = storeOf(faults.db, a);
    const storeB = storeOf(stack.db, b);
    const quota = createFirestoreUserQuota(stack.db, {
      limits: { dailyJobs: opts.dailyJobs ?? 10, maxActive: 0 },
      liveJobs: createLiveJobsReader(stack.db, CHARACTERS),
      slotGraceMs: LEASE_MS,
    });

    const leaseA = leaseOf(
      await storeA.claim({ characterId, origin: 'sweep', seenAt: Date.now() }),
    );
    const ticket: QuotaTicket = {
      userId,
      characterId,
      jobId: leaseA.jobId,
      requestedAt: leaseA.requestedAt,
    };
    const admission = await quota.admit(ticket);
    expect(admission.kind).toBe('admitted');
    const counted = admission.kind === 'admitted' && admission.counted;
    await storeA.writeStage(leaseA, 'upscaling', ownedWrite(usage(1, 0)));
    await opts.beforeLapse?.(storeA, leaseA, faults);

    // While A beats, its job is not B's to take, whatever B tries.
    expect(await storeB.claim({ characterId, origin: 'takeover', seenAt: Date.now() })).toEqual({
      kind: 'skipped',
      reason: 'held',
    });
    presenceA.lapse();
    const leaseB = await claimOnceDead(storeB, characterId);
    expect(leaseB).toMatchObject({ owner: b, jobId: leaseA.jobId, attempt: 2, recovered: true });
    const settlementA = quota.settlement(ticket, { credits: 2, counted });
    expect(settlementA).toMatchObject({ userId, credits: 2, countJob: !counted });
    return {
      ref,
      userId,
      faults,
      storeA,
      storeB,
      leaseA,
      leaseB,
      settlementA: settlementA as DaySettlement,
    };
  }

  /** Everything A's writes could change: the document (its version) and the user's days. */
  async function observe(job: TakenOver) {
    const snap = await job.ref.get();
    const days = await stack.db.collection('showcaseUsage').where('userId', '==', job.userId).get();
    return {
      version: version(snap.updateTime),
      data: snap.data(),
      days: days.docs.map((d) => ({ id: d.id, version: version(d.updateTime), data: d.data() })),
    };
  }

  const jobOf = (seen: Awaited<ReturnType<typeof observe>>) =>
    (seen.data?.visuals as { showcaseJob?: Record<string, unknown> } | undefined)?.showcaseJob;

  type Write = 'stage' | 'complete' | 'fail';
  /** A's late writes, as run-job makes them: the next stage's usage, or its final write. */
  const writeOfA = (job: TakenOver, write: Write, owned: OwnedWrite): Promise<unknown> => {
    if (write === 'stage') return job.storeA.writeStage(job.leaseA, 'finalizing', owned);
    if (write === 'complete') {
      return job.storeA.complete(job.leaseA, resultOf('a'), owned, job.settlementA);
    }
    const error = new JobError('SOURCE_NOT_IMAGE', { detail: 'late failure' });
    return job.storeA.fail(job.leaseA, error, 'upscaling', owned, job.settlementA);
  };

  /**
   * How A's write fares on the way:
   * - answered: Firestore's refusal comes back.
   * - lost: the write reaches Firestore, which refuses it, and A gets UNKNOWN instead.
   * - late: no answer within A's deadline; the write reaches Firestore after A gave up on it
   *   (a final write's batch; a stage write simply never arrives).
   */
  type Answer = 'answered' | 'lost' | 'late';
  const plan = (faults: LostAnswers, write: Write, answer: Answer) => {
    if (answer === 'lost') faults.plan.masked = 1;
    if (answer === 'late' && write === 'stage') {
      faults.plan.silent = 1;
      faults.plan.silentApplies = false;
    }
    if (answer === 'late' && write !== 'stage') faults.plan.lateCommits = 1;
  };

  const cases: Array<[Write, Answer, number]> = [
    ['stage', 'answered', 10],
    ['stage', 'lost', 10],
    ['stage', 'late', 10],
    ['complete', 'answered', 10],
    ['complete', 'lost', 0],
    ['complete', 'late', 10],
    ['fail', 'answered', 0],
    ['fail', 'lost', 10],
    ['fail', 'late', 0],
  ];
  it.each(cases)(
    'A’s %s write, its answer %s (daily limit %i), is refused and changes nothing; B’s job goes on',
    async (write, answer, dailyJobs) => {
      const job = await takenOver(`${write}-${answer}`, { dailyJobs });
      const before = await observe(job);
      expect(jobOf(before)).toMatchObject({
        owner: job.leaseB.owner,
        state: 'running',
        attempts: 2,
        calls: { removeBackground: 1, upscale: 0 },
      });

      plan(job.faults, write, answer);
      await expect(writeOfA(job, write, ownedWrite(usage(0, 1)))).rejects.toBeInstanceOf(
        LeaseLostError,
      );
      // The fault was met: this is the path named.
      expect(job.faults.lost).toBe(answer === 'answered' ? 0 : 1);
      if (answer === 'late' && write !== 'stage') {
        expect(await Promise.all(job.faults.late)).toEqual(['refused']);
      }
      expect(await observe(job)).toEqual(before);

      // B, the owner now, writes and completes; its day settlement is the only one.
      await job.storeB.writeStage(job.leaseB, 'finalizing', ownedWrite(usage(0, 1)));
      const settlementB = {
        ...job.settlementA,
        credits: 1,
      };
      await job.storeB.complete(job.leaseB, resultOf('b'), ownedWrite(usage(0, 0)), settlementB);
      const done = await observe(job);
      expect(done.data?.visuals).toMatchObject({
        showcaseProcessingStatus: 'complete',
        showcaseImageUrl: resultOf('b').url,
      });
      // Had A's write landed: two upscale calls, or A's result, or A's credits in the day.
      expect(jobOf(done)).toMatchObject({
        owner: null,
        state: 'complete',
        calls: { removeBackground: 1, upscale: 1 },
        credits: 2,
      });
      expect(done.days.map((d) => d.data)).toEqual([
        expect.objectContaining({ jobs: 1, credits: 1 }),
      ]);

      // A's final write once the job is complete: refused too, nothing changes.
      await expect(writeOfA(job, write, ownedWrite(usage(0, 1)))).rejects.toBeInstanceOf(
        LeaseLostError,
      );
      expect(await observe(job)).toEqual(done);
    },
  );

  it('A’s stage write that landed before the takeover, its answer and read-back lost, sent again after it: refused, counted once', async () => {
    const late = ownedWrite(usage(0, 1));
    const job = await takenOver('landed-then-resent', {
      beforeLapse: async (storeA, leaseA, faults) => {
        faults.plan.updates = 1;
        faults.plan.reads = 1;
        await expect(storeA.writeStage(leaseA, 'finalizing', late)).rejects.toBeInstanceOf(
          WriteOutcomeUnknownError,
        );
        expect(faults.lost).toBe(1);
      },
    });
    const before = await observe(job);
    // It landed while A held the job: B's claim took the job with that bill on it.
    expect(jobOf(before)).toMatchObject({
      owner: job.leaseB.owner,
      calls: { removeBackground: 1, upscale: 1 },
      credits: 2,
    });
    // The status sink sends it again as it was (same writeId): not taken for landed now.
    await expect(job.storeA.writeStage(job.leaseA, 'finalizing', late)).rejects.toBeInstanceOf(
      LeaseLostError,
    );
    expect(await observe(job)).toEqual(before);
  });
});
