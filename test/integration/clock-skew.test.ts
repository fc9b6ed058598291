/**
 * Worker processes whose wall clocks disagree (libfaketime on the child only: Date.now is
 * shifted, the monotonic clock is honest), on one ClipDrop key at its real 60 requests a
 * minute. Whatever the clocks say, a worker neither takes a live worker's jobs nor loses its
 * own, no picture is paid twice, the key sees no 429, and a dead worker is still taken over.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Endpoint } from '../../dev/clipdrop-standin.js';
import { freePort } from '../../dev/free-port.js';
import { characterPicture } from '../support/images.js';
import {
  aheadBy,
  faketimeMissing,
  setClockFile,
  untilHttpClock,
  type SkewedClock,
} from '../support/skewed-clock.js';
import { BUCKET, startStack, type Stack } from '../support/stack.js';
import { statusOf, until, waitForDoc } from '../support/wait.js';
import {
  runningJobs,
  spawnWorker,
  type LogLine,
  type WorkerProcess,
} from '../support/worker-process.js';

const missing = faketimeMissing();
if (missing) process.stderr.write(`clock-skew.test.ts skipped: ${missing}\n`);

const isTerminal = (d: FirebaseFirestore.DocumentData | undefined) =>
  ['complete', 'failed'].includes(statusOf(d) ?? '');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
type Job = { owner?: string; state?: string; attempts?: number };
const jobOf = (d: FirebaseFirestore.DocumentData | undefined) =>
  (d?.visuals as { showcaseJob?: Job } | undefined)?.showcaseJob ?? {};

/** The production lease (60 s) and timeout: takeover must come from presence, not the lease. */
const FLEET_ENV = { LEASE_MS: '60000', LOG_LEVEL: 'info' };
const PRESENCE_TIMEOUT_MS = 15_000;
/** A log line reaches the test this late at most, on a loaded machine (ms). */
const DELIVERY_MS = 10_000;

/** Workers a worker declared dead, and claims of a job a worker had held before (by logs). */
function takeoverSigns(lines: LogLine[]): LogLine[] {
  return lines.filter(
    (l) =>
      l.message === 'fleet.worker_dead' ||
      (l.message === 'job.claimed' && typeof l.attempt === 'number' && l.attempt > 1),
  );
}

type Paid = Map<string, Record<Endpoint, number>>;
const copyPaid = (paid: Paid): Paid => new Map([...paid].map(([h, c]) => [h, { ...c }]));

/**
 * Paid calls per picture. Remove-background is keyed by the picture's own hash; upscale by
 * the hash of what the worker sent, a deterministic function of the picture (its cut-out,
 * prepared for upscaling), so a picture upscaled twice shows as one hash with 2.
 */
function paidPerPicture(paid: Paid, sources: Set<string>) {
  const upscaled = [...paid].filter(([h, c]) => !sources.has(h) && c.upscale > 0);
  return {
    removeBackground: (hash: string) => paid.get(hash)?.removeBackground ?? 0,
    upscaleCounts: upscaled.map(([, c]) => c.upscale),
    /** Calls paid on images that are neither a source nor an upscale input (none expected). */
    stray: [...paid].filter(([h, c]) => !sources.has(h) && c.removeBackground > 0).length,
    total: [...paid.values()].reduce((n, c) => n + c.removeBackground + c.upscale, 0),
  };
}

