import { firstValueFrom } from 'rxjs';
import { Timestamp } from 'firebase-admin/firestore';
import { describe, expect, it } from 'vitest';
import { AccountGate } from '../../src/clipdrop/account-gate.js';
import { createClipdropBeat } from '../../src/clipdrop/beat.js';
import { SlidingWindowLimiter } from '../../src/clipdrop/rate-limiter.js';
import { recordFields } from '../../src/adapters/firestore/job-fields.js';
import { mergeNotes } from '../../src/jobs/job-times.js';
import { JobError } from '../../src/jobs/errors.js';
import type { JobStore, Lease, OwnedWrite } from '../../src/jobs/ports.js';
import type { RoundTripCounter } from '../../src/jobs/round-trips.js';
import { openJobScope, unwatched, type JobWatch } from '../../src/pipeline/job-scope.js';
import { createStatusSink } from '../../src/pipeline/status-sink.js';
import { leaseOf, recordingLog } from './fakes.js';

/** A store that records each owned write and answers at once (or as `answer` says). */
function recordingStore(answer: (op: string) => Promise<void> = () => Promise.resolve()) {
  const writes: Array<{ op: string; write: OwnedWrite }> = [];
  const take = (op: string, lease: Lease, write: OwnedWrite) => {
    writes.push({ op, write });
    return answer(op).then(() => lease);
  };
  const store: JobStore = {
    claim: () => Promise.reject(new Error('not used')),
    renew: (lease, write) => take('renew', lease, write),
    writeStage: (lease, status, write) => take(`stage:${status}`, lease, write),
    complete: (lease, _r, write) => take('complete', lease, write).then(() => undefined),
    fail: (lease, _e, _s, write) => take('fail', lease, write).then(() => undefined),
    release: (lease, write) => take('release', lease, write).then(() => undefined),
  };
  return { store, writes };
}

const result = { url: 'https://x/y.png', path: 'p', width: 1, height: 1, bytes: 1 };
const retry = { maxTries: 1, baseMs: 1, maxMs: 1, maxRetryAfterMs: 1 };

