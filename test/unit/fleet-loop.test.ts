import { Subject } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { fleetMarginMs, type PresenceSeen } from '../../src/jobs/fleet.js';
import type { CallLimiter } from '../../src/jobs/call-window.js';
import type {
  FleetPresence,
  FleetView,
  HeldJob,
  JobRequest,
  QuotaLedger,
  SweepLeader,
  TakeoverFeed,
} from '../../src/jobs/ports.js';
import type { InProgressStatus } from '../../src/jobs/status.js';
import { createFleetLoop, createQuotaShare } from '../../src/pipeline/fleet-loop.js';
import { deferred, recordingLog, settle, type Deferred } from './fakes.js';

const ME = 'w1';
const RPM = 60;
const WINDOW_MS = 60_000;
const TIMEOUT_MS = 15_000;
const MARGIN = fleetMarginMs(TIMEOUT_MS);

/** A view at `at` of these workers (each expiring at `expiresAt`), `alive` among them. */
function viewOf(
  at: number,
  workers: Array<{ id: string; expiresAt?: number; reserved?: number }>,
  alive: string[],
): FleetView {
  return {
    at,
    workers: workers.map((w) => ({
      workerId: w.id,
      startedAt: 0,
      beatAt: 0,
      expiresAt: w.expiresAt ?? at,
      running: 0,
      demand: 0,
      ...(w.reserved === undefined ? {} : { reserved: w.reserved }),
    })),
    alive: new Set(alive),
  };
}

const held = (characterId: string, status: InProgressStatus): HeldJob => ({
  request: { characterId, origin: 'takeover', seenAt: 0, takeover: true },
  status,
});

/** Fakes of every port; `events` records the calls in order. */
function harness() {
  const events: string[] = [];
  const log = recordingLog();
  const views$ = new Subject<FleetView>();
  const lapses$ = new Subject<void>();
  const presence: FleetPresence & { nudges: boolean[]; forgotten: string[] } = {
    nudges: [],
    forgotten: [],
    start: () => {
      events.push('presence.start');
      return Promise.resolve();
    },
    stop: () => {
      events.push('presence.stop');
      return stopResult();
    },
    fence: { lapses$: lapses$.asObservable() },
    views$: views$.asObservable(),
    nudge(urgent = false) {
      presence.nudges.push(urgent);
    },
    forget(workerId) {
      presence.forgotten.push(workerId);
      return Promise.resolve();
    },
  };
  let stopResult = () => Promise.resolve();
  const settles: Array<{ seen: ReadonlyMap<string, PresenceSeen>; used: number; grant: number }> =
    [];
  let settleWith: () => Promise<{ limit: number; target: number }> = () =>
    Promise.resolve({ limit: RPM, target: RPM });
  const ledger: QuotaLedger & { left: number[] } = {
    left: [],
    settle(seen, used) {
      events.push('ledger.settle');
      settles.push({ seen, used, grant: share.grant });
      return settleWith();
    },
    leave(used) {
      events.push('ledger.leave');
      ledger.left.push(used);
      return leaveResult();
    },
  };
  let leaveResult = () => Promise.resolve();
  let leading = false;
  const leader: SweepLeader = {
    tick: () => {
      events.push('leader.tick');
      return Promise.resolve(leading);
    },
    leading: () => leading,
    resign: () => {
      events.push('leader.resign');
      return Promise.resolve();
    },
  };
  const queries: string[][] = [];
  let findWith: (owners: readonly string[]) => Promise<HeldJob[]> = () => Promise.resolve([]);
  const feed: TakeoverFeed = {
    findHeldBy(owners) {
      events.push('feed.findHeldBy');
      queries.push([...owners]);
      return findWith(owners);
    },
  };
  const limits: Array<[number, number]> = [];
  const limiter = fakeLimiter(events, limits);
  const share = createQuotaShare(limiter);
  const loop = createFleetLoop(
    { presence, ledger, leader, feed, share },
    { workerId: ME, rpm: RPM, windowMs: WINDOW_MS, presenceTimeoutMs: TIMEOUT_MS, log },
  );
  const takeovers: JobRequest[] = [];
  loop.takeovers$.subscribe((r) => takeovers.push(r));
  return {
    events,
    log,
    views$,
    lapses$,
    presence,
    ledger,
    settles,
    queries,
    limiter,
    limits,
    share,
    loop,
    takeovers,
    settleWith: (f: typeof settleWith) => (settleWith = f),
    findWith: (f: typeof findWith) => (findWith = f),
    lead: (value: boolean) => (leading = value),
    stopWith: (f: typeof stopResult) => (stopResult = f),
    leaveWith: (f: typeof leaveResult) => (leaveResult = f),
    /** Emits a view and lets the loop handle it. */
    async see(view: FleetView) {
      views$.next(view);
      await settle();
    },
  };
}

