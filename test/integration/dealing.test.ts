import { afterEach, describe, expect, it } from 'vitest';
import { dealtTo } from '../../src/jobs/deal.js';
import { seedSized } from '../support/billing.js';
import { BUCKET, startStack, type Stack } from '../support/stack.js';
import { statusOf, waitForDoc } from '../support/wait.js';
import {
  spawnWorker,
  type LogLine,
  type WorkerProcess,
  endAll,
} from '../support/worker-process.js';

const isTerminal = (d: FirebaseFirestore.DocumentData | undefined) =>
  ['complete', 'failed'].includes(statusOf(d) ?? '');

/**
 * Production leases, and no sweep after the first: a click is taken by a listener or by
 * nothing, so a click left to a dead worker would never complete. Debug: the refused claims
 * (`job.skipped`) and the dealing's own lines.
 */
const DEAL_ENV = { LEASE_MS: '60000', SWEEP_MS: '600000', LOG_LEVEL: 'debug' };

type Spawned = WorkerProcess & { id: string };

describe('one replica per click', () => {
  let stack: Stack | undefined;
  const processes: Spawned[] = [];

  /** Three workers, each dealing over the same three (its `deal.fleet` line says so). */
  async function threeWorkers(s: Stack): Promise<Spawned[]> {
    const workers = ['deal-w0', 'deal-w1', 'deal-w2'].map((id) => {
      const p = Object.assign(spawnWorker({ ...s.env, ...DEAL_ENV, WORKER_ID: id }), { id });
      processes.push(p);
      return p;
    });
    await Promise.all(
      workers.map((w) =>
        w.waitForLog(
          (l) => l.message === 'deal.fleet' && (l.live as string[] | undefined)?.length === 3,
          60_000,
        ),
      ),
    );
    return workers;
  }

  afterEach(async (ctx) => {
    await endAll(processes, ctx.task.result?.state === 'fail');
    await stack?.close();
    stack = undefined;
  });

  /** GETs of the source's media in the Storage stand-in's log: its downloads. */
  const downloadsOf = (s: Stack, id: string) =>
    s.storage.requests.filter(
      (r) =>
        r.method === 'GET' &&
        decodeURIComponent(r.path).includes(
          `/b/${BUCKET}/o/raw-uploads/user-1/${id}.png?alt=media`,
        ),
    ).length;

  const linesAbout = (workers: readonly Spawned[], message: string, id: string) =>
    workers.flatMap((w) =>
      w.lines
        .filter((l: LogLine) => l.message === message && l.characterId === id)
        .map((l) => ({ worker: w.id, line: l })),
    );

  it('three workers, clicks one at a time: each source downloaded once, claimed once, by the worker it is dealt to', async () => {
    const s = (stack = await startStack());
    const ids = Array.from({ length: 12 }, (_, i) => `one-${i}`);
    await seedSized(s, ids);
    const workers = await threeWorkers(s);
    const fleet = workers.map((w) => w.id);

    for (const id of ids) {
      await s.click(id);
      const data = await waitForDoc(s.db, `characters/${id}`, isTerminal, 60_000);
      expect(statusOf(data)).toBe('complete');
    }

    const perClick = ids.map((id) => ({
      id,
      downloads: downloadsOf(s, id),
      claimedBy: linesAbout(workers, 'job.claimed', id).map((c) => c.worker),
      refused: linesAbout(workers, 'job.skipped', id).length,
    }));
    // Today's code: 3 downloads and 3 claim attempts (2 refused) a click.
    expect(perClick).toEqual(
      ids.map((id) => ({ id, downloads: 1, claimedBy: [dealtTo(id, fleet)], refused: 0 })),
    );
    const claimers = new Set(perClick.flatMap((c) => c.claimedBy));
    process.stdout.write(`dealing: ${ids.length} clicks over ${claimers.size} of 3 workers\n`);
    expect(claimers.size).toBeGreaterThan(1);
  }, 180_000);

  it('clicks dealt to a SIGKILLed worker are taken by the survivors: at once once it is seen dead, after the handoff delay before', async () => {
    const s = (stack = await startStack());
    const candidates = Array.from({ length: 60 }, (_, i) => `kill-${i}`);
    await seedSized(s, candidates);
    const workers = await threeWorkers(s);
    const fleet = workers.map((w) => w.id);
    const [victim, ...survivors] = workers as [Spawned, Spawned, Spawned];
    const toVictim = candidates.filter((id) => dealtTo(id, fleet) === victim.id);
    const early = toVictim.slice(0, 3);
    const late = toVictim.slice(3, 6);
    expect(late).toHaveLength(3);

    victim.kill('SIGKILL');
    await victim.exited;
    const killedAt = Date.now();

    // Before the death is seen (its heartbeat still counts for ~15 s): left unclaimed by the
    // victim, handed off after the delay.
    await Promise.all(early.map((id) => s.click(id)));
    const earlyDocs = await Promise.all(
      early.map((id) => waitForDoc(s.db, `characters/${id}`, isTerminal, 90_000)),
    );
    const earlyMs = Date.now() - killedAt;
    expect(earlyDocs.map(statusOf)).toEqual(early.map(() => 'complete'));
    for (const id of early) expect(linesAbout(survivors, 'job.claimed', id)).toHaveLength(1);
    const handoffs = early.flatMap((id) => linesAbout(survivors, 'deal.handoff', id));
    expect(handoffs.map((h) => h.line.reason)).toContain('waited');

    // Once both survivors saw it dead: dealt among them, taken at once, downloaded once.
    await Promise.all(
      survivors.map((w) => w.waitForLog((l) => l.message === 'fleet.worker_dead', 90_000)),
    );
    await Promise.all(late.map((id) => s.click(id)));
    const lateDocs = await Promise.all(
      late.map((id) => waitForDoc(s.db, `characters/${id}`, isTerminal, 90_000)),
    );
    expect(lateDocs.map(statusOf)).toEqual(late.map(() => 'complete'));
    const alive = survivors.map((w) => w.id);
    expect(
      late.map((id) => ({
        id,
        downloads: downloadsOf(s, id),
        claimedBy: linesAbout(survivors, 'job.claimed', id).map((c) => c.worker),
      })),
    ).toEqual(late.map((id) => ({ id, downloads: 1, claimedBy: [dealtTo(id, alive)] })));
    process.stdout.write(
      `dealing: the killed worker's clicks complete ${earlyMs} ms after the kill, downloaded ${early
        .map((id) => downloadsOf(s, id))
        .join(', ')} times (handoffs: ${handoffs
        .map((h) => `${h.worker} ${String(h.line.reason)} ${String(h.line.waitedMs)} ms`)
        .join(', ')})\n`,
    );
  }, 180_000);
});
