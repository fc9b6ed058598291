import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { lastValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { ClaimResult, JobStore } from '../../src/jobs/ports.js';
import { createJobRunner } from '../../src/pipeline/run-job.js';
import { createStatusSink } from '../../src/pipeline/status-sink.js';
import { emptyWorkCache, leaseOf, recordingLog } from './fakes.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/**
 * While the upscale call runs (seconds in production, with every slot's job often there at
 * once), a job must not hold its cut-out (11.7 MB at 4000x4000): only the upscaler's input and
 * the alpha mask are still needed. A closure that keeps it alive fails this test.
 */
describe('what a job holds during the upscale call', () => {
  it('lets the cut-out go once the upscaler input and the mask are made', async () => {
    let cutout: WeakRef<Buffer> | undefined;
    let collectedDuringUpscale: boolean | undefined;
    const lease = leaseOf('c1');
    const store: JobStore = {
      claim: () =>
        Promise.resolve<ClaimResult>({
          kind: 'claimed',
          lease,
          document: {
            meta: { userId: 'u1' },
            visuals: { imageUrl: 'gs://b/raw-uploads/u1/c1.png' },
          },
        }),
      renew: (l) => Promise.resolve(l),
      writeStage: (l) => Promise.resolve(l),
      complete: () => Promise.resolve(),
      fail: () => Promise.resolve(),
      release: () => Promise.resolve(),
    };
    const size = { width: 100, height: 80 };
    const runJob = createJobRunner({
      store,
      sink: createStatusSink(store),
      log: recordingLog(),
      tools: {
        fetcher: { fetch: () => Promise.resolve(Buffer.from('source')) },
        images: {
          removeBackground: () => {
            const fresh = Buffer.alloc(4 * 1024 * 1024, 1);
            cutout = new WeakRef(fresh);
            return Promise.resolve({ image: fresh, credits: 1 });
          },
          upscale: async () => {
            // Let the checkpoint upload and the mask settle, then look.
            await new Promise((resolve) => setImmediate(resolve));
            gc();
            collectedDuringUpscale = cutout?.deref() === undefined;
            return { image: Buffer.from('upscaled'), credits: 1 };
          },
        },
        results: { savePng: (path) => Promise.resolve(`https://example.test/${path}`) },
        cache: emptyWorkCache(),
        resultCache: false,
        steps: {
          prepareSource: (input) => Promise.resolve({ data: input, size }),
          prepareForUpscale: () => Promise.resolve({ data: Buffer.from('jpeg'), size }),
          alphaMask: () => Promise.resolve(Buffer.from('mask')),
          finalizePng: () => Promise.resolve({ data: Buffer.from('png'), size }),
        },
        upscaleFactor: 2,
      },
      timing: {
        retry: { maxTries: 1, baseMs: 1, maxMs: 2, maxRetryAfterMs: 5 },
        renewEveryMs: 60_000,
      },
    });
    const outcome = await lastValueFrom(
      runJob({ characterId: 'c1', origin: 'listener', seenAt: 0 }),
    );
    expect(outcome.kind).toBe('complete');
    expect(cutout).toBeDefined();
    expect(collectedDuringUpscale).toBe(true);
  });
});