/** The limiter as the quota share drives it, recording what it is told. */
interface FakeLimiter extends CallLimiter {
  used: number;
  sends: number;
  leaving: number[];
  allowance: number;
  onSpent: (() => void) | undefined;
  holds: number[];
}

function fakeLimiter(events: string[] = [], limits: Array<[number, number]> = []): FakeLimiter {
  const limiter: FakeLimiter = {
    used: 0,
    sends: 0,
    leaving: [] as number[],
    allowance: Number.NaN,
    onSpent: undefined as (() => void) | undefined,
    holds: [] as number[],
    setLimit(limit: number, share: number) {
      events.push(`limiter.setLimit(${limit},${share})`);
      limits.push([limit, share]);
    },
    setAllowance(untilSends: number, onSpent?: () => void) {
      limiter.allowance = untilSends;
      limiter.onSpent = onSpent;
    },
    leavingIn: () => limiter.leaving,
    holdForTakeover(calls: number) {
      events.push(`limiter.hold(${calls})`);
      limiter.holds.push(calls);
    },
  };
  return limiter;
}

describe('createQuotaShare', () => {
  it('stops the limiter at once, then bounds its window at the grant', () => {
    const limits: Array<[number, number]> = [];
    const limiter = fakeLimiter([], limits);
    const share = createQuotaShare(limiter);
    expect(limits).toEqual([[0, 0]]);
    expect(limiter.allowance).toBe(0);
    share.granted(40);
    expect(limits.at(-1)).toEqual([40, 40]);
    share.lapse();
    expect(share.grant).toBe(0);
    expect(limits.at(-1)).toEqual([0, 0]);
    // Lapsed: a beat acknowledged meanwhile sends nothing until the ledger grants again.
    share.acknowledged(share.beat());
    expect(limits.at(-1)).toEqual([0, 0]);
    share.rejoin();
    share.granted(20);
    expect(limits.at(-1)).toEqual([20, 20]);
    // Lowering to a higher fair share changes nothing.
    share.lower(30);
    expect(share.grant).toBe(20);
    share.lower(10);
    expect(share.grant).toBe(10);
    expect(limits.at(-1)).toEqual([10, 10]);
  });

  it('promises in each beat what is in the window, when it leaves, and the sends allowed after', () => {
    const limiter = fakeLimiter();
    const share = createQuotaShare(limiter);
    share.granted(40);
    limiter.used = 3;
    limiter.sends = 10;
    limiter.leaving = [1_500, 2_000, 30_001];
    const beat = share.beat();
    // reservation(40, 3) = 3 + max(4, 10): 10 sends after this beat.
    expect(beat).toEqual({ share: 40, reserved: 13, leaving: { '2': 2, '31': 1 } });
    // Not acknowledged yet: the earlier beat's allowance (none) still holds.
    expect(limiter.allowance).toBe(0);
    // The heartbeat sends the fields beside others, in a copy (compose.ts adds the budget's).
    share.acknowledged({ ...beat, budgetHeld: 0, intakePaused: 0 });
    expect(limiter.allowance).toBe(20);
    // A beat the share does not know (a stale object) changes nothing.
    share.acknowledged({ share: 40, reserved: 99 });
    expect(limiter.allowance).toBe(20);
  });

  it('keeps to a beat with a smaller allowance from the moment it is sent', () => {
    const limiter = fakeLimiter();
    const share = createQuotaShare(limiter);
    share.granted(40);
    limiter.sends = 10;
    share.acknowledged(share.beat());
    expect(limiter.allowance).toBe(20);
    // Lowered under what is in the window: the next beat allows no send after it, and the
    // others may read it before its answer comes.
    limiter.used = 13;
    limiter.sends = 15;
    share.lower(10);
    const beat = share.beat();
    expect(beat.reserved).toBe(13);
    expect(limiter.allowance).toBe(15);
  });

  it('says when a call waits for the allowance alone, until a beat raises it', () => {
    const limiter = fakeLimiter();
    const share = createQuotaShare(limiter);
    let told = 0;
    share.onHeldBack(() => (told += 1));
    share.granted(40);
    expect(share.heldBack()).toBe(false);
    limiter.onSpent?.();
    expect(share.heldBack()).toBe(true);
    expect(told).toBe(1);
    share.acknowledged(share.beat());
    expect(share.heldBack()).toBe(false);
  });
});

