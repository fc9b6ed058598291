import type { DocumentData } from 'firebase-admin/firestore';
import { afterAll, describe, expect, it } from 'vitest';
import { characterPicture } from '../support/images.js';
import { BUCKET, startStack, type Stack } from '../support/stack.js';
import { statusOf, until, waitForDoc } from '../support/wait.js';

interface Line {
  message: string;
  timestamp: string;
  reason?: string;
  pausedMs?: number;
  [field: string]: unknown;
}

const isTerminal = (d: DocumentData | undefined) =>
  ['complete', 'failed'].includes(statusOf(d) ?? '');

/**
 * ClipDrop in a fault storm (20 % 5xx, 10 % reset connections) with a 10 s credit outage
 * in the middle: the worker pauses instead of failing jobs, and a probe that meets a 5xx or a
 * reset is tried again on the retry backoff, so the pause ends seconds after credits return.
 */
describe('a 402 window inside a fault storm', () => {
  let stack: Stack | undefined;
  afterAll(() => stack?.close());

  it('60 jobs all complete, none failed, and the pause ends within 20 s of the window', async () => {
    // Each call takes 300 ms, so 60 jobs (120 paid calls and their retries) are still running
    // when the window opens 3 s after the clicks, and the window ends with work to do.
    stack = await startStack({
      clipdrop: { latencyMs: { removeBackground: 300, upscale: 300 } },
    });
    const s = stack;
    const worker = await s.startWorker({
      // The production backoff (config/test.json shortens it to 50-500 ms): probes that
      // meet a 5xx or a reset wait 1 s, 2 s, 4 s ... as every other call's retries do.
      RETRY_BASE_MS: '1000',
      RETRY_MAX_MS: '30000',
      // With 30 % of answers failing, 5 tries fail 0.24 % of calls (a job in three runs):
      // that would be the retry budget at work, not the gate. 10 tries: 6e-6.
      RETRY_MAX_TRIES: '10',
      // The quota is not under test: 60 a minute would make this a three-minute test.
      CLIPDROP_RPM: '6000',
      LEASE_MS: '60000',
    });
    const ids = Array.from({ length: 60 }, (_, i) => `storm-${i}`);
    await Promise.all(
      ids.map(async (id, i) =>
        s.storage.putObject(
          BUCKET,
          `raw-uploads/user-1/${id}.png`,
          await characterPicture(24, 24, 'png', i + 1),
        ),
      ),
    );

    s.clipdrop.setFaultRates({ serverError: 0.2, drop: 0.1 });
    const started = Date.now();
    const window = s.clipdrop.noCreditsWindow(3_000, 10_000);
    await Promise.all(ids.map((id) => s.click(id)));
    // Once paused, queue a reset: during the window every call meets the 402 first, so the
    // reset meets the first probe after it (the storm's own faults only sometimes do). One
    // only: each transient failure in a row doubles the retry backoff (1, 2, 4, 8 s).
    await until(
      () => worker.logs.some((l) => l.includes('"clipdrop.paused"')),
      30_000,
      'the pause',
    );
    s.clipdrop.injectFaults({ kind: 'drop' });
    const docs = await Promise.all(
      ids.map((id) => waitForDoc(s.db, `characters/${id}`, isTerminal, 240_000)),
    );
    const finished = Date.now();

    const failures = docs.flatMap((d, i) =>
      statusOf(d) === 'complete'
        ? []
        : [`${ids[i]}: ${JSON.stringify((d?.visuals as DocumentData)?.showcaseProcessingError)}`],
    );
    expect(failures).toEqual([]);

    // The storm and the window both happened.
    const { responses, faultsApplied } = s.clipdrop.stats;
    expect(responses['402'] ?? 0).toBeGreaterThan(0);
    expect(responses['500'] ?? 0).toBeGreaterThan(0);
    expect(faultsApplied.drop).toBeGreaterThan(0);

    const lines = worker.logs.map((l) => JSON.parse(l) as Line);
    const at = (l: Line) => Date.parse(l.timestamp);
    const pauses = lines.filter((l) => l.message === 'clipdrop.paused');
    const resumes = lines.filter((l) => l.message === 'clipdrop.resumed');
    expect(pauses.some((l) => l.reason === 'no-credits')).toBe(true);
    // The gate is open at the end: every pause was followed by its resume.
    expect(resumes.length).toBe(pauses.length);
    // The pause that spans the window's end ends within 20 s of it.
    const resumed = resumes.find((l) => at(l) >= window.endsAt);
    expect(resumed, 'a clipdrop.resumed line after the window').toBeDefined();
    const lateMs = at(resumed!) - window.endsAt;
    expect(lateMs).toBeLessThanOrEqual(20_000);

    const probes = lines.filter((l) => l.message === 'clipdrop.probe_scheduled');
    // The probe that met the queued reset was retried on the backoff.
    expect(probes.some((l) => l.after === 'transient')).toBe(true);
    console.log(
      JSON.stringify({
        faultStorm: {
          windowMs: [window.startsAt - started, window.endsAt - started],
          pauses: pauses.map((l) => ({ at: at(l) - started, reason: l.reason })),
          resumes: resumes.map((l) => ({ at: at(l) - started, pausedMs: l.pausedMs })),
          resumedAfterWindowEndMs: lateMs,
          probes: probes.map((l) => `${String(l.after)}:${String(l.delayMs)}`),
          allDoneMs: finished - started,
          responses,
          drops: faultsApplied.drop,
        },
      }),
    );
  }, 300_000);
});
