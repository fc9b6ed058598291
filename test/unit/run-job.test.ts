import { lastValueFrom, toArray } from 'rxjs';
import { describe, expect, it, vi } from 'vitest';
import { JobError } from '../../src/jobs/errors.js';
import {
  LeaseLostError,
  WriteOutcomeUnknownError,
  type ClaimResult,
  type ImageService,
  type ImageSteps,
  type JobOutcome,
  type JobRequest,
  type JobResult,
  type JobStore,
  type Lease,
  type ResultStore,
  type Size,
  type SourceFetcher,
  type OwnedWrite,
  type WorkCache,
} from '../../src/jobs/ports.js';
import type { InProgressStatus } from '../../src/jobs/status.js';
import { callsOf, createJobRunner, type JobRunnerDeps } from '../../src/pipeline/run-job.js';
import { NO_HOLD } from '../../src/jobs/intake.js';
import { createStatusSink, type JobWriter } from '../../src/pipeline/status-sink.js';
import { workKey } from '../../src/pipeline/work-key.js';
import { deferred, recordingLog } from './fakes.js';

const request: JobRequest = { characterId: 'c1', origin: 'listener', seenAt: 900 };

const lease: Lease = {
  characterId: 'c1',
  jobId: 'job-1',
  owner: 'worker-1',
  attempt: 1,
  recovered: false,
  statusAtClaim: 'removing-background',
  expiresAt: 60_000,
  requestedAt: 900,
};

const documentData = {
  core: { name: 'Aria' },
  meta: { userId: 'u1' },
  visuals: {
    imageUrl: 'gs://my-app.appspot.com/raw-uploads/u1/aria.png',
    showcaseProcessingStatus: 'removing-background',
  },
};

const RAW = Buffer.from('raw-bytes');
const SOURCE = Buffer.from('source');
const CUTOUT = Buffer.from('cutout-png');
const MASK = Buffer.from('cutout-alpha-mask');
const UPSCALE_INPUT = Buffer.from('upscale-input');
const UPSCALED = Buffer.from('upscaled-webp');
const PNG = Buffer.from('final-png-bytes');

/**
 * All ports faked with plain objects; `events` records the store's writes in the order they
 * happen, `calls` the side-effecting calls.
 */