describe('createFleetLoop', () => {
  it('starts the heartbeat only when started, following the fleet from then on', async () => {
    const h = harness();
    await h.see(viewOf(1_000, [{ id: ME }], [ME]));
    expect(h.settles).toHaveLength(0);
    await h.loop.start();
    expect(h.events).toContain('presence.start');
    await h.see(viewOf(1_000, [{ id: ME }], [ME]));
    expect(h.settles).toHaveLength(1);
  });

  it('takes over its dealt part of a dead worker’s jobs, before settling the ledger', async () => {
    const h = harness();
    h.findWith(() =>
      Promise.resolve([
        held('c', 'finalizing'),
        held('a', 'removing-background'),
        held('b', 'upscaling'),
      ]),
    );
    await h.loop.start();
    await h.see(viewOf(5_000, [{ id: ME }, { id: 'w2' }, { id: 'w3' }], [ME, 'w2']));
    expect(h.queries).toEqual([['w3']]);
    expect(h.events.indexOf('feed.findHeldBy')).toBeLessThan(h.events.indexOf('ledger.settle'));
    // Room for a's two calls is held before the settle can raise the share.
    expect(h.events.indexOf('limiter.hold(2)')).toBeGreaterThan(-1);
    expect(h.events.indexOf('limiter.hold(2)')).toBeLessThan(h.events.indexOf('ledger.settle'));
    // a (2 calls left) to w1, b (1) to w2, c (0, counts 0.5) to w2 (the least dealt).
    expect(h.takeovers.map((r) => r.characterId)).toEqual(['a']);
    expect(h.takeovers[0]).toEqual(held('a', 'removing-background').request);
    const dead = h.log.entries.find((e) => e.message === 'fleet.worker_dead');
    expect(dead?.level).toBe('warn');
    expect(dead?.fields).toEqual({ workers: ['w3'], jobs: 3, takingOver: 1 });
  });

  it('handles a death once; a worker that came back (or was forgotten) and dies again, again', async () => {
    const h = harness();
    await h.loop.start();
    const fleet = [{ id: ME }, { id: 'w2' }];
    await h.see(viewOf(1_000, fleet, [ME]));
    await h.see(viewOf(2_000, fleet, [ME]));
    expect(h.queries).toEqual([['w2']]);
    await h.see(viewOf(3_000, fleet, [ME, 'w2']));
    await h.see(viewOf(4_000, fleet, [ME]));
    expect(h.queries).toEqual([['w2'], ['w2']]);
    await h.see(viewOf(5_000, [{ id: ME }], [ME]));
    await h.see(viewOf(6_000, fleet, [ME]));
    expect(h.queries).toEqual([['w2'], ['w2'], ['w2']]);
  });

  it('logs a failed takeover query and still settles', async () => {
    const h = harness();
    h.findWith(() => Promise.reject(new Error('unavailable')));
    await h.loop.start();
    await h.see(viewOf(1_000, [{ id: ME }, { id: 'w2' }], [ME]));
    expect(h.log.messages('warn')).toContain('fleet.takeover_query_failed');
    expect(h.settles).toHaveLength(1);
    expect(h.takeovers).toEqual([]);
  });

  it('settles from what the fleet says of each worker and what the limiter used', async () => {
    const h = harness();
    await h.loop.start();
    h.limiter.used = 7;
    await h.see(
      viewOf(
        10_000,
        [
          { id: ME, expiresAt: 12_000 },
          { id: 'w2', expiresAt: 9_000, reserved: 5 },
        ],
        [ME],
      ),
    );
    expect(h.settles[0]?.used).toBe(7);
    expect([...(h.settles[0]?.seen ?? [])]).toEqual([
      [ME, { expiresAt: 12_000, alive: true }],
      ['w2', { expiresAt: 9_000, alive: false, reserved: 5 }],
    ]);
  });

  it('lowers the grant to the fair share at once, before the ledger settles', async () => {
    const h = harness();
    await h.loop.start();
    await h.see(viewOf(1_000, [{ id: ME }], [ME]));
    expect(h.share.grant).toBe(RPM);
    h.events.length = 0;
    const pending: Deferred<{ limit: number; target: number }> = deferred();
    h.settleWith(() => pending.promise);
    await h.see(viewOf(2_000, [{ id: ME }, { id: 'w2' }], [ME, 'w2']));
    // The ledger is asked with the fair share (30) already applied.
    expect(h.settles[1]?.grant).toBe(30);
    expect(h.events.slice(0, 2)).toEqual(['limiter.setLimit(30,30)', 'ledger.settle']);
    pending.resolve({ limit: 25, target: 30 });
    await settle();
    expect(h.share.grant).toBe(25);
    const line = h.log.entries.filter((e) => e.message === 'quota.share').at(-1);
    expect(line?.fields).toEqual({ limit: 25, target: 30, workers: 2 });
  });

  it('logs quota.share only when the grant or the fleet’s size changes', async () => {
    const h = harness();
    await h.loop.start();
    await h.see(viewOf(1_000, [{ id: ME }], [ME]));
    await h.see(viewOf(2_000, [{ id: ME }], [ME]));
    expect(h.log.messages('info').filter((m) => m === 'quota.share')).toHaveLength(1);
    // A second worker: the share is lowered before the settle, and still logged.
    await h.see(viewOf(3_000, [{ id: ME }, { id: 'w2' }], [ME, 'w2']));
    const lines = h.log.entries.filter((e) => e.message === 'quota.share');
    expect(lines).toHaveLength(2);
    expect(lines.at(-1)?.fields).toMatchObject({ workers: 2 });
  });

  it('beats at once when a call waits for the send allowance alone', async () => {
    const h = harness();
    await h.loop.start();
    await h.see(viewOf(1_000, [{ id: ME }], [ME]));
    expect(h.presence.nudges).toEqual([]);
    // The limiter tells: a beat is asked at once, and again after each read while it waits.
    h.limiter.onSpent?.();
    expect(h.presence.nudges).toEqual([true]);
    await h.see(viewOf(2_000, [{ id: ME }], [ME]));
    expect(h.presence.nudges).toEqual([true, true]);
    h.share.acknowledged(h.share.beat());
    await h.see(viewOf(3_000, [{ id: ME }], [ME]));
    expect(h.presence.nudges).toEqual([true, true]);
  });

  it('drops the share to nothing on a lapse, until the ledger grants it again', async () => {
    const h = harness();
    await h.loop.start();
    await h.see(viewOf(1_000, [{ id: ME }], [ME]));
    expect(h.limits.at(-1)).toEqual([RPM, RPM]);
    h.lapses$.next();
    expect(h.share.grant).toBe(0);
    expect(h.limits.at(-1)).toEqual([0, 0]);
    // Not alive in its own view: no settle, no share.
    await h.see(viewOf(2_000, [{ id: ME }], []));
    expect(h.settles).toHaveLength(1);
    h.share.acknowledged(h.share.beat());
    expect(h.limits.at(-1)).toEqual([0, 0]);
    await h.see(viewOf(3_000, [{ id: ME }], [ME]));
    expect(h.limits.at(-1)).toEqual([RPM, RPM]);
  });

  it('logs a failed settle and handles the next view', async () => {
    const h = harness();
    await h.loop.start();
    h.settleWith(() => Promise.reject(new Error('contention')));
    await h.see(viewOf(1_000, [{ id: ME }], [ME]));
    expect(h.log.messages('warn')).toContain('fleet.view_failed');
    expect(h.share.grant).toBe(0);
    h.settleWith(() => Promise.resolve({ limit: 40, target: RPM }));
    await h.see(viewOf(2_000, [{ id: ME }], [ME]));
    expect(h.share.grant).toBe(40);
  });

  it('ticks the sweep lease after every view; only the leader forgets workers dead a window', async () => {
    const h = harness();
    await h.loop.start();
    const at = 200_000;
    const longDead = at - WINDOW_MS - 2 * MARGIN - 1;
    const justDead = at - WINDOW_MS - 2 * MARGIN;
    const fleet = [
      { id: ME, expiresAt: at + 10_000 },
      { id: 'w2', expiresAt: longDead },
      { id: 'w3', expiresAt: justDead },
    ];
    await h.see(viewOf(at, fleet, [ME]));
    expect(h.events.filter((e) => e === 'leader.tick')).toHaveLength(1);
    expect(h.presence.forgotten).toEqual([]);
    h.lead(true);
    await h.see(viewOf(at, fleet, [ME]));
    expect(h.presence.forgotten).toEqual(['w2']);
    // A worker not alive in its own view still ticks (and leads if the lease says so).
    await h.see(viewOf(at, fleet, []));
    expect(h.events.filter((e) => e === 'leader.tick')).toHaveLength(3);
  });

  it('leave() stops following, resigns, leaves the ledger and stops beating; failures are logged', async () => {
    const h = harness();
    await h.loop.start();
    await h.see(viewOf(1_000, [{ id: ME }], [ME]));
    h.limiter.used = 9;
    h.leaveWith(() => Promise.reject(new Error('ledger down')));
    h.stopWith(() => Promise.reject(new Error('presence down')));
    await expect(h.loop.leave()).resolves.toBeUndefined();
    expect(h.events).toEqual(
      expect.arrayContaining(['leader.resign', 'ledger.leave', 'presence.stop']),
    );
    expect(h.ledger.left).toEqual([9]);
    const failures = h.log.entries.filter((e) => e.message === 'fleet.leave_failed');
    expect(failures.map((e) => e.fields)).toEqual([
      { detail: 'Error: ledger down' },
      { detail: 'Error: presence down' },
    ]);
    // No longer following the fleet.
    const limits = h.limits.length;
    await h.see(viewOf(2_000, [{ id: ME }], [ME]));
    h.lapses$.next();
    expect(h.settles).toHaveLength(1);
    expect(h.limits).toHaveLength(limits);
  });
});
