/**
 * Worker processes that vanish mid-call, billed exactly: each job has a picture of its own size,
 * so the ClipDrop stand-in counts every job's paid calls and calls in flight at both endpoints.
 * The moment a worker vanishes is chosen when every running job has its one call in the
 * stand-in's latency wait: nothing is on its way, so "in flight" is exact.
 */
import type { DocumentData } from 'firebase-admin/firestore';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ENDPOINTS,
  inFlightFor,
  inFlightNow,
  jobOf,
  ownersOf,
  paidFor,
  paidTotal,
  seedSized,
  type JobRecord,
} from '../support/billing.js';
import { startStack, type Stack } from '../support/stack.js';
import { statusOf, until, waitForDoc } from '../support/wait.js';
import { printLog, spawnWorker, type WorkerProcess } from '../support/worker-process.js';

const isTerminal = (d: DocumentData | undefined) =>
  ['complete', 'failed'].includes(statusOf(d) ?? '');

/**
 * A short presence timeout (takeover in seconds), the production lease (takeover comes from
 * presence, not from the lease running out), and a quota the test does not wait on.
 */
const FLEET_ENV = {
  PRESENCE_TIMEOUT_MS: '6000',
  LEASE_MS: '60000',
  CLIPDROP_RPM: '6000',
  LOG_LEVEL: 'info',
  // Every job held is in a call (no job waits for a paid slot), so the tests can kill a worker
  // with all its jobs mid-call: a fifth click dealt to a worker is left to another one.
  WORKER_LOCAL_JOBS: '0',
};

const finished = (w: WorkerProcess, id: string) =>
  w.lines.filter((l) => l.message === 'job.finished' && l.characterId === id);

