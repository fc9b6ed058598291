import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Firestore } from 'firebase-admin/firestore';
import {
  createFirestorePresence,
  createPresenceReader,
  type Presence,
} from '../../src/adapters/firestore/presence.js';
import { createSweepLeader } from '../../src/adapters/firestore/sweep-leader.js';
import { createQuotaLedger } from '../../src/adapters/firestore/quota-ledger.js';
import { createFirestoreJobStore } from '../../src/adapters/firestore/job-store.js';
import { createFirestoreRequestFeed } from '../../src/adapters/firestore/request-feed.js';
import { createLiveJobsReader } from '../../src/adapters/firestore/job-fields.js';
import { createFirestoreUserQuota } from '../../src/adapters/firestore/user-quota.js';
import { createServerClock, monotonic, type ServerClock } from '../../src/jobs/clock.js';
import { fleetMarginMs, type PresenceSeen } from '../../src/jobs/fleet.js';
import type { JobRequest } from '../../src/jobs/ports.js';
import { recordingLog } from '../unit/fakes.js';
import { startStack, type Stack } from '../support/stack.js';

/**
 * Every fleet decision with this process's wall clock stepped by ±5 minutes, as NTP or a host
 * resuming from suspend steps it, on the real emulator: a live worker stays alive and keeps
 * its jobs, its sweep lease, its quota grant and its user's slot. Each decision used to compare
 * `Date.now()` with a time another worker wrote, so each step here turned one of them around.
 */
const TIMEOUT_MS = 4_000;
const WORKERS = 'showcaseWorkers';
const FLEET = 'showcaseFleet';
const CHARACTERS = 'characters';
const realNow = monotonic;

/** Steps this process's wall clock (`Date`) by `offsetMs`; it keeps running from there. */
function stepWallClock(offsetMs: number): void {
  vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
  vi.setSystemTime(realNow() + offsetMs);
}

interface Member {
  id: string;
  clock: ServerClock;
  presence: Presence;
}

