import { firstValueFrom, Subject } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it, vi } from 'vitest';
import {
  PresenceLapsedError,
  type Fence,
  type JobRequest,
  type Lease,
  type Telemetry,
} from '../../src/jobs/ports.js';
import { RoundTripCounter } from '../../src/jobs/round-trips.js';
import { openJobScope, unwatched, watching, type JobWatch } from '../../src/pipeline/job-scope.js';
import type { JobWriter } from '../../src/pipeline/status-sink.js';
import { leaseOf, recordingLog } from './fakes.js';

const request: JobRequest = { characterId: 'c1', origin: 'listener', seenAt: 0 };
const retry = { maxTries: 1, baseMs: 1, maxMs: 1, maxRetryAfterMs: 1 };

function writerOf(lease: Lease, renew: () => Promise<void> = () => Promise.resolve()): JobWriter {
  return { lease, renew, note: () => undefined, onFinal: () => undefined } as unknown as JobWriter;
}

function telemetry(): Telemetry & { claimed: number[]; stages: [string, number][] } {
  const claimed: number[] = [];
  const stages: [string, number][] = [];
  return {
    claimed,
    stages,
    jobClaimed: (ms) => claimed.push(ms),
    stageFinished: (stage, ms) => stages.push([stage, ms]),
    jobFinished: () => undefined,
    listenerResubscribed: () => undefined,
  };
}

describe('a job scope', () => {
  it('fills each watch part left out, or given as undefined, with its default', () => {
    const track = () => undefined;
    const watch = watching({ fence: undefined, track });
    expect(watch.fence).toBe(unwatched.fence);
    expect(watch.telemetry).toBe(unwatched.telemetry);
    expect(watch.track).toBe(track);
    expect(watching()).toEqual(unwatched);
  });

  it('reports no counts where no adapter counts (the unwatched defaults)', () => {
    const scope = openJobScope(request, recordingLog(), { retry, renewEveryMs: 10 }, unwatched);
    const outcome = scope.outcome('skipped', 'held');
    expect(outcome).toMatchObject({ characterId: 'c1', kind: 'skipped', code: 'held' });
    expect(outcome).not.toHaveProperty('firestore');
    expect(outcome).not.toHaveProperty('roundTrips');
  });

  it("reports the adapter's counts, the round trips only once the job has settled", async () => {
    const watch: JobWatch = {
      ...unwatched,
      roundTrips: {
        run: (trips, call) => {
          trips.begin()();
          return call();
        },
        report: (trips: RoundTripCounter) => ({ sequential: trips.sequential, total: trips.total }),
      },
      firestoreOps: () => ({ reads: 2, writes: 3 }),
    };
    const scope = openJobScope(request, recordingLog(), { retry, renewEveryMs: 10 }, watch);
    await firstValueFrom(scope.retried('claim', () => Promise.resolve('ok')));
    expect(scope.outcome('skipped')).not.toHaveProperty('roundTrips');
    const job = scope.claimed(writerOf(leaseOf('c1')), 'listener');
    await firstValueFrom(job.call('fetch', () => Promise.resolve(1)));
    job.settled();
    expect(scope.outcome('complete')).toMatchObject({
      firestore: { reads: 2, writes: 3 },
      roundTrips: { sequential: 2, total: 2 },
    });
  });

  it('claimed: logs job.claimed with the pickup, tracks the writer until the job ends', () => {
    const log = recordingLog();
    const tracked: [string, boolean][] = [];
    const t = telemetry();
    const scope = openJobScope(
      request,
      log,
      { retry, renewEveryMs: 10, now: () => 5_000, serverNow: () => 5_000 },
      { ...unwatched, telemetry: t, track: (id, w) => tracked.push([id, w !== undefined]) },
    );
    const job = scope.claimed(writerOf({ ...leaseOf('c1'), requestedAt: 4_200 }), 'sweep');
    expect(log.entries[0]).toMatchObject({
      message: 'job.claimed',
      fields: { origin: 'sweep', pickupMs: 800 },
    });
    expect(t.claimed).toEqual([800]);
    job.ended();
    expect(tracked).toEqual([
      ['c1', true],
      ['c1', false],
    ]);
  });

  it('names the stage it is in on every event, and reports each stage when it is done', () => {
    const log = recordingLog();
    let clock = 0;
    const t = telemetry();
    const scope = openJobScope(
      request,
      log,
      { retry, renewEveryMs: 10, now: () => clock },
      { ...unwatched, telemetry: t },
    );
    const job = scope.claimed(writerOf(leaseOf('c1')), 'listener');
    const done = job.enter('upscaling');
    clock = 70;
    job.event('job.cache_hit', { key: 'k' });
    done();
    expect(job.stage).toBe('upscaling');
    expect(log.entries.at(-1)).toMatchObject({
      message: 'job.cache_hit',
      fields: { stage: 'upscaling', elapsedMs: 70, key: 'k' },
    });
    expect(t.stages).toEqual([['upscaling', 70]]);
  });

  it('refuses every call once the fence no longer holds the claim', async () => {
    let holds = true;
    const fence: Fence = { holds: () => holds, lapses$: new Subject<void>() };
    const scope = openJobScope(
      request,
      recordingLog(),
      { retry, renewEveryMs: 10 },
      { ...unwatched, fence },
    );
    const job = scope.claimed(writerOf(leaseOf('c1')), 'listener');
    const call = vi.fn(() => Promise.resolve('paid'));
    await expect(firstValueFrom(job.call('upscale', call))).resolves.toBe('paid');
    holds = false;
    await expect(firstValueFrom(job.call('upscale', call))).rejects.toBeInstanceOf(
      PresenceLapsedError,
    );
    expect(call).toHaveBeenCalledTimes(1);
  });

  it('guard$: a lapse of the fence ends the job at once, with PresenceLapsedError', () => {
    const ts = new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
    ts.run(({ hot, expectObservable }) => {
      const lapses$ = hot<void>('---x');
      const scope = openJobScope(
        request,
        recordingLog(),
        { retry, renewEveryMs: 1_000, scheduler: ts },
        { ...unwatched, fence: { holds: () => true, lapses$ } },
      );
      const job = scope.claimed(writerOf(leaseOf('c1')), 'listener');
      expectObservable(job.guard$).toBe('---#', undefined, new PresenceLapsedError('c1'));
    });
  });

  it('guard$: renews the lease after renewEveryMs, never two renewals at once', () => {
    const ts = new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
    const renew = vi.fn(() => new Promise<void>(() => undefined));
    ts.run(({ expectObservable }) => {
      const scope = openJobScope(
        request,
        recordingLog(),
        { retry, renewEveryMs: 10, scheduler: ts },
        unwatched,
      );
      const job = scope.claimed(writerOf(leaseOf('c1'), renew), 'listener');
      // A renewal that never answers holds the next one back (never two at once).
      expectObservable(job.guard$, '^ 35ms !').toBe('');
    });
    expect(renew).toHaveBeenCalledTimes(1);
  });
});