describe('workers that vanish mid-call', () => {
  let stack: Stack | undefined;
  const processes: WorkerProcess[] = [];
  const spawn = (workerId: string) => {
    if (!stack) throw new Error('no stack');
    const p = spawnWorker({ ...stack.env, ...FLEET_ENV, WORKER_ID: workerId });
    processes.push(p);
    return p;
  };

  afterEach(async (ctx) => {
    for (const p of processes.splice(0)) {
      if (p.proc.exitCode === null && p.proc.signalCode === null) {
        p.kill('SIGCONT');
        p.kill('SIGKILL');
      }
      await p.exited;
      if (ctx.task.result?.state === 'fail') {
        printLog(p);
      }
    }
    await stack?.close();
    stack = undefined;
  });

  it('a worker stopped (SIGSTOP) past the presence timeout mid-call, then resumed: all complete, the extra calls are those in flight at the stop, the resumed worker writes and pays nothing', async () => {
    const s = (stack = await startStack({ clipdrop: { latencyMs: { removeBackground: 6_000 } } }));
    const began = Date.now();
    const [stalled, survivor] = [spawn('stall-a'), spawn('stall-b')];
    await Promise.all(
      [stalled, survivor].map((w) => w.waitForLog((l) => l.message === 'worker.started')),
    );
    const ids = Array.from({ length: 6 }, (_, i) => `stall-${i}`);
    const sizes = await seedSized(s, ids);
    const size = (id: string) => sizes.get(id) ?? '';
    await Promise.all(ids.map((id) => s.click(id)));

    // Every job has its remove-background call in the stand-in (two workers of 4 slots each).
    await until(() => s.clipdrop.stats.inFlight === ids.length, 30_000, 'every job mid-call');
    const atStop = inFlightNow(s.clipdrop.stats);
    const owners = await ownersOf(s.db, ids);
    const held = ids.filter((id) => owners.get(id) === 'stall-a');
    expect([...owners.keys()].sort()).toEqual([...ids].sort());
    expect(held.length).toBeGreaterThan(0);
    stalled.kill('SIGSTOP');
    const stoppedAt = Date.now();
    // The survivor's calls again for the jobs it takes over: still in flight when A resumes.
    s.clipdrop.setLatency({ removeBackground: 3_000 });

    await Promise.all(
      held.map((id) =>
        survivor.waitForLog(
          (l) => l.message === 'job.claimed' && l.characterId === id && l.attempt === 2,
          60_000,
        ),
      ),
    );
    const takenMs = Date.now() - stoppedAt;
    const taken = await ownersOf(s.db, held);
    expect(held.map((id) => taken.get(id))).toEqual(held.map(() => 'stall-b'));
    // The stopped worker's calls were answered (into its socket); the survivor's are under way.
    await until(
      () =>
        held.every(
          (id) =>
            paidFor(s.clipdrop.stats, size(id)).removeBackground >= 1 &&
            inFlightFor(inFlightNow(s.clipdrop.stats), size(id)).removeBackground >= 1,
        ),
      30_000,
      'the survivor’s calls in flight',
    );

    // From the resume on, every version of the taken jobs' documents: never A's again.
    const seen: JobRecord[] = [];
    const watches = held.map((id) =>
      s.db.doc(`characters/${id}`).onSnapshot((snap) => seen.push(jobOf(snap.data()))),
    );
    stalled.kill('SIGCONT');
    try {
      // The resumed worker gives up each job it held: presumed taken over.
      await Promise.all(
        held.map((id) =>
          stalled.waitForLog((l) => l.message === 'job.finished' && l.characterId === id, 30_000),
        ),
      );
      const docs = await Promise.all(
        ids.map((id) => waitForDoc(s.db, `characters/${id}`, isTerminal, 60_000)),
      );
      await until(() => s.clipdrop.stats.inFlight === 0, 30_000, 'no call left in flight');
      const doneMs = Date.now() - stoppedAt;
      expect(docs.map(statusOf)).toEqual(ids.map(() => 'complete'));
      process.stdout.write(
        `vanishing: ${held.length} jobs of the stopped worker claimed again ${takenMs} ms after the stop; all complete ${doneMs} ms after it; test ${Date.now() - began} ms\n`,
      );

      for (const id of held) {
        await survivor.waitForLog((l) => l.message === 'job.finished' && l.characterId === id);
        expect(finished(stalled, id).map((l) => l.outcome)).toEqual(['lost']);
        expect(finished(survivor, id).map((l) => l.outcome)).toEqual(['complete']);
      }
      expect(stalled.lines.some((l) => l.message === 'presence.lapsed')).toBe(true);
      expect(seen.length).toBeGreaterThan(0);
      for (const job of seen) {
        expect(job.owner === 'stall-b' || (job.owner === null && job.state === 'complete')).toBe(
          true,
        );
        expect(['running', 'complete']).toContain(job.state);
      }

      // Billing, per picture: what the documents say was paid, plus the stopped worker's calls
      // in flight at the stop (answered while it was stopped, never recorded), and nothing else.
      docs.forEach((d, i) => {
        const id = ids[i]!;
        const wasHeld = held.includes(id);
        expect(jobOf(d).attempts).toBe(wasHeld ? 2 : 1);
        expect(jobOf(d).calls).toEqual({ removeBackground: 1, upscale: 1 });
        const inFlight = inFlightFor(atStop, size(id));
        for (const e of ENDPOINTS) {
          const extra = wasHeld ? inFlight[e] : 0;
          expect({ id, e, paid: paidFor(s.clipdrop.stats, size(id))[e] }).toEqual({
            id,
            e,
            paid: 1 + extra,
          });
        }
      });
      // Every request that reached the stand-in was paid for and is counted above: the resumed
      // worker sent none after the resume, not even one that was refused.
      const total = paidTotal(s.clipdrop.stats);
      expect(s.clipdrop.stats.calls).toEqual(total);
      expect(s.clipdrop.stats.responses).toEqual({ '200': total.removeBackground + total.upscale });
    } finally {
      for (const unsubscribe of watches) unsubscribe();
    }
  }, 150_000);

  it('a worker SIGKILLed mid-call: jobs it did not hold paid once per endpoint, a job it held once more per endpoint it had in flight, and each document’s bill is what was paid less those', async () => {
    const s = (stack = await startStack({ clipdrop: { latencyMs: { upscale: 10_000 } } }));
    const began = Date.now();
    const workers = ['kill-0', 'kill-1', 'kill-2'].map(spawn);
    await Promise.all(workers.map((w) => w.waitForLog((l) => l.message === 'worker.started')));
    const wave1 = Array.from({ length: 6 }, (_, i) => `kill-up-${i}`);
    const wave2 = Array.from({ length: 3 }, (_, i) => `kill-rb-${i}`);
    const ids = [...wave1, ...wave2];
    const sizes = await seedSized(s, ids);
    const size = (id: string) => sizes.get(id) ?? '';

    // Wave 1 goes through remove-background, its bill and its cut-out kept, and into upscale.
    await Promise.all(wave1.map((id) => s.click(id)));
    await until(
      () => wave1.every((id) => inFlightFor(inFlightNow(s.clipdrop.stats), size(id)).upscale === 1),
      30_000,
      'wave 1 upscaling',
    );
    await Promise.all(
      wave1.map((id) =>
        waitForDoc(s.db, `characters/${id}`, (d) => jobOf(d).calls?.removeBackground === 1),
      ),
    );
    const checkpointed = (id: string) =>
      [...s.storage.objects.keys()].some((k) => k.includes(`showcase-work/${id}/`));
    await until(() => wave1.every(checkpointed), 30_000, 'wave 1 cut-outs kept');
    // Wave 2 into remove-background, while wave 1's upscale calls are still in flight.
    s.clipdrop.setLatency({ removeBackground: 10_000 });
    await Promise.all(wave2.map((id) => s.click(id)));
    await until(() => s.clipdrop.stats.inFlight === ids.length, 30_000, 'every job mid-call');

    // Kill the worker holding the most jobs, one with calls at both endpoints if there is one.
    const atKill = inFlightNow(s.clipdrop.stats);
    const owners = await ownersOf(s.db, ids);
    expect([...owners.keys()].sort()).toEqual([...ids].sort());
    const holding = (w: string) => ids.filter((id) => owners.get(id) === w);
    const endpointsOf = (w: string) =>
      new Set(holding(w).map((id) => (wave1.includes(id) ? 'upscale' : 'removeBackground'))).size;
    const rank = (w: string) => endpointsOf(w) * 100 + holding(w).length;
    const doomedId = ['kill-0', 'kill-1', 'kill-2'].reduce((a, b) => (rank(b) > rank(a) ? b : a));
    const doomed = workers[['kill-0', 'kill-1', 'kill-2'].indexOf(doomedId)]!;
    const survivors = workers.filter((w) => w !== doomed);
    const held = holding(doomedId);
    expect(held.length).toBeGreaterThan(0);
    doomed.kill('SIGKILL');
    const killedAt = Date.now();
    await doomed.exited;
    s.clipdrop.setLatency({ removeBackground: 0, upscale: 0 });

    const docs = await Promise.all(
      ids.map((id) => waitForDoc(s.db, `characters/${id}`, isTerminal, 60_000)),
    );
    const doneMs = Date.now() - killedAt;
    // The dead worker's calls are answered (to nobody) and charged.
    await until(() => s.clipdrop.stats.inFlight === 0, 30_000, 'no call left in flight');
    expect(docs.map(statusOf)).toEqual(ids.map(() => 'complete'));
    process.stdout.write(
      `vanishing: killed ${doomedId} holding ${held.length} jobs (${endpointsOf(doomedId)} endpoints in flight); all complete ${doneMs} ms after the kill; test ${Date.now() - began} ms\n`,
    );
    for (const id of held) {
      const claims = survivors.flatMap((w) =>
        w.lines.filter(
          (l) => l.message === 'job.claimed' && l.characterId === id && l.attempt === 2,
        ),
      );
      expect(claims).toHaveLength(1);
    }

    docs.forEach((d, i) => {
      const id = ids[i]!;
      const wasHeld = held.includes(id);
      const inFlight = inFlightFor(atKill, size(id));
      // Each held job had exactly one call in flight (the moment was chosen so).
      if (wasHeld) expect(inFlight.removeBackground + inFlight.upscale).toBe(1);
      expect(jobOf(d).attempts).toBe(wasHeld ? 2 : 1);
      // The bill on the document: one call per endpoint. A held job's in-flight call, answered
      // to a dead process, is on nobody's bill: no worker ever knew it was paid.
      expect({ id, calls: jobOf(d).calls }).toEqual({
        id,
        calls: { removeBackground: 1, upscale: 1 },
      });
      const paid = paidFor(s.clipdrop.stats, size(id));
      for (const e of ENDPOINTS) {
        expect({ id, e, paid: paid[e] }).toEqual({
          id,
          e,
          paid: 1 + (wasHeld ? inFlight[e] : 0),
        });
      }
    });
    // Every request reached was paid (no refusal, no stray call).
    expect(s.clipdrop.stats.calls).toEqual(paidTotal(s.clipdrop.stats));
  }, 150_000);
});