describe('stage times and round trips ride on the writes a job makes anyway', () => {
  it('a note goes with the next write, once; the final write adds what onFinal says then', async () => {
    const { store, writes } = recordingStore();
    const writer = createStatusSink(store).open(leaseOf('c1'));
    let trips = 3;
    writer.onFinal(() => ({ roundTrips: { sequential: trips, total: trips + 2 } }));
    writer.note({ stages: { upscaling: { startedAt: 1_000 } } });
    await writer.stage('upscaling');
    await writer.renew();
    writer.note({ stages: { upscaling: { ms: 40 } } });
    writer.note({ stages: { finalizing: { startedAt: 1_050 } } });
    trips = 5;
    await writer.complete(result);
    expect(writes.map((w) => [w.op, w.write.notes])).toEqual([
      ['stage:upscaling', { stages: { upscaling: { startedAt: 1_000 } } }],
      ['renew', undefined],
      [
        'complete',
        {
          stages: { upscaling: { ms: 40 }, finalizing: { startedAt: 1_050 } },
          roundTrips: { sequential: 5, total: 7 },
        },
      ],
    ]);
  });

  it('a stage write the sink skips leaves its note to the next write; a release adds no round trips', async () => {
    const { store, writes } = recordingStore();
    // A recovered job found at finalizing: its earlier stages' writes are skipped.
    const writer = createStatusSink(store).open({
      ...leaseOf('c1'),
      statusAtClaim: 'finalizing',
    });
    writer.onFinal(() => ({ roundTrips: { sequential: 1, total: 1 } }));
    writer.note({ stages: { upscaling: { startedAt: 7 } } });
    await writer.stage('upscaling');
    expect(writes).toEqual([]);
    await writer.release();
    expect(writes.map((w) => [w.op, w.write.notes])).toEqual([
      ['release', { stages: { upscaling: { startedAt: 7 } } }],
    ]);
  });

  it('notes of a write that surely failed go with the next one; the retried final write counts anew', async () => {
    let refuse = true;
    const { store, writes } = recordingStore((op) =>
      op === 'fail' && refuse
        ? ((refuse = false), Promise.reject(new Error('INVALID_ARGUMENT')))
        : Promise.resolve(),
    );
    const writer = createStatusSink(store).open(leaseOf('c1'));
    let trips = 4;
    writer.onFinal(() => ({ roundTrips: { sequential: trips, total: trips } }));
    writer.note({ stages: { 'removing-background': { ms: 12 } } });
    const error = new JobError('SOURCE_NOT_FOUND');
    await expect(writer.fail(error, 'removing-background')).rejects.toThrow('INVALID_ARGUMENT');
    trips = 6;
    await writer.fail(error, 'removing-background');
    expect(writes.map((w) => w.write.notes)).toEqual([
      { stages: { 'removing-background': { ms: 12 } }, roundTrips: { sequential: 4, total: 4 } },
      { stages: { 'removing-background': { ms: 12 } }, roundTrips: { sequential: 6, total: 6 } },
    ]);
  });

  it('a final write that surely failed leaves no round trips to a release after it', async () => {
    const { store, writes } = recordingStore((op) =>
      op === 'complete' ? Promise.reject(new Error('INVALID_ARGUMENT')) : Promise.resolve(),
    );
    const writer = createStatusSink(store).open(leaseOf('c1'));
    writer.onFinal(() => ({ roundTrips: { sequential: 9, total: 9 } }));
    writer.note({ stages: { finalizing: { ms: 5 } } });
    await expect(writer.complete(result)).rejects.toThrow('INVALID_ARGUMENT');
    await writer.release();
    expect(writes.map((w) => [w.op, w.write.notes])).toEqual([
      ['complete', { stages: { finalizing: { ms: 5 } }, roundTrips: { sequential: 9, total: 9 } }],
      ['release', { stages: { finalizing: { ms: 5 } } }],
    ]);
  });

  it('mergeNotes: stage by stage, field by field, the later wins', () => {
    expect(
      mergeNotes(
        { stages: { upscaling: { startedAt: 1, ms: 2 } }, roundTrips: { sequential: 1, total: 1 } },
        { stages: { upscaling: { ms: 3 }, finalizing: { startedAt: 4 } } },
      ),
    ).toEqual({
      stages: { upscaling: { startedAt: 1, ms: 3 }, finalizing: { startedAt: 4 } },
      roundTrips: { sequential: 1, total: 1 },
    });
    expect(mergeNotes({}, {})).toEqual({});
  });
});