describe.each([
  ['ahead', 5 * 60_000],
  ['behind', -5 * 60_000],
])('with the wall clock stepped 5 minutes %s', (_, step) => {
  let stack: Stack | undefined;
  const members: Member[] = [];

  afterEach(async () => {
    vi.useRealTimers();
    await Promise.all(members.splice(0).map((m) => m.presence.stop()));
    await stack?.close();
    stack = undefined;
  });

  async function member(db: Firestore, id: string): Promise<Member> {
    const clock = createServerClock();
    const presence = createFirestorePresence(db, {
      collection: WORKERS,
      workerId: id,
      timeoutMs: TIMEOUT_MS,
      log: recordingLog(),
      load: () => ({ running: 1, demand: 1 }),
      clock,
    });
    await presence.start();
    const m = { id, clock, presence };
    members.push(m);
    return m;
  }

  async function leave(m: Member): Promise<void> {
    members.splice(members.indexOf(m), 1);
    await m.presence.stop();
  }

  const storeOf = (db: Firestore, m: Member) =>
    createFirestoreJobStore(db, {
      collection: CHARACTERS,
      owner: m.id,
      leaseMs: 60_000,
      maxAttempts: 3,
      now: m.clock.now,
      ownerAlive: createPresenceReader(db, { collection: WORKERS, timeoutMs: TIMEOUT_MS }),
    });

  const request = (characterId: string): JobRequest => ({
    characterId,
    origin: 'sweep',
    seenAt: realNow(),
  });

  async function requested(db: Firestore, id: string): Promise<void> {
    await db.doc(`${CHARACTERS}/${id}`).set({
      meta: { userId: 'user-1' },
      visuals: {
        imageUrl: 'gs://b/raw-uploads/user-1/x.png',
        showcaseProcessingStatus: 'upscaling',
      },
    });
  }

  /** A fresh project with two live workers, A and B, each with its own idea of Firestore's time. */
  async function twoWorkers(): Promise<{ db: Firestore; a: Member; b: Member }> {
    stack = await startStack();
    const { db } = stack;
    return { db, a: await member(db, 'w-a'), b: await member(db, 'w-b') };
  }

  it('a live worker stays alive in the others’ view, and keeps its own coverage', async () => {
    const { db, a, b } = await twoWorkers();
    const claimedAt = monotonic(); // a job A claims now, just before the step
    stepWallClock(step);
    const seen = await b.presence.refresh();
    expect(seen.alive.has('w-a')).toBe(true);
    expect(
      await createPresenceReader(db, { collection: WORKERS, timeoutMs: TIMEOUT_MS })(
        'w-a',
        () => undefined,
      ),
    ).toBe(true);
    // Its fence: the job is still surely its own.
    expect(a.presence.fence.holds(claimedAt)).toBe(true);
    // Its heartbeat's TTL field is on Firestore's time, not the stepped clock.
    const doc = await db.doc(`${WORKERS}/w-a`).get();
    const expiresAt = (doc.get('expiresAt') as FirebaseFirestore.Timestamp).toMillis();
    expect(Math.abs(expiresAt - (doc.updateTime?.toMillis() ?? 0) - TIMEOUT_MS)).toBeLessThan(
      2_000,
    );
  });

  it('a dead worker is still seen dead, on Firestore’s time', async () => {
    const { db, a, b } = await twoWorkers();
    await leave(a); // deletes its document: beat it once more by hand, then let it lapse
    await db.doc(`${WORKERS}/w-a`).set({ workerId: 'w-a', timeoutMs: TIMEOUT_MS });
    // The wall clock steps back: Firestore's clock alone says when the beat runs out.
    stepWallClock(-Math.abs(step));
    const deadline = realNow() + 3 * TIMEOUT_MS;
    let alive = true;
    while (alive && realNow() < deadline) {
      alive = (await b.presence.refresh()).alive.has('w-a');
      if (alive) await new Promise((r) => setTimeout(r, 250));
    }
    expect(alive).toBe(false);
  });

  it('the sweep lease stays with its live holder', async () => {
    const { db, a, b } = await twoWorkers();
    const leaderOf = (m: Member) =>
      createSweepLeader(db, {
        collection: FLEET,
        workerId: m.id,
        leaseMs: TIMEOUT_MS,
        marginMs: fleetMarginMs(TIMEOUT_MS),
        clock: m.clock,
      });
    const alive = () => true;
    expect(await leaderOf(a).tick(alive)).toBe(true);
    stepWallClock(step);
    expect(await leaderOf(b).tick(alive)).toBe(false);
    const lease = await db.doc(`${FLEET}/sweeper`).get();
    expect(lease.get('holder')).toBe('w-a');
  });

  it('a job a live worker holds is not claimable, and its owner keeps writing it', async () => {
    const { db, a, b } = await twoWorkers();
    await requested(db, 'c1');
    const claimed = await storeOf(db, a).claim(request('c1'));
    expect(claimed.kind).toBe('claimed');
    stepWallClock(step);
    expect(await storeOf(db, b).claim(request('c1'))).toMatchObject({
      kind: 'skipped',
      reason: 'held',
    });
    // Nor does the sweep propose it (it is handed this process's clock, as the source does).
    const feed = createFirestoreRequestFeed(db, { collection: CHARACTERS, owner: 'w-b' });
    expect((await feed.findUnowned(Date.now())).map((r) => r.characterId)).toEqual([]);
    const doc = await db.doc(`${CHARACTERS}/c1`).get();
    expect(doc.get('visuals.showcaseJob.owner')).toBe('w-a');
    // The lease it wrote is on Firestore's time: a lease from now, whatever the wall clock says.
    const expires = (
      doc.get('visuals.showcaseJob.leaseExpiresAt') as FirebaseFirestore.Timestamp
    ).toMillis();
    expect(Math.abs(expires - (doc.updateTime?.toMillis() ?? 0) - 60_000)).toBeLessThan(2_000);
  });

  it('the quota ledger keeps a live worker’s grant, and a leaving one drains on Firestore’s time', async () => {
    const { db, a, b } = await twoWorkers();
    const ledgerOf = (m: Member) =>
      createQuotaLedger(db, {
        collection: FLEET,
        workerId: m.id,
        rpm: 60,
        windowMs: 60_000,
        marginMs: 3_000,
        clock: m.clock,
      });
    const seen = async (m: Member) => {
      const view = await m.presence.refresh();
      return new Map<string, PresenceSeen>(
        view.workers.map((w) => [
          w.workerId,
          { expiresAt: w.expiresAt, alive: view.alive.has(w.workerId) },
        ]),
      );
    };
    await ledgerOf(a).settle(await seen(a), 0);
    expect((await ledgerOf(b).settle(await seen(b), 0)).limit).toBe(30);
    expect((await ledgerOf(a).settle(await seen(a), 0)).limit).toBe(30);
    await ledgerOf(a).leave(30);
    await leave(a);
    stepWallClock(step);
    // Alone now, B's fair share is 60; A's 30 requests keep counting for a window on
    // Firestore's time, so B may not raise into them yet.
    expect((await ledgerOf(b).settle(await seen(b), 0)).limit).toBe(30);
    const grants = await ledgerOf(b).read();
    const readAt = (await db.doc(`${FLEET}/quota`).get()).readTime.toMillis();
    expect(grants['w-a']?.drainUntil).toBeGreaterThan(readAt + 50_000);
    expect(grants['w-a']?.drainUntil).toBeLessThan(readAt + 70_000);
  });

  it('a user’s slot held by a running job still counts', async () => {
    const { db, a, b } = await twoWorkers();
    const quotaOf = (m: Member) =>
      createFirestoreUserQuota(db, {
        limits: { dailyJobs: 0, maxActive: 1 },
        liveJobs: createLiveJobsReader(db, CHARACTERS),
        slotGraceMs: 60_000,
        now: m.clock.now,
      });
    await requested(db, 'c1');
    expect(await quotaOf(a).acquireSlot('user-1', 'c1')).toMatchObject({ kind: 'acquired' });
    expect((await storeOf(db, a).claim(request('c1'))).kind).toBe('claimed');
    stepWallClock(step);
    expect(await quotaOf(b).acquireSlot('user-1', 'c2')).toMatchObject({ kind: 'busy' });
  });
});
