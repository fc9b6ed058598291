import { Subject, throwError, timer, map, type Observable } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { JobError } from '../../src/jobs/errors.js';
import type {
  ClaimResult,
  ImageSteps,
  JobOutcome,
  JobRequest,
  JobStore,
} from '../../src/jobs/ports.js';
import { createJobRunner } from '../../src/pipeline/run-job.js';
import { createActiveJobs } from '../../src/pipeline/active-jobs.js';
import { createStatusSink } from '../../src/pipeline/status-sink.js';
import { createWorker } from '../../src/pipeline/worker.js';
import { emptyWorkCache, leaseOf, recordingLog, settle } from './fakes.js';

const request = (characterId: string): JobRequest => ({
  characterId,
  origin: 'listener',
  seenAt: 0,
});

/**
 * A worker over a hand-fed request stream, whose runJob misbehaves for some ids: it throws
 * synchronously ("sync-*"), returns a stream that errors ("error-*"), or a stream that errors
 * later ("late-*"). Everything else completes after a tick.
 */
function harness() {
  const requests$ = new Subject<JobRequest>();
  const log = recordingLog();
  const runJob = (req: JobRequest): Observable<JobOutcome> => {
    const id = req.characterId;
    if (id.startsWith('sync-')) throw new TypeError(`cannot read properties of undefined (${id})`);
    if (id.startsWith('error-')) return throwError(() => new Error(`port exploded (${id})`));
    return timer(1).pipe(
      map(() => {
        if (id.startsWith('late-')) throw new RangeError(`callback threw (${id})`);
        return { characterId: id, kind: 'complete' as const, durationMs: 1 };
      }),
    );
  };
  const worker = createWorker(requests$, runJob, { heldJobs: 2, log }, createActiveJobs());
  const outcomes: JobOutcome[] = [];
  let fatal: unknown;
  let completed = false;
  worker.outcomes$.subscribe({
    next: (o) => outcomes.push(o),
    error: (e: unknown) => (fatal = e),
    complete: () => (completed = true),
  });
  worker.start((err) => (fatal = err));
  return {
    requests$,
    log,
    worker,
    outcomes,
    state: () => ({ fatal, completed }),
  };
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i += 1) {
    await new Promise((r) => setTimeout(r, 5));
  }
  expect(condition()).toBe(true);
}

describe('a job that throws never stops the worker', () => {
  it('gives up a job that throws synchronously, and runs the next ones', async () => {
    const h = harness();
    for (const id of ['ok-1', 'sync-1', 'ok-2', 'error-1', 'late-1', 'ok-3']) {
      h.requests$.next(request(id));
    }
    await until(() => h.outcomes.length === 6);
    const byId = Object.fromEntries(h.outcomes.map((o) => [o.characterId, o]));
    for (const id of ['ok-1', 'ok-2', 'ok-3']) expect(byId[id]?.kind).toBe('complete');
    for (const id of ['sync-1', 'error-1', 'late-1']) {
      expect(byId[id]).toMatchObject({ kind: 'lost', code: 'INTERNAL' });
    }
    expect(h.state()).toEqual({ fatal: undefined, completed: false });
    const crashes = h.log.entries.filter((e) => e.message === 'job.crashed');
    expect(crashes.map((e) => e.fields?.characterId).sort()).toEqual([
      'error-1',
      'late-1',
      'sync-1',
    ]);
    expect(crashes.every((e) => e.level === 'error')).toBe(true);
  });

  it('still takes requests after a crash, for the crashed character too', async () => {
    const h = harness();
    h.requests$.next(request('sync-2'));
    await until(() => h.outcomes.length === 1);
    // The crashed id is no longer pending: a new click on it is a new request.
    h.requests$.next(request('sync-2'));
    h.requests$.next(request('ok-4'));
    await until(() => h.outcomes.length === 3);
    expect(h.outcomes.map((o) => `${o.characterId}:${o.kind}`)).toEqual([
      'sync-2:lost',
      'sync-2:lost',
      'ok-4:complete',
    ]);
    await settle();
    const stopped = await h.worker.stop(1_000);
    expect(stopped).toEqual({ drained: true, released: 0 });
    expect(h.state().fatal).toBeUndefined();
  });
});

