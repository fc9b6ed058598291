import { defer, finalize, NEVER, Subject, type Observable } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import type { JobOutcome, JobRequest } from '../../src/jobs/ports.js';
import { createActiveJobs } from '../../src/pipeline/active-jobs.js';
import type { JobWriter } from '../../src/pipeline/status-sink.js';
import { createWorker } from '../../src/pipeline/worker.js';
import { recordingLog } from './fakes.js';

const request = (characterId: string): JobRequest => ({
  characterId,
  origin: 'listener',
  seenAt: 0,
});

const requests: Record<string, JobRequest> = {
  a: request('a'),
  b: request('b'),
  c: request('c'),
  d: request('d'),
  e: request('e'),
};

function scheduler() {
  return new TestScheduler((actual, expected) => {
    expect(actual).toEqual(expected);
  });
}

/**
 * A fake runJob: each job is the cold observable `jobFor(id)` returns, and the harness records
 * when jobs start and how many run at once.
 */
function harness(ts: TestScheduler, jobFor: (id: string) => Observable<JobOutcome>) {
  const started: string[] = [];
  let running = 0;
  let maxRunning = 0;
  const runJob = (req: JobRequest) =>
    defer(() => {
      running += 1;
      maxRunning = Math.max(maxRunning, running);
      started.push(`${ts.now()}:${req.characterId}`);
      return jobFor(req.characterId);
    }).pipe(finalize(() => (running -= 1)));
  return { runJob, started, maxRunning: () => maxRunning, running: () => running };
}

const outcome = (characterId: string, kind: JobOutcome['kind'] = 'complete'): JobOutcome => ({
  characterId,
  kind,
  durationMs: 5,
});

function record(ts: TestScheduler, outcomes$: Observable<JobOutcome>) {
  const seen: string[] = [];
  outcomes$.subscribe((o) => seen.push(`${ts.now()}:${o.characterId}:${o.kind}`));
  return seen;
}

