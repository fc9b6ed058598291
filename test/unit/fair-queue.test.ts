import { defer, delay, finalize, of, type Observable } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import type { JobOutcome, JobRequest } from '../../src/jobs/ports.js';
import { createActiveJobs } from '../../src/pipeline/active-jobs.js';
import { fairMerge } from '../../src/pipeline/fair-queue.js';
import { createWorker } from '../../src/pipeline/worker.js';
import { recordingLog } from './fakes.js';

function scheduler() {
  return new TestScheduler((actual, expected) => {
    expect(actual).toEqual(expected);
  });
}

/** Values are `<owner><n>`, e.g. `a1`: the owner is the first letter. */
const ownerOf = (v: string) => v[0];

/** A job of `ms` virtual milliseconds that records when it started. */
function jobs(ts: TestScheduler, ms: number) {
  const started: string[] = [];
  let running = 0;
  let maxRunning = 0;
  const project = (v: string) =>
    defer(() => {
      started.push(`${ts.now()}:${v}`);
      running += 1;
      maxRunning = Math.max(maxRunning, running);
      return ts.createColdObservable(`${ms}ms (x|)`, { x: v });
    }).pipe(finalize(() => (running -= 1)));
  return { project, started, maxRunning: () => maxRunning };
}

describe('fairMerge', () => {
  it('serves owners round-robin: a late owner waits for one slot, not behind the first owner', () => {
    const ts = scheduler();
    ts.run(({ cold, expectObservable }) => {
      const j = jobs(ts, 10);
      // Owner a queues six jobs at once; owner b queues two, 1 ms later.
      const source = cold('(abcdef)g-h', {
        a: 'a1',
        b: 'a2',
        c: 'a3',
        d: 'a4',
        e: 'a5',
        f: 'a6',
        g: 'b1',
        h: 'b2',
      });
      const out = source.pipe(fairMerge(j.project, { concurrency: 2, keyOf: ownerOf }));
      // Arrival order would run b1 at 30 ms and b2 at 40 ms; round-robin runs b1 as soon as a
      // slot frees (10 ms), then alternates a and b.
      expectObservable(out).toBe('10ms (xy) 6ms (zw) 6ms (uv) 6ms (st)', {
        x: 'a1',
        y: 'a2',
        z: 'b1',
        w: 'a3',
        u: 'b2',
        v: 'a4',
        s: 'a5',
        t: 'a6',
      });
    });
  });

  it('starts the jobs in round-robin order, arrival order within an owner', () => {
    const ts = scheduler();
    const j = jobs(ts, 5);
    ts.run(({ cold, flush }) => {
      const source = cold('(abcdefgh)', {
        a: 'a1',
        b: 'a2',
        c: 'a3',
        d: 'b1',
        e: 'b2',
        f: 'c1',
        g: 'a4',
        h: 'c2',
      });
      source.pipe(fairMerge(j.project, { concurrency: 1, keyOf: ownerOf })).subscribe();
      flush();
    });
    expect(j.started.map((s) => s.split(':')[1])).toEqual([
      'a1',
      'b1',
      'c1',
      'a2',
      'b2',
      'c2',
      'a3',
      'a4',
    ]);
  });

  it('gives a lone owner every slot, as mergeMap would', () => {
    const ts = scheduler();
    const j = jobs(ts, 10);
    ts.run(({ cold, flush }) => {
      const source = cold('(abcde)', { a: 'a1', b: 'a2', c: 'a3', d: 'a4', e: 'a5' });
      source.pipe(fairMerge(j.project, { concurrency: 4, keyOf: ownerOf })).subscribe();
      flush();
    });
    expect(j.maxRunning()).toBe(4);
    expect(j.started).toEqual(['0:a1', '0:a2', '0:a3', '0:a4', '10:a5']);
  });

  it('caps the jobs of one owner at maxPerKey, lending the spare slots to others', () => {
    const ts = scheduler();
    const j = jobs(ts, 10);
    ts.run(({ cold, flush }) => {
      const source = cold('(abcd)', { a: 'a1', b: 'a2', c: 'a3', d: 'b1' });
      source
        .pipe(fairMerge(j.project, { concurrency: 4, keyOf: ownerOf, maxPerKey: 1 }))
        .subscribe();
      flush();
    });
    expect(j.started).toEqual(['0:a1', '0:b1', '10:a2', '20:a3']);
  });

  it('puts values without an owner in one shared queue', () => {
    const ts = scheduler();
    const j = jobs(ts, 5);
    ts.run(({ cold, flush }) => {
      const source = cold<string>('(abcd)', { a: '-1', b: '-2', c: 'b1', d: '-3' });
      source
        .pipe(
          fairMerge(j.project, {
            concurrency: 1,
            keyOf: (v) => (v.startsWith('-') ? undefined : ownerOf(v)),
          }),
        )
        .subscribe();
      flush();
    });
    expect(j.started.map((s) => s.split(':')[1])).toEqual(['-1', 'b1', '-2', '-3']);
  });

  it('reports the deepest per-owner queue as it changes', () => {
    const ts = scheduler();
    const j = jobs(ts, 10);
    const depths: string[] = [];
    ts.run(({ cold, flush }) => {
      const source = cold('(abc)d', { a: 'a1', b: 'a2', c: 'a3', d: 'b1' });
      source
        .pipe(
          fairMerge(j.project, {
            concurrency: 1,
            keyOf: ownerOf,
            onDeepest: (d) => depths.push(`${ts.now()}:${d}`),
          }),
        )
        .subscribe();
      flush();
    });
    // a2, a3 wait (2); b1 starts at 10 (a's queue still 2... then a2 at 20 → 1, a3 at 30 → 0).
    expect(depths).toEqual(['0:1', '0:2', '20:1', '30:0']);
  });

  it('completes only after the source completed and every queued job ran', () => {
    const ts = scheduler();
    ts.run(({ cold, expectObservable }) => {
      const j = jobs(ts, 3);
      const source = cold('(ab|)', { a: 'a1', b: 'b1' });
      expectObservable(source.pipe(fairMerge(j.project, { concurrency: 1, keyOf: ownerOf }))).toBe(
        '3ms x 2ms (y|)',
        { x: 'a1', y: 'b1' },
      );
    });
  });

  it('passes on an inner error at once', () => {
    const ts = scheduler();
    ts.run(({ cold, expectObservable }) => {
      const source = cold('(ab)', { a: 'a1', b: 'b1' });
      const out = source.pipe(
        fairMerge((v: string) => (v === 'a1' ? cold('2ms #') : cold('5ms (x|)', { x: v })), {
          concurrency: 2,
          keyOf: ownerOf,
        }),
      );
      expectObservable(out).toBe('2ms #');
    });
  });
});