describe('a port that throws synchronously fails its job only', () => {
  /**
   * The real job runner and worker over fakes; for the character named in `throwsIn`, that
   * port throws synchronously instead of returning a promise (a bug in an adapter).
   */
  function pipeline(throwsIn: Record<string, 'fetch' | 'prepareSource' | 'removeBackground'>) {
    const failures = new Map<string, string>();
    const completed: string[] = [];
    const store: JobStore = {
      claim: (req) =>
        Promise.resolve<ClaimResult>({
          kind: 'claimed',
          lease: leaseOf(req.characterId),
          document: {
            meta: { userId: 'u1' },
            visuals: { imageUrl: `gs://b/raw-uploads/u1/${req.characterId}.png` },
          },
        }),
      renew: (l) => Promise.resolve(l),
      writeStage: (l) => Promise.resolve(l),
      complete: (l) => {
        completed.push(l.characterId);
        return Promise.resolve();
      },
      fail: (l, error: JobError) => {
        failures.set(l.characterId, error.code);
        return Promise.resolve();
      },
      release: () => Promise.resolve(),
    };
    const boom = (id: string, port: string) => {
      if (throwsIn[id] === port) throw new TypeError(`${port} is broken`);
    };
    const idOf = (url: string) => /\/([^/]+)\.png$/.exec(url)?.[1] ?? '';
    const image = Buffer.from('image');
    const size = { width: 100, height: 80 };
    const steps: ImageSteps = {
      prepareSource: (input) => {
        boom(input.toString(), 'prepareSource');
        return Promise.resolve({ data: input, size });
      },
      prepareForUpscale: (input) => Promise.resolve({ data: input, size }),
      alphaMask: (input) => Promise.resolve(input),
      finalizePng: (input) => Promise.resolve({ data: input, size: { width: 200, height: 160 } }),
    };
    const log = recordingLog();
    const runJob = createJobRunner({
      store,
      sink: createStatusSink(store),
      log,
      tools: {
        fetcher: {
          fetch: (url) => {
            const id = idOf(url);
            boom(id, 'fetch');
            return Promise.resolve(Buffer.from(id));
          },
        },
        images: {
          removeBackground: (input) => {
            boom(input.toString(), 'removeBackground');
            return Promise.resolve({ image, credits: 1 });
          },
          upscale: () => Promise.resolve({ image, credits: 1 }),
        },
        results: { savePng: (path) => Promise.resolve(`https://example.test/${path}`) },
        cache: emptyWorkCache(),
        resultCache: false,
        steps,
        upscaleFactor: 2,
      },
      timing: {
        retry: { maxTries: 3, baseMs: 1, maxMs: 2, maxRetryAfterMs: 5 },
        renewEveryMs: 60_000,
      },
    });
    const requests$ = new Subject<JobRequest>();
    const worker = createWorker(requests$, runJob, { heldJobs: 2, log }, createActiveJobs());
    const outcomes: JobOutcome[] = [];
    let fatal: unknown;
    worker.outcomes$.subscribe({
      next: (o) => outcomes.push(o),
      error: (e: unknown) => (fatal = e),
    });
    worker.start((err) => (fatal = err));
    return { requests$, outcomes, failures, completed, log, fatal: () => fatal };
  }

  it('writes INTERNAL for the broken job, once, and completes the others', async () => {
    const p = pipeline({ a: 'fetch', c: 'prepareSource', e: 'removeBackground' });
    for (const id of ['a', 'b', 'c', 'd', 'e', 'f']) p.requests$.next(request(id));
    await until(() => p.outcomes.length === 6);
    expect(Object.fromEntries(p.failures)).toEqual({ a: 'INTERNAL', c: 'INTERNAL', e: 'INTERNAL' });
    expect(p.completed.sort()).toEqual(['b', 'd', 'f']);
    expect(p.fatal()).toBeUndefined();
    // An INTERNAL error is not retried: the broken port was called once per job.
    expect(p.log.messages('warn').filter((m) => m === 'job.retry_scheduled')).toEqual([]);
    expect(p.log.entries.filter((e) => e.message === 'job.failed').map((e) => e.level)).toEqual([
      'error',
      'error',
      'error',
    ]);
  });
});