function setup(
  opts: {
    claim?: () => Promise<ClaimResult>;
    document?: unknown;
    upscaleInputSize?: Size;
    removeBackground?: (image: Buffer, signal: AbortSignal) => Promise<Buffer>;
    resultCache?: boolean;
    /** Pre-existing entries of the bucket-backed work cache, by path-like key. */
    cached?: Record<string, Buffer>;
    writeStage?: (lease: Lease, status: InProgressStatus) => Promise<Lease>;
    renew?: (lease: Lease) => Promise<Lease>;
    fail?: () => Promise<void>;
    complete?: () => Promise<void>;
    renewEveryMs?: number;
    gate?: JobRunnerDeps['gate'];
    stillOpen?: JobRunnerDeps['stillOpen'];
    intake?: JobRunnerDeps['intake'];
    request?: JobRequest;
  } = {},
) {
  const events: string[] = [];
  let clock = 1_000;

  const claim = vi.fn(
    opts.claim ??
      (() =>
        Promise.resolve<ClaimResult>({
          kind: 'claimed',
          lease,
          document: opts.document ?? documentData,
        })),
  );
  const writeStage = vi.fn((l: Lease, status: InProgressStatus, _w?: OwnedWrite) => {
    events.push(`stage:${status}`);
    return opts.writeStage ? opts.writeStage(l, status) : Promise.resolve(l);
  });
  const renew = vi.fn((l: Lease) => {
    events.push('renew');
    return opts.renew ? opts.renew(l) : Promise.resolve(l);
  });
  const complete = vi.fn((_l: Lease, _r: JobResult, _w: OwnedWrite) => {
    events.push('complete');
    return opts.complete ? opts.complete() : Promise.resolve();
  });
  const fail = vi.fn((_l: Lease, error: JobError, stage: InProgressStatus) => {
    events.push(`fail:${error.code}@${stage}`);
    return opts.fail ? opts.fail() : Promise.resolve();
  });
  const release = vi.fn((_l: Lease) => Promise.resolve());
  const store: JobStore = { claim, writeStage, renew, complete, fail, release };

  const fetch = vi.fn((_url: string, _ownerId: string, _signal: AbortSignal) => {
    clock += 50;
    return Promise.resolve(RAW);
  });
  const removeBackground = vi.fn(opts.removeBackground ?? (() => Promise.resolve(CUTOUT)));
  const upscale = vi.fn((_image: Buffer, _size: Size, _signal: AbortSignal) =>
    Promise.resolve(UPSCALED),
  );
  const paid = (image: Buffer) => ({ image, credits: 1 });
  const cacheEntries = new Map<string, Buffer>(Object.entries(opts.cached ?? {}));
  const cache: WorkCache = {
    findResult: (key, ownerId) => Promise.resolve(cacheEntries.get(`result/${ownerId}/${key}`)),
    saveResult: (key, ownerId, png) => {
      cacheEntries.set(`result/${ownerId}/${key}`, png);
      return Promise.resolve();
    },
    findCheckpoint: (id, key, stage) => Promise.resolve(cacheEntries.get(`${id}/${key}/${stage}`)),
    saveCheckpoint: (id, key, stage, data) => {
      cacheEntries.set(`${id}/${key}/${stage}`, data);
      return Promise.resolve();
    },
    clearCheckpoints: (id, key) => {
      for (const k of [...cacheEntries.keys()]) {
        if (k.startsWith(`${id}/${key}/`)) cacheEntries.delete(k);
      }
      return Promise.resolve();
    },
  };
  const savePng = vi.fn((path: string, _png: Buffer, _signal: AbortSignal) =>
    Promise.resolve(`https://storage.example/${path}`),
  );
  const fetcher: SourceFetcher = { fetch };
  const images: ImageService = {
    removeBackground: (image, signal) => removeBackground(image, signal).then(paid),
    upscale: (image, size, signal) => upscale(image, size, signal).then(paid),
  };
  const results: ResultStore = { savePng };
  const steps: ImageSteps = {
    prepareSource: (input) => {
      expect(input).toBe(RAW);
      return Promise.resolve({ data: SOURCE, size: { width: 1000, height: 800 } });
    },
    prepareForUpscale: (input) => {
      expect(input).toBe(CUTOUT);
      return Promise.resolve({
        data: UPSCALE_INPUT,
        size: opts.upscaleInputSize ?? { width: 1000, height: 800 },
      });
    },
    alphaMask: (input) => {
      expect(input).toBe(CUTOUT);
      return Promise.resolve(MASK);
    },
    finalizePng: (_input, mask) => {
      // The cut-out's alpha, whichever way the cut-out came (paid for, or a checkpoint).
      expect(mask).toBe(MASK);
      return Promise.resolve({ data: PNG, size: { width: 2000, height: 1600 } });
    },
  };
  const tracked: [string, boolean][] = [];
  const log = recordingLog();
  const deps: JobRunnerDeps = {
    store,
    sink: createStatusSink(store),
    log,
    tools: {
      fetcher,
      images,
      results,
      cache,
      resultCache: opts.resultCache ?? false,
      steps,
      upscaleFactor: 2,
    },
    timing: {
      retry: { maxTries: 3, baseMs: 1, maxMs: 2, maxRetryAfterMs: 5 },
      renewEveryMs: opts.renewEveryMs ?? 60_000,
      now: () => clock,
    },
    watch: {
      track: (id: string, writer: JobWriter | undefined) =>
        tracked.push([id, writer !== undefined]),
    },
    ...(opts.gate ? { gate: opts.gate } : {}),
    ...(opts.stillOpen ? { stillOpen: opts.stillOpen } : {}),
    ...(opts.intake ? { intake: opts.intake } : {}),
  };
  const run = async (): Promise<JobOutcome> => {
    const outcomes = await lastValueFrom(
      createJobRunner(deps)(opts.request ?? request).pipe(toArray()),
    );
    expect(outcomes).toHaveLength(1);
    return outcomes[0]!;
  };
  return {
    run,
    events,
    log,
    tracked,
    cacheEntries,
    mocks: {
      claim,
      writeStage,
      renew,
      complete,
      fail,
      release,
      fetch,
      removeBackground,
      upscale,
      savePng,
    },
  };
}