describe('createWorker with owners', () => {
  const request = (characterId: string, ownerId: string): JobRequest => ({
    characterId,
    origin: 'listener',
    seenAt: 0,
    ownerId,
  });

  it("serves a second user's request before the first user's backlog", () => {
    const ts = scheduler();
    const started: string[] = [];
    ts.run(({ cold, flush }) => {
      const runJob = (req: JobRequest): Observable<JobOutcome> =>
        defer(() => {
          started.push(`${ts.now()}:${req.characterId}`);
          return cold('10ms (o|)', {
            o: { characterId: req.characterId, kind: 'complete' as const, durationMs: 10 },
          });
        });
      const worker = createWorker(
        cold('(abcd)-e', {
          a: request('a1', 'A'),
          b: request('a2', 'A'),
          c: request('a3', 'A'),
          d: request('a4', 'A'),
          e: request('b1', 'B'),
        }),
        runJob,
        { heldJobs: 1, log: recordingLog() },
        createActiveJobs(),
      );
      worker.start(() => undefined);
      flush();
    });
    expect(started).toEqual(['0:a1', '10:b1', '20:a2', '30:a3', '40:a4']);
  });

  it('requests a deferred job again after deferredRetryMs, without holding its slot', () => {
    const ts = scheduler();
    const started: string[] = [];
    ts.run(({ cold, flush }) => {
      let tries = 0;
      const runJob = (req: JobRequest): Observable<JobOutcome> =>
        defer(() => {
          started.push(`${ts.now()}:${req.characterId}${req.deferred ? ' (deferred before)' : ''}`);
          const kind: JobOutcome['kind'] =
            req.characterId === 'a1' && tries++ === 0 ? 'deferred' : 'complete';
          return cold(kind === 'deferred' ? '(o|)' : '10ms (o|)', {
            o: { characterId: req.characterId, kind, durationMs: 0 },
          });
        });
      const worker = createWorker(
        cold('(ab)', { a: request('a1', 'A'), b: request('b1', 'B') }),
        runJob,
        { heldJobs: 1, log: recordingLog(), deferredRetryMs: 50 },
        createActiveJobs(),
      );
      worker.start(() => undefined);
      flush();
    });
    // a1 is deferred at 0 and frees the slot for b1 at once; it comes back at 50, marked so
    // that it claims before it downloads (its click may have been handed over meanwhile).
    expect(started).toEqual(['0:a1', '0:b1', '50:a1 (deferred before)']);
  });
});