describe('the job scope notes each stage on its writer', () => {
  function scopeWith(clock: { mono: number; server: number }) {
    const notes: unknown[] = [];
    let final: (() => unknown) | undefined;
    const writer = {
      lease: leaseOf('c1'),
      note: (n: unknown) => notes.push(n),
      onFinal: (f: () => unknown) => (final = f),
    } as unknown as Parameters<ReturnType<typeof openJobScope>['claimed']>[0];
    let inFlight: RoundTripCounter | undefined;
    const watch: JobWatch = {
      ...unwatched,
      roundTrips: {
        run: async (trips, call) => {
          const end = trips.begin();
          inFlight = trips;
          try {
            return await call();
          } finally {
            end();
          }
        },
        report: (trips) => ({ sequential: trips.sequential, total: trips.total }),
      },
    };
    const scope = openJobScope(
      { characterId: 'c1', origin: 'listener', seenAt: 0 },
      recordingLog(),
      { retry, renewEveryMs: 1_000_000, now: () => clock.mono, serverNow: () => clock.server },
      watch,
    );
    const job = scope.claimed(writer, 'listener');
    return { job, notes, final: () => final?.(), inFlight: () => inFlight };
  }

  it('start on Firestore’s clock, duration on the monotonic one; a failure’s final write times the open stage', async () => {
    const clock = { mono: 100, server: 1_700_000_000_000 };
    const { job, notes, final } = scopeWith(clock);
    const done = job.enter('removing-background');
    clock.mono += 250;
    clock.server += 9_999; // Firestore's clock is not what durations are measured on
    done();
    job.enter('upscaling');
    clock.mono += 30;
    await firstValueFrom(job.call('a', () => Promise.resolve(1)));
    await firstValueFrom(job.call('b', () => Promise.resolve(2)));
    expect(notes).toEqual([
      { stages: { 'removing-background': { startedAt: 1_700_000_000_000 } } },
      { stages: { 'removing-background': { ms: 250 } } },
      { stages: { upscaling: { startedAt: 1_700_000_009_999 } } },
    ]);
    // Two requests done, none in flight: the final write is the third, in sequence.
    expect(final()).toEqual({
      stages: { upscaling: { ms: 30 } },
      roundTrips: { sequential: 3, total: 3 },
    });
  });

  it('a finished stage is not timed again by the final write; a request in flight adds no sequential trip', async () => {
    const clock = { mono: 0, server: 5 };
    const { job, final } = scopeWith(clock);
    job.enter('finalizing')();
    let release!: () => void;
    const hanging = firstValueFrom(
      job.call('slow', () => new Promise<void>((resolve) => (release = resolve))),
    );
    await new Promise((resolve) => setImmediate(resolve));
    expect(final()).toEqual({ roundTrips: { sequential: 1, total: 2 } });
    release();
    await hanging;
  });
});

describe('the record fields a write carries', () => {
  it('dotted paths per stage field (earlier stages stay), Timestamps on Firestore’s clock, round trips whole', () => {
    const usage = { calls: { removeBackground: 0, upscale: 0 }, credits: 0 };
    const fields = recordFields(usage, {
      stages: { upscaling: { startedAt: 1_700_000_000_123.6, ms: 41.4 } },
      roundTrips: { sequential: 5, total: 10 },
    });
    expect(fields).toEqual({
      'visuals.showcaseJob.stages.upscaling.startedAt': Timestamp.fromMillis(1_700_000_000_124),
      'visuals.showcaseJob.stages.upscaling.ms': 41,
      'visuals.showcaseJob.roundTrips': { sequential: 5, total: 10 },
    });
    expect(recordFields(usage, undefined)).toEqual({});
  });
});

describe("the heartbeat's ClipDrop fields", () => {
  it('open: the window’s use; paused: why and since when (Firestore’s clock), the reason as the gate has it now', async () => {
    const gate = new AccountGate({
      firstProbeMs: 60_000,
      maxProbeMs: 60_000,
      transientRetryMs: () => 60_000,
      outageThreshold: 2,
      events: { paused: () => undefined, resumed: () => undefined },
      timers: { after: () => () => undefined, now: () => 0 },
    });
    let now = 0;
    const limiter = new SlidingWindowLimiter({ limit: 10, windowMs: 60_000, now: () => now });
    let server = 1_700_000_000_000;
    const beat = createClipdropBeat(
      () => ({ gate, limiter }),
      () => server,
    );
    expect(beat.fields()).toEqual({ clipdropWindowUsed: 0, clipdropPaused: 0 });

    (await limiter.acquire()).done();
    const inFlight = await limiter.acquire();
    gate.accountRefused('no-credits', '402', false);
    beat.paused(true);
    server += 5_000;
    expect(beat.fields()).toEqual({
      clipdropWindowUsed: 2,
      clipdropPaused: 1,
      clipdropPausedBy: 'no-credits',
      clipdropPausedSince: 1_700_000_000_000,
    });
    inFlight.done();
    now = 61_000; // both calls have left the window

    gate.succeeded(true);
    beat.paused(false);
    expect(beat.fields()).toEqual({ clipdropWindowUsed: 0, clipdropPaused: 0 });
  });
});
