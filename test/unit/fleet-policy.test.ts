import { describe, expect, it } from 'vitest';
import {
  afterBeat,
  callsLeft,
  counted,
  fairShare,
  holds,
  isAlive,
  mayLead,
  nextDeathCheck,
  NO_CONTINUITY,
  rebalance,
  reservation,
  takeoverShare,
  type Grant,
  type PresenceSeen,
} from '../../src/jobs/fleet.js';

const TTL = 15_000;
const MARGIN = 1_000;
const beat = (c: typeof NO_CONTINUITY, sentAt: number, ackAt = sentAt + 20) =>
  afterBeat(c, { sentAt, ackAt, ttlMs: TTL, marginMs: MARGIN });

describe('presence and the fence', () => {
  it('a worker is alive until its expiry plus the skew margin', () => {
    expect(isAlive({ expiresAt: 10_000 }, 10_500, 1_000)).toBe(true);
    expect(isAlive({ expiresAt: 10_000 }, 11_001, 1_000)).toBe(false);
    expect(isAlive(undefined, 0, 1_000)).toBe(false);
  });

  it('no job is held before the first acknowledged beat', () => {
    expect(holds(NO_CONTINUITY, 0, 0, MARGIN)).toBe(false);
    const c = beat(NO_CONTINUITY, 1_000);
    expect(holds(c, 2_000, 1_500, MARGIN)).toBe(true);
    // Claimed before the run of beats began: not provably ours.
    expect(holds(c, 2_000, 500, MARGIN)).toBe(false);
  });

  it('beats acknowledged in time keep every claim since the first', () => {
    let c = beat(NO_CONTINUITY, 0);
    for (let t = 3_000; t <= 60_000; t += 3_000) c = beat(c, t);
    expect(holds(c, 61_000, 100, MARGIN)).toBe(true);
  });

  it('coverage running out stops every job, before the others may see the worker dead', () => {
    const c = beat(NO_CONTINUITY, 0);
    // Others see it dead after 15 000 + skew; it stops itself by 14 000.
    expect(holds(c, 13_999, 100, MARGIN)).toBe(true);
    expect(holds(c, 14_000, 100, MARGIN)).toBe(false);
    expect(isAlive({ expiresAt: 15_000 }, 14_000, MARGIN)).toBe(true);
  });

  it('a beat acknowledged after a gap restarts the run: older claims are lost for good', () => {
    let c = beat(NO_CONTINUITY, 0);
    // Partitioned: the next beat is sent at 3 s but only acknowledged at 20 s.
    c = beat(c, 3_000, 20_000);
    expect(c.since).toBe(20_000);
    // That late beat still covered only until 18 s: the run restarts with the next one.
    c = beat(c, 21_000);
    expect(c.since).toBe(21_020);
    expect(holds(c, 22_000, 100, MARGIN)).toBe(false);
    expect(holds(c, 22_000, 21_500, MARGIN)).toBe(true);
  });

  it('a beat acknowledged within the margin of the coverage end is a gap too', () => {
    let c = beat(NO_CONTINUITY, 0);
    c = beat(c, 13_000, 14_500);
    expect(c.since).toBe(14_500);
  });

  it('reads the fleet again just after the earliest expiry of another live worker', () => {
    const w = (id: string, expiresAt: number) => ({
      workerId: id,
      startedAt: 0,
      beatAt: 0,
      expiresAt,
      running: 0,
      demand: 0,
    });
    const workers = [w('me', 100), w('a', 9_000), w('b', 7_000), w('dead', 1_000)];
    expect(nextDeathCheck(workers, 'me', 5_000, MARGIN, 20_000)).toBe(8_050);
    expect(nextDeathCheck(workers, 'me', 5_000, MARGIN, 6_000)).toBe(6_000);
  });
});

describe('the sweep leader', () => {
  it('is taken when free, expired, or held by a dead worker; kept by its holder', () => {
    expect(mayLead(undefined, 'a', 0, MARGIN)).toBe(true);
    expect(mayLead({ holder: null, expiresAt: 0 }, 'a', 0, MARGIN)).toBe(true);
    expect(mayLead({ holder: 'a', expiresAt: 10_000 }, 'a', 5_000, MARGIN)).toBe(true);
    expect(mayLead({ holder: 'b', expiresAt: 10_000 }, 'a', 5_000, MARGIN)).toBe(false);
    expect(mayLead({ holder: 'b', expiresAt: 10_000 }, 'a', 11_001, MARGIN)).toBe(true);
    expect(mayLead({ holder: 'b', expiresAt: 10_000 }, 'a', 5_000, MARGIN, () => false)).toBe(true);
  });
});