describe('fairMerge with urgent values (jobs taken over from a dead worker)', () => {
  const sched = () => new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
  const oneQueue = () => undefined;

  it('keeps the concurrency cap and serves waiting urgent values first', () => {
    sched().run(({ cold, expectObservable }) => {
      // a and b take both slots for 5 frames; c, d wait; U (urgent) arrives last but goes first.
      const out = cold('abcdU|').pipe(
        fairMerge((v: string) => of(v).pipe(delay(5)), {
          concurrency: 2,
          keyOf: oneQueue,
          isUrgent: (v) => v === 'U',
        }),
      );
      expectObservable(out).toBe('-----ab---Uc---(d|)');
    });
  });

  it('with urgentExtra, an urgent value starts at once in a slot of its own, and the others keep theirs', () => {
    sched().run(({ cold, expectObservable }) => {
      // a, b fill both slots; U starts at once (frame 4) in the extra slot; c and d still get
      // the two normal slots as a and b end (5, 6), not after U.
      const out = cold('abcdU|').pipe(
        fairMerge((v: string) => of(v).pipe(delay(5)), {
          concurrency: 2,
          keyOf: oneQueue,
          isUrgent: (v) => v === 'U',
          urgentExtra: 1,
        }),
      );
      expectObservable(out).toBe('-----ab--Uc(d|)');
    });
  });

  it('urgent values beyond the extra slots wait for a slot like the rest', () => {
    sched().run(({ cold, expectObservable }) => {
      // a fills the one slot; U starts in the extra slot; V waits for a (5), then b for U (7).
      const out = cold('abUV|').pipe(
        fairMerge((v: string) => of(v).pipe(delay(5)), {
          concurrency: 1,
          keyOf: oneQueue,
          isUrgent: (v) => v === 'U' || v === 'V',
          urgentExtra: 1,
        }),
      );
      expectObservable(out).toBe('-----a-U--V-(b|)');
    });
  });

  it('goes ahead of every owner, even one at its per-key cap', () => {
    sched().run(({ cold, expectObservable }) => {
      // x1 runs (owner x capped at 1); x2 waits behind the cap; urgent X3 of owner x runs next.
      const out = cold('ab|').pipe(
        fairMerge((v: string) => of(v).pipe(delay(3)), {
          concurrency: 2,
          keyOf: () => 'x',
          maxPerKey: 1,
          isUrgent: (v) => v === 'b',
        }),
      );
      expectObservable(out).toBe('---a(b|)');
    });
  });

  it('an urgent value takes the place of a waiting one with the same id; running ids are not doubled', () => {
    sched().run(({ cold, expectObservable }) => {
      // a runs; b and c wait; urgent C (id c) jumps ahead of b; urgent A (id a, running) is dropped.
      const out = cold('abcCA|').pipe(
        fairMerge((v: string) => of(v).pipe(delay(5)), {
          concurrency: 1,
          keyOf: oneQueue,
          isUrgent: (v) => v === v.toUpperCase(),
          idOf: (v) => v.toLowerCase(),
        }),
      );
      expectObservable(out).toBe('-----a----C----(b|)');
    });
  });
});
