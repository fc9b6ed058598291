import { describe, expect, it } from 'vitest';
import { renderFleetMetrics } from '../../src/console/metrics.js';
import { consoleState } from './console-state-fixture.js';
import {
  beatExtras,
  failuresByCode,
  liveWorkers,
  lowestBalance,
  type ConsoleState,
} from '../../src/console/state.js';

const NOW = 1_750_000_000_000;
const OPEN = { intakePaused: null, balance: null, windowUsed: null, gate: null };

const stateWith = (partial: Partial<ConsoleState>) => consoleState(NOW, partial);

describe('the fleet metrics (/metrics of the console)', () => {
  it("give the operator's pause, each worker's, today's credits and the balance", () => {
    const lines = renderFleetMetrics(
      stateWith({
        fleet: {
          workers: [
            {
              id: 'w-1',
              since: 0,
              running: 0,
              demand: 0,
              share: 60,
              beatAt: NOW,
              intakePaused: 'operator',
              balance: 90,
              windowUsed: null,
              gate: null,
            },
          ],
          leader: null,
        },
        intake: { paused: true, by: 'cli', at: NOW, note: '' },
        spend: {
          day: '2025-06-15',
          budget: 100,
          source: 'env',
          spent: 6,
          held: 4,
          committed: 10,
          paused: false,
          balance: 90,
          topUsers: [],
          today: { day: '2025-06-15', requests: 12, jobs: 9, credits: 18 },
        },
      }),
    ).split('\n');
    expect(lines).toContain('showcase_fleet_intake_paused_by_operator 1');
    expect(lines).toContain(
      'showcase_fleet_worker_intake_paused{worker="w-1",reason="operator"} 1',
    );
    expect(lines).toContain('showcase_fleet_credit_budget 100');
    expect(lines).toContain('showcase_fleet_credits_today{kind="spent"} 6');
    expect(lines).toContain('showcase_fleet_credits_today{kind="held"} 4');
    expect(lines).toContain('showcase_fleet_credits_today{kind="settled"} 18');
    expect(lines).toContain('showcase_fleet_jobs_today{kind="requests"} 12');
    expect(lines).toContain('showcase_fleet_jobs_today{kind="jobs"} 9');
    expect(lines).toContain('showcase_fleet_clipdrop_balance 90');
  });

  it('give live workers, their jobs and shares, jobs by status and failures by code', () => {
    const text = renderFleetMetrics(
      stateWith({
        fleet: {
          workers: [
            {
              id: 'w-1',
              since: NOW - 1000,
              running: 3,
              demand: 3,
              share: 40,
              beatAt: NOW,
              ...OPEN,
            },
            { id: 'w-2', since: NOW - 500, running: 0, demand: 0, share: 20, beatAt: NOW, ...OPEN },
          ],
          leader: 'w-1',
        },
        queue: {
          counts: { 'removing-background': 4, complete: 10, failed: 2 },
          countedAt: NOW,
          hourly: null,
          users: [],
          running: 3,
          waiting: 1,
          truncated: false,
        },
        failures: {
          windowHours: 24,
          byCode: [{ code: 'SOURCE_NOT_FOUND', count: 2 }],
          items: [],
          truncated: false,
        },
      }),
    );
    const lines = text.split('\n');
    expect(lines).toContain('showcase_fleet_workers_live 2');
    expect(lines).toContain('showcase_fleet_worker_running_jobs{worker="w-1"} 3');
    expect(lines).toContain('showcase_fleet_worker_quota_share{worker="w-2"} 20');
    expect(lines).toContain('showcase_fleet_sweep_leader 1');
    expect(lines).toContain('showcase_fleet_jobs{status="removing-background"} 4');
    expect(lines).toContain('showcase_fleet_jobs{status="failed"} 2');
    expect(lines).toContain('showcase_fleet_failures_24h{code="SOURCE_NOT_FOUND"} 2');
    // Each family is declared once, before its samples (Prometheus refuses duplicates).
    const types = lines.filter((l) => l.startsWith('# TYPE '));
    expect(new Set(types).size).toBe(types.length);
    expect(text.endsWith('\n')).toBe(true);
  });

  it('escape label values a worker id could break', () => {
    const text = renderFleetMetrics(
      stateWith({
        fleet: {
          workers: [
            { id: 'a"b\\c\nd', since: 0, running: 1, demand: 1, share: 1, beatAt: NOW, ...OPEN },
          ],
          leader: null,
        },
      }),
    );
    expect(text).toContain('showcase_fleet_worker_running_jobs{worker="a\\"b\\\\c\\nd"} 1');
    expect(text).toContain('showcase_fleet_sweep_leader 0');
  });
});

describe("the console's state", () => {
  it('counts failures of the window only, most frequent first', () => {
    const at = (h: number) => NOW - h * 3_600_000;
    const items = [
      { id: 'a', name: 'a', code: 'X', stage: '', message: '', at: at(1) },
      { id: 'b', name: 'b', code: 'Y', stage: '', message: '', at: at(2) },
      { id: 'c', name: 'c', code: 'Y', stage: '', message: '', at: at(3) },
      { id: 'd', name: 'd', code: 'X', stage: '', message: '', at: at(25) },
    ];
    expect(failuresByCode(items, NOW, 24)).toEqual([
      { code: 'Y', count: 2 },
      { code: 'X', count: 1 },
    ]);
  });

  it('shows a worker as live only while its heartbeat is fresh on Firestore’s clock', () => {
    const record = (id: string, beatAt: number) => ({
      workerId: id,
      startedAt: 0,
      beatAt,
      expiresAt: beatAt + 15_000,
      running: 0,
      demand: 0,
    });
    const rows = liveWorkers(
      [record('fresh', NOW - 1_000), record('dead', NOW - 60_000)],
      { fresh: { limit: 60 } },
      NOW,
      1_000,
    );
    expect(rows.map((r) => [r.id, r.share])).toEqual([['fresh', 60]]);
  });
});

describe("what a heartbeat says beside presence (the console's Fleet and Spend)", () => {
  it('names why a worker claims nothing new, and its balance; the lowest balance is the fleet’s', () => {
    expect(beatExtras({ intakePaused: 1, intakePausedBy: 'operator', clipdropBalance: 7 })).toEqual(
      {
        intakePaused: 'operator',
        balance: 7,
        windowUsed: null,
        gate: null,
      },
    );
    // A worker of the version before names no reason: still shown as paused.
    expect(beatExtras({ intakePaused: 1 }).intakePaused).toBe('paused');
    expect(beatExtras({ intakePaused: 0, intakePausedBy: 'budget' })).toEqual(OPEN);
    expect(beatExtras(undefined)).toEqual(OPEN);
    const row = { id: 'w', since: 0, running: 0, demand: 0, share: 0, beatAt: 0 };
    expect(
      lowestBalance([
        { ...row, ...OPEN, balance: 50 },
        { ...row, ...OPEN, balance: 20 },
        { ...row, ...OPEN },
      ]),
    ).toBe(20);
    expect(lowestBalance([{ ...row, ...OPEN }])).toBeNull();
  });
});