describe('the quota ledger', () => {
  const RPM = 60;
  const WINDOW = 60_000;
  const live = (...ids: string[]) =>
    new Map<string, PresenceSeen>(ids.map((id) => [id, { expiresAt: 1e15, alive: true }]));
  const settle = (
    ledger: Record<string, Grant>,
    me: string,
    presence: Map<string, PresenceSeen>,
    now: number,
    used = 0,
  ) => rebalance(ledger, { me, rpm: RPM, now, windowMs: WINDOW, marginMs: 3_000, presence, used });
  const sum = (ledger: Record<string, Grant>, now: number) =>
    Object.values(ledger).reduce((n, g) => n + counted(g, now), 0);

  it('splits the quota equally, the remainder to the first ids', () => {
    expect(['a', 'b', 'c'].map((id) => fairShare(RPM, ['a', 'b', 'c'], id))).toEqual([20, 20, 20]);
    expect(['a', 'b'].map((id) => fairShare(7, ['a', 'b'], id))).toEqual([4, 3]);
    expect(fairShare(RPM, [], 'a')).toBe(60);
  });

  it('a worker alone takes the whole quota; newcomers get what the others free', () => {
    let ledger: Record<string, Grant> = {};
    ({ ledger } = settle(ledger, 'a', live('a'), 0));
    expect(ledger.a?.limit).toBe(60);
    // b joins while a is busy: a has 60 requests in its window.
    const two = live('a', 'b');
    let r = settle(ledger, 'b', two, 1_000);
    expect(r.limit).toBe(0);
    ledger = r.ledger;
    r = settle(ledger, 'a', two, 2_000, 60);
    expect(r.limit).toBe(30);
    ledger = r.ledger;
    // a's 60 still count for a window: b waits.
    expect(settle(ledger, 'b', two, 3_000).limit).toBe(0);
    expect(settle(ledger, 'b', two, 2_000 + WINDOW + 3_000).limit).toBe(30);
  });

  it('an idle worker that lowers its share frees it at once', () => {
    let ledger: Record<string, Grant> = {};
    ({ ledger } = settle(ledger, 'a', live('a'), 0));
    const two = live('a', 'b');
    ({ ledger } = settle(ledger, 'a', two, 1_000, 0));
    expect(settle(ledger, 'b', two, 1_500).limit).toBe(30);
  });

  it('a dead worker counts what it reserved for a window past its expiry, then its share returns', () => {
    const three = live('a', 'b', 'c');
    let ledger: Record<string, Grant> = {};
    for (const id of ['a', 'b', 'c', 'a', 'b', 'c']) ({ ledger } = settle(ledger, id, three, 0));
    expect(sum(ledger, 0)).toBe(60);
    const cDead = new Map(three);
    cDead.set('c', { expiresAt: 10_000, alive: false, reserved: 12 });
    let r = settle(ledger, 'a', cDead, 12_000);
    expect(r.ledger.c).toEqual({ limit: 0, drainLimit: 12, drainUntil: 10_000 + WINDOW + 3_000 });
    expect(r.limit).toBe(28); // fair share 30, but b holds 20 and c's 12 still count
    ledger = r.ledger;
    r = settle(ledger, 'a', cDead, 10_000 + WINDOW + 3_000);
    expect(r.limit).toBe(30);
    expect(r.ledger.c).toBeUndefined();
  });

  it('never lets the counted grants exceed the quota, whatever the order of settles and views', () => {
    // A seeded pseudo-random walk: workers join, die, lower and raise with partial views.
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const ids = ['a', 'b', 'c', 'd', 'e'];
    const alive = new Set(['a']);
    let ledger: Record<string, Grant> = {};
    for (let step = 0; step < 2_000; step += 1) {
      const now = step * 1_000;
      if (rand() < 0.05) alive.add(ids[Math.floor(rand() * ids.length)] ?? 'a');
      if (rand() < 0.03 && alive.size > 1) alive.delete([...alive][0] ?? 'a');
      const me = [...alive][Math.floor(rand() * alive.size)] ?? 'a';
      // A partial view: each other live worker seen with probability 0.7.
      const view = new Map<string, PresenceSeen>();
      for (const id of alive) {
        if (id === me || rand() < 0.7) view.set(id, { expiresAt: now + 5_000, alive: true });
      }
      for (const id of ids) {
        if (!alive.has(id) && ledger[id]) view.set(id, { expiresAt: now - 2_000, alive: false });
      }
      const used = Math.floor(rand() * ((ledger[me]?.limit ?? 0) + 1));
      ({ ledger } = settle(ledger, me, view, now, used));
      expect(sum(ledger, now)).toBeLessThanOrEqual(RPM);
    }
  });

  it('a reservation covers what is in the window plus a quarter share of headroom', () => {
    expect(reservation(60, 0)).toBe(15);
    expect(reservation(60, 50)).toBe(60);
    expect(reservation(20, 3)).toBe(8);
    expect(reservation(0, 0)).toBe(0);
  });
});

describe('takeoverShare: a dead worker’s jobs dealt among the survivors', () => {
  const jobs = [
    { id: 'j1', callsLeft: 2 },
    { id: 'j2', callsLeft: 1 },
    { id: 'j3', callsLeft: 2 },
    { id: 'j4', callsLeft: 1 },
  ];

  it('gives every job to exactly one survivor, whoever computes it, whatever the order seen', () => {
    const live = ['w-b', 'w-a', 'w-c'];
    const shares = live.map((me) => takeoverShare(jobs, live, me));
    const reversed = live.map((me) => takeoverShare([...jobs].reverse(), [...live].reverse(), me));
    expect(shares).toEqual(reversed);
    expect(shares.flat().sort()).toEqual(['j1', 'j2', 'j3', 'j4']);
  });

  it('balances the paid calls left, not the job count', () => {
    const a = takeoverShare(jobs, ['a', 'b'], 'a');
    const b = takeoverShare(jobs, ['a', 'b'], 'b');
    const calls = (ids: string[]) =>
      ids.reduce((n, id) => n + (jobs.find((j) => j.id === id)?.callsLeft ?? 0), 0);
    // 2+1 and 2+1, never 2+2 against 1+1.
    expect([calls(a), calls(b)]).toEqual([3, 3]);
  });

  it('a lone survivor takes everything; a duplicate id is dealt once', () => {
    expect(takeoverShare([...jobs, jobs[0]!], ['a'], 'a').sort()).toEqual(['j1', 'j2', 'j3', 'j4']);
  });

  it('counts the calls a status still needs', () => {
    expect(['removing-background', 'upscaling', 'finalizing', undefined].map(callsLeft)).toEqual([
      2, 1, 0, 0,
    ]);
  });
});