describe.skipIf(missing !== undefined)('workers whose clocks disagree', () => {
  let stack: Stack | undefined;
  const processes: WorkerProcess[] = [];
  const tempDirs: string[] = [];
  const spawn = (clock?: SkewedClock, env: Record<string, string> = {}) => {
    if (!stack) throw new Error('no stack');
    const p = spawnWorker({ ...stack.env, ...FLEET_ENV, ...env }, clock ? { clock } : {});
    processes.push(p);
    return p;
  };

  afterEach(async (ctx) => {
    for (const p of processes.splice(0)) {
      if (p.proc.exitCode === null && p.proc.signalCode === null) p.kill('SIGKILL');
      await p.exited;
      if (ctx.task.result?.state === 'fail') {
        process.stderr.write(p.rawLines.join('\n') + '\n' + p.stderr.join('') + '\n');
      }
    }
    await stack?.close();
    stack = undefined;
    for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  async function seed(s: Stack, ids: string[]): Promise<Map<string, string>> {
    const hashes = new Map<string, string>();
    await Promise.all(
      ids.map(async (id, i) => {
        const picture = await characterPicture(24, 24, 'png', i + 1);
        s.storage.putObject(BUCKET, `raw-uploads/user-1/${id}.png`, picture);
        hashes.set(id, sha256(picture));
      }),
    );
    return hashes;
  }

  /**
   * Waits for the worker's start and checks, on that log line's timestamp, that its clock is
   * `expectedMs` ahead of the test's (so no test passes on a clock that was never skewed).
   * Resolves with its worker id.
   */
  async function startedWithClock(w: WorkerProcess, expectedMs: number): Promise<string> {
    const line = await w.waitForLog((l) => l.message === 'worker.started', 60_000);
    // Measured as the line arrives (the waits run together): read late, it would look
    // further behind than the worker's clock is.
    const ahead = aheadBy(line);
    expect(ahead, 'the worker clock’s offset, by its start line').toBeGreaterThan(
      expectedMs - DELIVERY_MS,
    );
    expect(ahead).toBeLessThan(expectedMs + 2_000);
    const id = line.workerId;
    if (typeof id !== 'string') throw new Error('worker.started with no workerId');
    return id;
  }

  it('three workers 30 s ahead, 30 s behind and on time on one 60/min key: each picture paid once, no live worker’s job taken, then a SIGKILLed one taken over', async () => {
    stack = await startStack({ clipdrop: { rpm: 60 } });
    const s = stack;
    const ahead = spawn({ offset: '+30s' });
    const behind = spawn({ offset: '-30s' });
    const onTime = spawn();
    const workers = [ahead, behind, onTime];
    const [onTimeId] = await Promise.all([
      startedWithClock(onTime, 0),
      startedWithClock(ahead, 30_000),
      startedWithClock(behind, -30_000),
    ]);

    const ids = Array.from({ length: 60 }, (_, i) => `skew-${i}`);
    const hashes = await seed(s, ids);
    const sources = new Set(hashes.values());
    await Promise.all(ids.map((id) => s.click(id)));
    const done = ids.map((id) => waitForDoc(s.db, `characters/${id}`, isTerminal, 280_000));

    // Mid-run (a third of the paid calls made), the on-time worker holds jobs: kill it.
    await until(
      () => runningJobs(onTime).length > 0 && s.clipdrop.stats.calls.upscale >= 20,
      200_000,
      'the on-time worker busy, mid-run',
    );
    const paidAtKill = copyPaid(s.clipdrop.stats.callsByImage);
    const inFlightAtKill = s.clipdrop.stats.inFlight;
    const linesAtKill = workers.map((w) => w.lines.length);
    onTime.kill('SIGKILL');
    const killedAt = Date.now();
    await onTime.exited;

    // While all three were alive: nobody declared anybody dead or claimed a held job, and no
    // picture was paid twice for either call. (Soft: a failure still shows the takeover below.)
    const before = paidPerPicture(paidAtKill, sources);
    const twice = {
      removeBackground: ids.filter((id) => before.removeBackground(hashes.get(id) ?? '') > 1),
      upscale: before.upscaleCounts.filter((n) => n > 1).length,
    };
    process.stdout.write(
      `clock-skew: at the kill, ${s.clipdrop.stats.calls.upscale} upscales made; paid twice: ${twice.removeBackground.length} remove-background, ${twice.upscale} upscale\n`,
    );
    workers.forEach((w, i) =>
      expect.soft(takeoverSigns(w.lines.slice(0, linesAtKill[i]))).toEqual([]),
    );
    expect.soft(twice.removeBackground).toEqual([]);
    expect.soft(twice.upscale).toBe(0);

    // The jobs it held, as the store says (the takeover query's own filter).
    const heldSnap = await s.db
      .collection('characters')
      .where('visuals.showcaseJob.owner', '==', onTimeId)
      .where('visuals.showcaseJob.state', '==', 'running')
      .get();
    const held = heldSnap.docs.map((d) => d.id);
    // Its attempt on each (1 unless it had taken the job from another worker itself).
    const heldAttempt = new Map(heldSnap.docs.map((d) => [d.id, jobOf(d.data()).attempts ?? 0]));
    expect.soft(held.length, 'jobs the killed worker held').toBeGreaterThan(0);

    const survivors = [ahead, behind];
    const claimedAgain = (id: string) =>
      Promise.any(
        survivors.map((w) =>
          w.waitForLog(
            (l) =>
              l.message === 'job.claimed' &&
              l.characterId === id &&
              l.attempt === (heldAttempt.get(id) ?? 0) + 1,
            150_000,
          ),
        ),
      );
    await Promise.all(held.map(claimedAgain));
    const claimedMs = Date.now() - killedAt;
    await Promise.all(held.map((id) => waitForDoc(s.db, `characters/${id}`, isTerminal, 200_000)));
    const completeMs = Date.now() - killedAt;
    const docs = await Promise.all(done);
    process.stdout.write(
      `clock-skew: ${held.length} jobs of the killed on-time worker claimed again ${claimedMs} ms and complete ${completeMs} ms after the kill\n`,
    );

    const paid = paidPerPicture(s.clipdrop.stats.callsByImage, sources);
    const paidTwice = {
      removeBackground: ids.filter((id) => paid.removeBackground(hashes.get(id) ?? '') > 1).length,
      upscale: paid.upscaleCounts.filter((n) => n > 1).length,
    };
    process.stdout.write(
      `clock-skew: in all, pictures paid twice: ${paidTwice.removeBackground} remove-background, ${paidTwice.upscale} upscale; ${held.length} held at the kill, ${inFlightAtKill} calls in flight\n`,
    );

    expect(docs.map(statusOf)).toEqual(ids.map(() => 'complete'));
    expect(s.clipdrop.stats.responses['429'] ?? 0).toBe(0);
    // Taken over: exactly the dead worker's jobs, once each; every other job ran once.
    expect(docs.map((d) => jobOf(d).attempts)).toEqual(
      ids.map((id) => (held.includes(id) ? 2 : 1)),
    );
    // The survivors declared only the killed worker dead.
    for (const w of survivors) {
      const dead = w.lines
        .filter((l) => l.message === 'fleet.worker_dead')
        .flatMap((l) => (Array.isArray(l.workers) ? (l.workers as unknown[]) : []));
      expect(new Set(dead)).toEqual(new Set([onTimeId]));
    }

    // Paid once per picture and call, but for the calls the killed worker had in flight.
    for (const id of ids) {
      const n = paid.removeBackground(hashes.get(id) ?? '');
      if (held.includes(id)) expect(n, id).toBeGreaterThanOrEqual(1);
      else expect(n, id).toBe(1);
      expect(n, id).toBeLessThanOrEqual(2);
    }
    expect(paid.upscaleCounts).toHaveLength(ids.length);
    expect(paidTwice.upscale).toBeLessThanOrEqual(held.length);
    expect(Math.max(...paid.upscaleCounts)).toBeLessThanOrEqual(2);
    expect(paid.stray).toBe(0);
    // Beyond one call per picture and endpoint: at most the killed worker's outstanding calls,
    // one per job it held (a job's calls are sequential), whether the stand-in had counted it
    // in flight when it was read or it was still on its way: the window is spent in bursts
    // now, so a send at the moment of the SIGKILL is likely.
    expect(paid.total - 2 * ids.length).toBeLessThanOrEqual(held.length);
  }, 300_000);

  it('a worker whose clock steps 5 minutes ahead mid-run and back: each picture paid once, no job taken or lost', async () => {
    stack = await startStack({ clipdrop: { rpm: 60 } });
    const s = stack;
    const dir = mkdtempSync(join(tmpdir(), 'clock-skew-'));
    tempDirs.push(dir);
    const clockFile = join(dir, 'clock.rc');
    setClockFile(clockFile, '+0');
    // Its HTTP server's Date header tells its clock whether it logs or not.
    const port = await freePort();
    const stepper = spawn({ file: clockFile }, { PORT: String(port) });
    const clockUrl = `http://127.0.0.1:${port}/healthz`;
    const workers = [stepper, spawn(), spawn()];
    await Promise.all(workers.map((w) => startedWithClock(w, 0)));
    await stepper.waitForLog((l) => l.message === 'http.listening');

    // More paid calls than the key allows in a minute: the run outlasts the step and its return.
    const ids = Array.from({ length: 36 }, (_, i) => `step-${i}`);
    const hashes = await seed(s, ids);
    const sources = new Set(hashes.values());
    await Promise.all(ids.map((id) => s.click(id)));
    const done = ids.map((id) => waitForDoc(s.db, `characters/${id}`, isTerminal, 170_000));

    // Step forward while the stepper's calls are in flight.
    await until(
      () => runningJobs(stepper).length > 0 && s.clipdrop.stats.inFlight > 0,
      60_000,
      'the stepping worker mid-call',
    );
    setClockFile(clockFile, '+300s');
    const steppedAt = Date.now();
    // libfaketime rereads the file within a second.
    await untilHttpClock(clockUrl, (ms) => ms > 298_000, 15_000, 'the step forward');
    // Held past the presence timeout, so that every liveness judged on this clock is wrong in
    // both directions (the others expired to it; its beats far in the future to them). Nothing
    // marks the moment it would misbehave: the wait is the test.
    await new Promise((r) => setTimeout(r, steppedAt + PRESENCE_TIMEOUT_MS + 5_000 - Date.now()));
    setClockFile(clockFile, '+0');
    await untilHttpClock(clockUrl, (ms) => Math.abs(ms) < 2_000, 15_000, 'the step back');
    const stillRunning = ids.length - s.clipdrop.stats.calls.upscale;
    process.stdout.write(`clock-skew: ${stillRunning} jobs left to upscale after the step back\n`);

    const docs = await Promise.all(done);
    expect(docs.map(statusOf)).toEqual(ids.map(() => 'complete'));
    expect(s.clipdrop.stats.responses['429'] ?? 0).toBe(0);
    // No job was taken from a live worker, nor lost by the stepper and run again.
    expect(docs.map((d) => jobOf(d).attempts)).toEqual(ids.map(() => 1));
    for (const w of workers) expect(takeoverSigns(w.lines)).toEqual([]);
    // Each picture paid once per call.
    const paid = paidPerPicture(s.clipdrop.stats.callsByImage, sources);
    expect(ids.map((id) => paid.removeBackground(hashes.get(id) ?? ''))).toEqual(ids.map(() => 1));
    expect(paid.upscaleCounts).toEqual(ids.map(() => 1));
    expect(paid.stray).toBe(0);
    expect(s.clipdrop.stats.calls).toEqual({ removeBackground: ids.length, upscale: ids.length });
  }, 200_000);
});