describe('createJobRunner', () => {
  it("queues a takeover's paid calls first, then a new user's first job's, then the rest", () => {
    const request = { characterId: 'c1', origin: 'listener' as const, seenAt: 0 };
    expect(callsOf({ ...request, takeover: true, ownersFirst: true })).toEqual({
      priority: 'takeover',
    });
    expect(callsOf({ ...request, ownersFirst: true })).toEqual({ priority: 'new-user' });
    expect(callsOf(request)).toEqual({});
  });

  /** An intake paused for good, recording the forced holds it gives. */
  function pausedIntake() {
    const forced: number[] = [];
    const intake: NonNullable<JobRunnerDeps['intake']> = {
      admit: () => new Promise(() => undefined),
      force: (credits) => {
        forced.push(credits);
        return NO_HOLD;
      },
      paused: () => ({ reason: 'budget', since: 0, detail: 'spent' }),
    };
    return { intake, forced };
  }

  it('a paused intake leaves a fresh click unclaimed, with nothing downloaded', async () => {
    const p = pausedIntake();
    const { run, mocks } = setup({ intake: p.intake });
    void run();
    await new Promise((r) => setTimeout(r, 5));
    expect(mocks.claim).not.toHaveBeenCalled();
    expect(mocks.fetch).not.toHaveBeenCalled();
    expect(p.forced).toEqual([]);
  });

  it('a takeover, or a job past its first paid call, finishes on a forced hold whatever the pause', async () => {
    const takeover = pausedIntake();
    const t = setup({
      intake: takeover.intake,
      request: { ...request, origin: 'takeover', takeover: true },
    });
    expect((await t.run()).kind).toBe('complete');
    expect(takeover.forced).toEqual([2]); // its status unknown: both calls, one may repeat

    const released = pausedIntake();
    const document = { visuals: { showcaseProcessingStatus: 'upscaling' } };
    const r = setup({ intake: released.intake, request: { ...request, document } });
    expect((await r.run()).kind).toBe('complete');
    expect(released.forced).toEqual([1]);
  });

  /** A gate that admits when told to, counting tickets given back. */
  function manualGate() {
    const admit = deferred<void>();
    let released = 0;
    const gate = {
      admitJob: async () => {
        await admit.promise;
        return { release: () => (released += 1) };
      },
    };
    return { gate, admit: () => admit.resolve(), released: () => released };
  }

  it('claims only once the window admits the job, and gives its ticket back when it ends', async () => {
    const g = manualGate();
    const { run, mocks } = setup({ gate: g.gate });
    const outcome = run();
    await new Promise((r) => setTimeout(r, 5));
    expect(mocks.claim).not.toHaveBeenCalled();
    expect(mocks.fetch).not.toHaveBeenCalled(); // no download before the claim either
    g.admit();
    expect((await outcome).kind).toBe('complete');
    expect(mocks.claim).toHaveBeenCalledTimes(1);
    expect(g.released()).toBe(1);
  });

  it('a click another worker took while it waited for the window is not claimed', async () => {
    const g = manualGate();
    const { run, mocks } = setup({ gate: g.gate, stillOpen: () => false });
    g.admit();
    expect((await run()).kind).toBe('skipped');
    expect(mocks.claim).not.toHaveBeenCalled();
    expect(mocks.fetch).not.toHaveBeenCalled();
    expect(g.released()).toBe(1);
  });

  it('runs a job to completion: stages in order, then the result', async () => {
    const { run, events, mocks, tracked } = setup();
    const outcome = await run();
    expect(outcome).toEqual({ characterId: 'c1', kind: 'complete', durationMs: 50 });
    // The click already shows removing-background, so the sink writes the next stages only.
    expect(events).toEqual(['stage:upscaling', 'stage:finalizing', 'complete']);
    expect(mocks.fetch).toHaveBeenCalledWith(
      documentData.visuals.imageUrl,
      documentData.meta.userId,
      expect.any(AbortSignal),
    );
    expect(mocks.removeBackground).toHaveBeenCalledTimes(1);
    expect(mocks.removeBackground.mock.calls[0]![0]).toBe(SOURCE);
    expect(mocks.upscale).toHaveBeenCalledTimes(1);
    expect(mocks.upscale.mock.calls[0]!.slice(0, 2)).toEqual([
      UPSCALE_INPUT,
      { width: 2000, height: 1600 },
    ]);
    expect(mocks.savePng).toHaveBeenCalledWith(
      'showcase-images/u1/c1/showcase_c1.png',
      PNG,
      expect.any(AbortSignal),
    );
    expect(mocks.complete).toHaveBeenCalledWith(
      lease,
      {
        url: 'https://storage.example/showcase-images/u1/c1/showcase_c1.png',
        path: 'showcase-images/u1/c1/showcase_c1.png',
        width: 2000,
        height: 1600,
        bytes: PNG.length,
      },
      expect.anything(),
      // No per-user limits here: nothing for the owner's day.
      undefined,
    );
    expect(mocks.fail).not.toHaveBeenCalled();
    expect(tracked).toEqual([
      ['c1', true],
      ['c1', false],
    ]);
  });

  it('does not move a recovered job’s status backwards', async () => {
    // Recovered after a crash: the document already shows "upscaling".
    const { run, events } = setup({
      claim: () =>
        Promise.resolve({
          kind: 'claimed',
          lease: { ...lease, statusAtClaim: 'upscaling', attempt: 2 },
          document: documentData,
        }),
    });
    expect((await run()).kind).toBe('complete');
    expect(events).toEqual(['stage:finalizing', 'complete']);
  });

  it('retries a transient error of removeBackground, then completes', async () => {
    let calls = 0;
    const { run, mocks, events } = setup({
      removeBackground: () =>
        ++calls === 1
          ? Promise.reject(new JobError('CLIPDROP_UNAVAILABLE', { detail: 'ClipDrop 503' }))
          : Promise.resolve(CUTOUT),
    });
    const outcome = await run();
    expect(outcome.kind).toBe('complete');
    expect(mocks.removeBackground).toHaveBeenCalledTimes(2);
    expect(mocks.fetch).toHaveBeenCalledTimes(1);
    expect(events).toEqual(['stage:upscaling', 'stage:finalizing', 'complete']);
  });

  it('fails at once on a permanent CLIPDROP_REJECTED, writing the stage it failed in', async () => {
    const { run, mocks, events } = setup({
      removeBackground: () =>
        Promise.reject(new JobError('CLIPDROP_REJECTED', { detail: 'ClipDrop 400: bad image' })),
    });
    const outcome = await run();
    expect(outcome).toMatchObject({ characterId: 'c1', kind: 'failed', code: 'CLIPDROP_REJECTED' });
    expect(mocks.removeBackground).toHaveBeenCalledTimes(1);
    expect(mocks.fail).toHaveBeenCalledTimes(1);
    const [failLease, error, stage] = mocks.fail.mock.calls[0]!;
    expect(failLease).toEqual(lease);
    expect(error.code).toBe('CLIPDROP_REJECTED');
    expect(stage).toBe('removing-background');
    expect(events).toEqual(['fail:CLIPDROP_REJECTED@removing-background']);
    expect(mocks.upscale).not.toHaveBeenCalled();
    expect(mocks.savePng).not.toHaveBeenCalled();
    expect(mocks.complete).not.toHaveBeenCalled();
  });

  it('fails with the last transient error’s code once the tries are used up', async () => {
    const { run, mocks } = setup({
      removeBackground: () =>
        Promise.reject(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })),
    });
    const outcome = await run();
    expect(outcome).toMatchObject({ kind: 'failed', code: 'NETWORK' });
    expect(mocks.removeBackground).toHaveBeenCalledTimes(3);
    expect(mocks.fail).toHaveBeenCalledTimes(1);
  });

  it('fails an invalid document with INVALID_DOCUMENT, before any fetch or ClipDrop call', async () => {
    const { run, mocks } = setup({
      document: { meta: { userId: '../escape' }, visuals: { imageUrl: 'https://x.test/a.png' } },
    });
    const outcome = await run();
    expect(outcome).toMatchObject({ kind: 'failed', code: 'INVALID_DOCUMENT' });
    expect(mocks.fetch).not.toHaveBeenCalled();
    expect(mocks.removeBackground).not.toHaveBeenCalled();
    expect(mocks.upscale).not.toHaveBeenCalled();
    expect(mocks.fail).toHaveBeenCalledTimes(1);
    expect(mocks.fail.mock.calls[0]![1].message).toContain('meta.userId');
    expect(mocks.fail.mock.calls[0]![2]).toBe('removing-background');
  });

  it('does nothing more when the claim is skipped', async () => {
    const { run, mocks, tracked } = setup({
      claim: () => Promise.resolve({ kind: 'skipped', reason: 'held' }),
    });
    const outcome = await run();
    expect(outcome).toMatchObject({ characterId: 'c1', kind: 'skipped', code: 'held' });
    expect(mocks.claim).toHaveBeenCalledTimes(1);
    for (const mock of [
      mocks.writeStage,
      mocks.renew,
      mocks.complete,
      mocks.fail,
      mocks.release,
      mocks.fetch,
      mocks.removeBackground,
      mocks.upscale,
      mocks.savePng,
    ]) {
      expect(mock).not.toHaveBeenCalled();
    }
    expect(tracked).toEqual([]);
  });

  it('reports an exhausted request without doing any work', async () => {
    const { run, mocks } = setup({
      claim: () => Promise.resolve({ kind: 'exhausted', attempts: 3 }),
    });
    expect(await run()).toMatchObject({ kind: 'exhausted', code: 'ATTEMPTS_EXHAUSTED' });
    expect(mocks.fetch).not.toHaveBeenCalled();
    expect(mocks.fail).not.toHaveBeenCalled();
  });

  it('retries a transient claim failure', async () => {
    let calls = 0;
    const { run, mocks } = setup({
      claim: () =>
        ++calls === 1
          ? Promise.reject(Object.assign(new Error('14 UNAVAILABLE'), { code: 14 }))
          : Promise.resolve({ kind: 'claimed', lease, document: documentData }),
    });
    expect((await run()).kind).toBe('complete');
    expect(mocks.claim).toHaveBeenCalledTimes(2);
  });

  it('turns a claim that keeps failing into a skipped outcome, writing nothing', async () => {
    const { run, mocks } = setup({
      claim: () => Promise.reject(new Error('PERMISSION_DENIED')),
    });
    expect(await run()).toMatchObject({ kind: 'skipped', code: 'INTERNAL' });
    expect(mocks.fail).not.toHaveBeenCalled();
    expect(mocks.fetch).not.toHaveBeenCalled();
  });

  it('gives the job up as lost when a stage write finds the lease taken', async () => {
    const { run, mocks } = setup({
      writeStage: (l) => Promise.reject(new LeaseLostError(l.characterId)),
    });
    const outcome = await run();
    expect(outcome).toMatchObject({ characterId: 'c1', kind: 'lost' });
    expect(mocks.fail).not.toHaveBeenCalled();
    expect(mocks.complete).not.toHaveBeenCalled();
    expect(mocks.savePng).not.toHaveBeenCalled();
  });

  it('gives the job up as lost when a renewal finds the lease taken', async () => {
    const renewed = deferred<void>();
    const { run, mocks } = setup({
      renewEveryMs: 5,
      renew: (l) => {
        renewed.resolve();
        return Promise.reject(new LeaseLostError(l.characterId));
      },
      // ClipDrop is slow: the job is still removing the background when the lease is lost.
      removeBackground: (_image, signal) =>
        new Promise((_resolve, reject) => {
          signal.addEventListener('abort', () => reject(new Error('aborted')));
        }),
    });
    const outcome = run();
    await renewed.promise;
    expect(await outcome).toMatchObject({ characterId: 'c1', kind: 'lost' });
    expect(mocks.fail).not.toHaveBeenCalled();
  });

  it('aborts the running call when the job ends early', async () => {
    let aborted = false;
    const { run } = setup({
      renewEveryMs: 5,
      renew: (l) => Promise.reject(new LeaseLostError(l.characterId)),
      removeBackground: (_image, signal) =>
        new Promise((_resolve, reject) => {
          signal.addEventListener('abort', () => {
            aborted = true;
            reject(new Error('aborted'));
          });
        }),
    });
    await run();
    expect(aborted).toBe(true);
  });

  it('skips the upscale call when the image is already 4096 wide', async () => {
    const { run, mocks, events } = setup({ upscaleInputSize: { width: 4096, height: 2048 } });
    const outcome = await run();
    expect(outcome.kind).toBe('complete');
    expect(mocks.upscale).not.toHaveBeenCalled();
    expect(events).toEqual(['stage:upscaling', 'stage:finalizing', 'complete']);
  });

  it('upscales to the capped size when doubling would pass 4096', async () => {
    const { run, mocks } = setup({ upscaleInputSize: { width: 3000, height: 2000 } });
    await run();
    expect(mocks.upscale.mock.calls[0]![1]).toEqual({ width: 4096, height: 2731 });
  });

  it('reports lost, with the code, when the failure itself cannot be written', async () => {
    const { run } = setup({
      removeBackground: () => Promise.reject(new JobError('CLIPDROP_NO_CREDITS')),
      fail: () => Promise.reject(new LeaseLostError('c1')),
    });
    expect(await run()).toMatchObject({ kind: 'lost', code: 'CLIPDROP_NO_CREDITS' });
  });

  it('writes each paid call’s credits with the next owned write, so a crash cannot lose them', async () => {
    const { run, mocks } = setup();
    await run();
    const deltas = [
      ...mocks.writeStage.mock.calls.map((c) => [`stage:${c[1]}`, c[2]?.usage] as const),
      ...mocks.complete.mock.calls.map((c) => ['complete', c[2].usage] as const),
    ];
    // The cut-out is paid before `upscaling` is written, the upscale before `finalizing`.
    expect(deltas).toEqual([
      ['stage:upscaling', { calls: { removeBackground: 1, upscale: 0 }, credits: 1 }],
      ['stage:finalizing', { calls: { removeBackground: 0, upscale: 1 }, credits: 1 }],
      ['complete', { calls: { removeBackground: 0, upscale: 0 }, credits: 0 }],
    ]);
  });

  it('a completion whose tries all may have landed, and one did, ends complete, not failed', async () => {
    let tries = 0;
    const unavailable = new WriteOutcomeUnknownError(
      'c1',
      Object.assign(new Error('14 UNAVAILABLE'), { code: 14 }),
    );
    const { run, mocks } = setup({
      complete: () => (++tries <= 3 ? Promise.reject(unavailable) : Promise.resolve()),
    });
    expect(await run()).toMatchObject({ kind: 'complete' });
    // Three tries, then the failure's write sends the completion again first: it lands.
    expect(mocks.complete).toHaveBeenCalledTimes(4);
    expect(new Set(mocks.complete.mock.calls.map((c) => c[2].id)).size).toBe(1);
    expect(mocks.fail).not.toHaveBeenCalled();
  });

  it('reuses an identical earlier result: no ClipDrop call, no sharp work, same upload path', async () => {
    const key = workKey(RAW, 2);
    const finished = await sharpFreePng(640, 480);
    const { run, mocks } = setup({ resultCache: true, cached: { [`result/u1/${key}`]: finished } });
    expect(await run()).toMatchObject({ kind: 'complete' });
    expect(mocks.removeBackground).not.toHaveBeenCalled();
    expect(mocks.upscale).not.toHaveBeenCalled();
    expect(mocks.savePng).toHaveBeenCalledWith(
      'showcase-images/u1/c1/showcase_c1.png',
      finished,
      expect.anything(),
    );
    expect(mocks.complete.mock.calls[0]?.[1]).toMatchObject({ width: 640, height: 480 });
    expect(mocks.complete.mock.calls[0]?.[2].usage).toEqual({
      calls: { removeBackground: 0, upscale: 0 },
      credits: 0,
    });
    for (const call of mocks.writeStage.mock.calls) expect(call[2]?.usage.credits).toBe(0);
  });

  it('stores a finished result in the cache, and clears its checkpoints', async () => {
    const { run, cacheEntries } = setup({ resultCache: true });
    await run();
    const key = workKey(RAW, 2);
    // Under its owner: the adapter decides what that means (RESULT_CACHE_SCOPE).
    expect(cacheEntries.get(`result/u1/${key}`)).toBe(PNG);
    expect([...cacheEntries.keys()].filter((k) => k.startsWith('c1/'))).toEqual([]);
  });

  it('a recovered job resumes from its cut-out checkpoint without paying for it again', async () => {
    const key = workKey(RAW, 2);
    const { run, mocks } = setup({
      claim: () =>
        Promise.resolve<ClaimResult>({
          kind: 'claimed',
          lease: { ...lease, attempt: 2, recovered: true, statusAtClaim: 'upscaling' },
          document: documentData,
        }),
      cached: { [`c1/${key}/cutout`]: CUTOUT },
    });
    expect(await run()).toMatchObject({ kind: 'complete' });
    expect(mocks.removeBackground).not.toHaveBeenCalled();
    expect(mocks.upscale).toHaveBeenCalledTimes(1);
  });

  it('a first attempt does not look for checkpoints (nothing can be there)', async () => {
    const key = workKey(RAW, 2);
    const { run, mocks } = setup({ cached: { [`c1/${key}/cutout`]: Buffer.from('stale') } });
    await run();
    expect(mocks.removeBackground).toHaveBeenCalledTimes(1);
  });
});

/** A minimal valid PNG header with the given size (the pipeline reads only IHDR from a cached result). */
function sharpFreePng(width: number, height: number): Promise<Buffer> {
  const header = Buffer.alloc(33);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(header, 0);
  header.writeUInt32BE(13, 8);
  header.write('IHDR', 12, 'ascii');
  header.writeUInt32BE(width, 16);
  header.writeUInt32BE(height, 20);
  return Promise.resolve(header);
}

describe('fromAbortable', () => {
  it('aborts a call still running when unsubscribed, and leaves a settled one alone', async () => {
    const { fromAbortable } = await import('../../src/pipeline/abortable.js');
    const signals: AbortSignal[] = [];
    const pending = fromAbortable((signal) => {
      signals.push(signal);
      return new Promise<number>(() => undefined);
    }).subscribe();
    pending.unsubscribe();
    expect(signals[0]?.aborted).toBe(true);

    const done = await lastValueFrom(
      fromAbortable((signal) => {
        signals.push(signal);
        return Promise.resolve(7);
      }),
    );
    expect(done).toBe(7);
    expect(signals[1]?.aborted).toBe(false);
  });
});