describe('createWorker', () => {
  it('never holds more than `heldJobs` jobs at once; the rest wait for a slot', () => {
    const ts = scheduler();
    ts.run(({ cold, flush }) => {
      const h = harness(ts, (id) => cold('5ms (o|)', { o: outcome(id) }));
      const worker = createWorker(
        cold('abcde', requests),
        h.runJob,
        { heldJobs: 2, log: recordingLog() },
        createActiveJobs(),
      );
      const seen = record(ts, worker.outcomes$);
      worker.start(() => undefined);
      flush();
      expect(h.maxRunning()).toBe(2);
      expect(h.started).toEqual(['0:a', '1:b', '5:c', '6:d', '10:e']);
      expect(seen).toEqual([
        '5:a:complete',
        '6:b:complete',
        '10:c:complete',
        '11:d:complete',
        '15:e:complete',
      ]);
    });
  });

  it("marks a new user's first job (no other job of theirs running here): its calls go first", () => {
    const ts = scheduler();
    ts.run(({ cold, flush }) => {
      const marked: string[] = [];
      const runJob = (req: JobRequest) =>
        defer(() => {
          marked.push(`${ts.now()}:${req.characterId}:${req.ownersFirst === true}`);
          return cold('5ms (o|)', { o: outcome(req.characterId) });
        });
      const by = (id: string, ownerId: string): JobRequest => ({ ...request(id), ownerId });
      const worker = createWorker(
        cold('abc 5ms d', {
          a: by('a', 'u1'),
          b: by('b', 'u1'),
          c: by('c', 'u2'),
          d: by('d', 'u1'),
        }),
        runJob,
        { heldJobs: 4, log: recordingLog() },
        createActiveJobs(),
      );
      worker.start(() => undefined);
      flush();
      // u1's second job runs beside its first: not first; u2's is; u1 again once idle here.
      expect(marked).toEqual(['0:a:true', '1:b:false', '2:c:true', '8:d:true']);
    });
  });

  it('with one job held at a time runs jobs one after another', () => {
    const ts = scheduler();
    ts.run(({ cold, flush }) => {
      const h = harness(ts, (id) => cold('3ms (o|)', { o: outcome(id) }));
      const worker = createWorker(
        cold('abc', requests),
        h.runJob,
        {
          heldJobs: 1,
          log: recordingLog(),
        },
        createActiveJobs(),
      );
      worker.start(() => undefined);
      flush();
      expect(h.maxRunning()).toBe(1);
      expect(h.started).toEqual(['0:a', '3:b', '6:c']);
    });
  });

  it('replays, once, a request for a character that came while its job ran (a click during clean-up)', () => {
    const ts = scheduler();
    ts.run(({ cold, flush }) => {
      const h = harness(ts, (id) => cold('5ms (o|)', { o: outcome(id) }));
      const worker = createWorker(
        cold('a-a-a', requests),
        h.runJob,
        {
          heldJobs: 4,
          log: recordingLog(),
        },
        createActiveJobs(),
      );
      const seen = record(ts, worker.outcomes$);
      worker.start(() => undefined);
      flush();
      // The claim decides what the replay is worth: here the fake runs it again.
      expect(h.started).toEqual(['0:a', '5:a']);
      expect(seen).toEqual(['5:a:complete', '10:a:complete']);
    });
  });

  it('drops a second request for a character still waiting for a slot', () => {
    const ts = scheduler();
    ts.run(({ cold, flush }) => {
      const h = harness(ts, (id) => cold('5ms (o|)', { o: outcome(id) }));
      const worker = createWorker(
        cold('abb', requests),
        h.runJob,
        {
          heldJobs: 1,
          log: recordingLog(),
        },
        createActiveJobs(),
      );
      worker.start(() => undefined);
      flush();
      expect(h.started).toEqual(['0:a', '5:b']);
    });
  });

  it('skips, with no job run, a request taken elsewhere while it waited for a slot (stillOpen)', () => {
    const ts = scheduler();
    ts.run(({ cold, flush }) => {
      const h = harness(ts, (id) => cold('5ms (o|)', { o: outcome(id) }));
      // b is taken by another worker at 3 ms, while a holds the only slot.
      const open = (r: JobRequest) => r.characterId !== 'b' || ts.now() < 3;
      const worker = createWorker(
        cold('abc', requests),
        h.runJob,
        { heldJobs: 1, log: recordingLog(), stillOpen: open },
        createActiveJobs(),
      );
      const seen = record(ts, worker.outcomes$);
      worker.start(() => undefined);
      flush();
      expect(h.started).toEqual(['0:a', '5:c']);
      expect(seen).toEqual(['5:a:complete', '5:b:skipped', '10:c:complete']);
    });
  });

  it('runs a request for the same character again once its job has finished', () => {
    const ts = scheduler();
    ts.run(({ cold, flush }) => {
      const h = harness(ts, (id) => cold('5ms (o|)', { o: outcome(id) }));
      const worker = createWorker(
        cold('a-------a', requests),
        h.runJob,
        {
          heldJobs: 2,
          log: recordingLog(),
        },
        createActiveJobs(),
      );
      const seen = record(ts, worker.outcomes$);
      worker.start(() => undefined);
      flush();
      expect(h.started).toEqual(['0:a', '8:a']);
      expect(seen).toEqual(['5:a:complete', '13:a:complete']);
    });
  });

  it('keeps running other jobs after one fails', () => {
    const ts = scheduler();
    ts.run(({ cold, flush }) => {
      const h = harness(ts, (id) =>
        id === 'a'
          ? cold('-(f|)', { f: { ...outcome('a', 'failed'), code: 'CLIPDROP_REJECTED' } })
          : cold('3ms (o|)', { o: outcome(id) }),
      );
      let fatal: unknown;
      let completed = false;
      const worker = createWorker(
        cold('ab--c', requests),
        h.runJob,
        {
          heldJobs: 1,
          log: recordingLog(),
        },
        createActiveJobs(),
      );
      const seen = record(ts, worker.outcomes$);
      worker.outcomes$.subscribe({ complete: () => (completed = true) });
      worker.start((err) => (fatal = err));
      flush();
      expect(seen).toEqual(['1:a:failed', '4:b:complete', '7:c:complete']);
      expect(fatal).toBeUndefined();
      expect(completed).toBe(false);
    });
  });

  it('reports a request source that errors through onFatal and outcomes$', () => {
    const ts = scheduler();
    ts.run(({ cold, flush }) => {
      const boom = new Error('listener gave up');
      const h = harness(ts, (id) => cold('(o|)', { o: outcome(id) }));
      const worker = createWorker(
        cold('a--#', requests, boom),
        h.runJob,
        {
          heldJobs: 1,
          log: recordingLog(),
        },
        createActiveJobs(),
      );
      let outcomesError: unknown;
      worker.outcomes$.subscribe({ error: (err: unknown) => (outcomesError = err) });
      let fatal: unknown;
      worker.start((err) => (fatal = err));
      flush();
      expect(fatal).toBe(boom);
      expect(outcomesError).toBe(boom);
    });
  });

  it('stop() stops intake: later requests are not run', async () => {
    const ts = scheduler();
    let stopped: Promise<{ drained: boolean; released: number }> | undefined;
    let h: ReturnType<typeof harness> | undefined;
    ts.run(({ cold, flush }) => {
      h = harness(ts, (id) => cold('3ms (o|)', { o: outcome(id) }));
      const worker = createWorker(
        cold('a-----b--c', requests),
        h.runJob,
        {
          heldJobs: 2,
          log: recordingLog(),
        },
        createActiveJobs(),
      );
      worker.start(() => undefined);
      ts.schedule(() => {
        stopped = worker.stop(1_000);
      }, 5);
      flush();
    });
    expect(h?.started).toEqual(['0:a']);
    await expect(stopped).resolves.toEqual({ drained: true, released: 0 });
  });

  it('stop() lets running jobs finish and skips those still waiting for a slot', async () => {
    const ts = scheduler();
    let stopped: Promise<{ drained: boolean; released: number }> | undefined;
    let h: ReturnType<typeof harness> | undefined;
    let seen: string[] = [];
    ts.run(({ cold, flush }) => {
      h = harness(ts, (id) => cold('10ms (o|)', { o: outcome(id) }));
      const worker = createWorker(
        cold('ab--c', requests),
        h.runJob,
        {
          heldJobs: 1,
          log: recordingLog(),
        },
        createActiveJobs(),
      );
      seen = record(ts, worker.outcomes$);
      worker.start(() => undefined);
      ts.schedule(() => {
        stopped = worker.stop(60_000);
      }, 3);
      flush();
    });
    expect(h?.started).toEqual(['0:a']);
    expect(seen).toEqual(['10:a:complete', '10:b:skipped']);
    await expect(stopped).resolves.toEqual({ drained: true, released: 0 });
  });

  it('stop() releases the leases of jobs still running at the deadline', async () => {
    const log = recordingLog();
    const released: string[] = [];
    const active = createActiveJobs();
    const requests$ = new Subject<JobRequest>();
    const worker = createWorker(
      requests$,
      (req) => {
        active.track(req.characterId, {
          release: () => {
            released.push(req.characterId);
            return Promise.resolve();
          },
        } as JobWriter);
        return NEVER;
      },
      { heldJobs: 2, log },
      active,
    );
    worker.start(() => undefined);
    requests$.next(request('a'));
    requests$.next(request('b'));
    await expect(worker.stop(0)).resolves.toEqual({ drained: false, released: 2 });
    expect(released).toEqual(['a', 'b']);
    expect(log.messages('warn')).toContain('worker.drain_timeout');
    // Intake is closed.
    requests$.next(request('c'));
    expect(active.has('c')).toBe(false);
  });
});
