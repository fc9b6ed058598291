import { Timestamp } from 'firebase-admin/firestore';
import { describe, expect, it } from 'vitest';
import { formatFleet } from '../../src/cli/fleet.js';
import { renderFleetMetrics } from '../../src/console/metrics.js';
import { consoleState } from './console-state-fixture.js';
import {
  beatExtras,
  jobDetail,
  keyWindowUse,
  stagesOf,
  type WorkerRow,
} from '../../src/console/state.js';

const NOW = 1_750_000_000_000;

function worker(id: string, extra: Partial<WorkerRow> = {}): WorkerRow {
  return {
    id,
    since: 0,
    running: 1,
    demand: 1,
    share: 30,
    beatAt: NOW,
    intakePaused: null,
    balance: null,
    windowUsed: null,
    gate: null,
    ...extra,
  };
}

const stateOf = (workers: WorkerRow[]) => consoleState(NOW, { fleet: { workers, leader: null } });

describe("the heartbeat's ClipDrop fields, as the console reads them", () => {
  it('a paused gate: why and since when; the window used', () => {
    expect(
      beatExtras({
        clipdropWindowUsed: 7,
        clipdropPaused: 1,
        clipdropPausedBy: 'no-credits',
        clipdropPausedSince: NOW - 60_000,
      }),
    ).toMatchObject({ windowUsed: 7, gate: { reason: 'no-credits', since: NOW - 60_000 } });
  });

  it('an open gate, a worker that says nothing (an older version), and nonsense', () => {
    expect(
      beatExtras({ clipdropWindowUsed: 0, clipdropPaused: 0, clipdropPausedBy: 'outage' }),
    ).toMatchObject({ windowUsed: 0, gate: null });
    expect(beatExtras({})).toMatchObject({ windowUsed: null, gate: null });
    expect(
      beatExtras({ clipdropWindowUsed: -1, clipdropPaused: 1, clipdropPausedSince: 'soon' }),
    ).toMatchObject({ windowUsed: null, gate: { reason: 'paused', since: null } });
  });

  it("the key's window is the workers' summed; unknown when none tells", () => {
    expect(
      keyWindowUse([worker('a', { windowUsed: 3 }), worker('b'), worker('c', { windowUsed: 4 })]),
    ).toBe(7);
    expect(keyWindowUse([worker('a')])).toBeNull();
  });
});

describe('the console /metrics: quota use and the gate', () => {
  it('per worker and in total, and each gate with its reason', () => {
    const text = renderFleetMetrics(
      stateOf([
        worker('w-1', { windowUsed: 12, gate: { reason: 'no-credits', since: NOW } }),
        worker('w-2', { windowUsed: 5 }),
        worker('w-3'),
      ]),
    );
    const lines = text.split('\n');
    expect(lines).toContain('showcase_fleet_worker_window_used{worker="w-1"} 12');
    expect(lines).toContain('showcase_fleet_worker_window_used{worker="w-2"} 5');
    expect(text).not.toContain('showcase_fleet_worker_window_used{worker="w-3"}');
    expect(lines).toContain('showcase_fleet_window_used 17');
    expect(lines).toContain(
      'showcase_fleet_worker_clipdrop_paused{worker="w-1",reason="no-credits"} 1',
    );
    expect(lines).toContain('showcase_fleet_worker_clipdrop_paused{worker="w-2",reason=""} 0');
    const types = lines.filter((l) => l.startsWith('# TYPE '));
    expect(new Set(types).size).toBe(types.length);
  });

  it('no total when no worker tells its window', () => {
    const lines = renderFleetMetrics(stateOf([worker('w-1')])).split('\n');
    expect(lines.some((l) => l.startsWith('showcase_fleet_window_used '))).toBe(false);
  });
});

describe("one job's stage times, round trips and credits", () => {
  it('stages in the job’s order, a stage still running has no duration; round trips and credits', () => {
    const at = (ms: number) => Timestamp.fromMillis(ms);
    const detail = jobDetail(
      'c1',
      {
        visuals: {
          showcaseProcessingStatus: 'complete',
          showcaseJob: {
            jobId: 'j',
            state: 'complete',
            attempts: 1,
            credits: 2,
            calls: { removeBackground: 1, upscale: 1 },
            roundTrips: { sequential: 5, total: 10 },
            stages: {
              finalizing: { startedAt: at(NOW + 3_000), ms: 400 },
              'removing-background': { startedAt: at(NOW), ms: 1_500 },
              upscaling: { startedAt: at(NOW + 1_500) },
              bogus: { startedAt: at(NOW) },
            },
          },
        },
      },
      NOW,
    );
    expect(detail.job?.stages).toEqual([
      { stage: 'removing-background', startedAt: NOW, ms: 1_500 },
      { stage: 'upscaling', startedAt: NOW + 1_500, ms: null },
      { stage: 'finalizing', startedAt: NOW + 3_000, ms: 400 },
    ]);
    expect(detail.job?.roundTrips).toEqual({ sequential: 5, total: 10 });
    expect(detail.job?.credits).toBe(2);
  });

  it('a record from before these fields: no stages, no round trips', () => {
    const detail = jobDetail(
      'c1',
      { visuals: { showcaseJob: { jobId: 'j', roundTrips: { sequential: 'x' } } } },
      NOW,
    );
    expect(detail.job?.stages).toEqual([]);
    expect(detail.job?.roundTrips).toBeNull();
    expect(stagesOf(undefined)).toEqual([]);
    expect(stagesOf({ upscaling: {} })).toEqual([]);
  });
});

describe('`showcase-worker status` fleet lines', () => {
  it('show the window used against the share, and a paused gate', () => {
    const base = {
      since: '2026-01-01T00:00:00.000Z',
      running: 1,
      demand: 1,
      share: 30,
      lastBeatAgoMs: 2_000,
    };
    const [, paused, open, older] = formatFleet(
      [
        { ...base, id: 'w-1', windowUsed: 9, clipdropPausedBy: 'no-credits' },
        { ...base, id: 'w-2', windowUsed: 4 },
        { ...base, id: 'w-3' },
      ],
      60,
    );
    expect(paused).toContain('window 9/30');
    expect(paused).toContain('clipdrop paused (no-credits)');
    expect(open).toContain('window 4/30');
    expect(open).not.toContain('clipdrop paused');
    expect(older).not.toContain('window');
  });
});
