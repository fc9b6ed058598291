import { afterEach, describe, expect, it } from 'vitest';
import { runCliCaptured } from '../support/cli.js';
import { characterPicture } from '../support/images.js';
import { BUCKET, startStack, type Stack } from '../support/stack.js';
import { statusOf, waitForDoc } from '../support/wait.js';
import { endAll, spawnWorker, type WorkerProcess } from '../support/worker-process.js';

/**
 * The fleet-wide daily credit budget (docs/budget.md), with three worker processes sharing one
 * budget in the Firestore emulator and the ClipDrop stand-in counting every call.
 */

const BALANCE = 1_000;

describe('the daily credit budget', () => {
  let stack: Stack | undefined;
  const processes: WorkerProcess[] = [];

  afterEach(async (ctx) => {
    await endAll(processes, ctx.task.result?.state === 'fail');
    await stack?.close();
    stack = undefined;
  });

  /** One picture of its own bytes per character, each of a different user. */
  async function seed(s: Stack, ids: readonly string[]): Promise<void> {
    await Promise.all(
      ids.map(async (id, i) => {
        const picture = await characterPicture(24 + i, 24, 'png', i + 1);
        s.storage.putObject(BUCKET, `raw-uploads/${userOf(id)}/${id}.png`, picture);
      }),
    );
  }
  const userOf = (id: string) => `user-${id}`;
  const click = (s: Stack, id: string) =>
    s.click(id, {
      userId: userOf(id),
      imageUrl: `gs://${BUCKET}/raw-uploads/${userOf(id)}/${id}.png`,
    });
  const callsMade = (s: Stack) =>
    s.clipdrop.stats.calls.removeBackground + s.clipdrop.stats.calls.upscale;

  it('3 replicas, 10 credits, 12 clicks of 12 users: 5 complete, 7 wait unclaimed with no call; a raised budget completes them with no restart', async () => {
    const s = (stack = await startStack({ clipdrop: { credits: BALANCE } }));
    const ids = Array.from({ length: 12 }, (_, i) => `budget-${i}`);
    await seed(s, ids);
    const workers = ['budget-w0', 'budget-w1', 'budget-w2'].map((id) => {
      const p = spawnWorker({ ...s.env, WORKER_ID: id, CLIPDROP_DAILY_CREDIT_BUDGET: '10' });
      processes.push(p);
      return p;
    });
    // Each deals over the three (so clicks spread), before any click.
    await Promise.all(
      workers.map((w) =>
        w.waitForLog(
          (l) => l.message === 'deal.fleet' && (l.live as string[] | undefined)?.length === 3,
          60_000,
        ),
      ),
    );

    await Promise.all(ids.map((id) => click(s, id)));

    // Every worker ends up holding waiting clicks (dealt, or handed off after 20 s) and pauses.
    await Promise.all(
      workers.map((w) =>
        w.waitForLog((l) => l.message === 'intake.paused' && l.reason === 'budget', 90_000),
      ),
    );
    const docs = async () =>
      Promise.all(ids.map(async (id) => (await s.db.doc(`characters/${id}`).get()).data()));
    // The jobs that got credits finish meanwhile: their calls were made before the pause.
    const deadline = Date.now() + 60_000;
    let before = await docs();
    while (before.filter((d) => statusOf(d) === 'complete').length < 5 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      before = await docs();
    }
    const complete = before.filter((d) => statusOf(d) === 'complete');
    const waiting = before.filter((d) => statusOf(d) !== 'complete');
    expect(complete).toHaveLength(5);
    // Unclaimed: still the click, no job record, no lease, nothing failed.
    const jobOf = (d: FirebaseFirestore.DocumentData | undefined): unknown =>
      (d?.visuals as { showcaseJob?: unknown } | undefined)?.showcaseJob;
    expect(waiting.map((d) => [statusOf(d), jobOf(d)])).toEqual(
      Array.from({ length: 7 }, () => ['removing-background', undefined]),
    );
    // 10 credits: two calls for each complete job, none for the others.
    expect(callsMade(s)).toBe(10);
    expect(s.clipdrop.stats.paid).toHaveLength(10);
    for (const w of workers) {
      expect(w.lines.filter((l) => l.message === 'budget.warning')).toHaveLength(1);
    }

    // The operator's CLI runs with the worker's settings.
    const cliEnv = { ...s.env, CLIPDROP_DAILY_CREDIT_BUDGET: '10' };
    const status = await runCliCaptured(['status'], cliEnv);
    expect(status.out).toMatch(/^credit budget: 10 credits a day .* 10 committed/m);
    expect(status.out).toContain('intake paused: budget reached');
    // As the heartbeats last said: a beat may predate the last calls.
    const balance = Number(/ClipDrop balance: (\d+) credits/.exec(status.out)?.[1]);
    expect(balance).toBeGreaterThanOrEqual(BALANCE - 10);
    expect(balance).toBeLessThan(BALANCE);

    // The operator raises the budget: the same processes complete the rest within seconds.
    const raised = await runCliCaptured(['budget', 'set', '24'], cliEnv);
    expect(raised.code).toBe(0);
    expect(raised.out).toMatch(/^credit budget: 24 credits a day \(set by `budget set`\)/m);
    const after = await Promise.all(
      ids.map((id) =>
        waitForDoc(s.db, `characters/${id}`, (d) => statusOf(d) === 'complete', 90_000),
      ),
    );
    expect(after.map(statusOf)).toEqual(ids.map(() => 'complete'));
    expect(callsMade(s)).toBe(24);
    for (const w of workers) {
      expect(w.proc.exitCode).toBeNull();
      await w.waitForLog((l) => l.message === 'intake.resumed' && l.reason === 'budget');
    }

    // ClipDrop's balance is in the heartbeats (for status and the console).
    const beats = await s.db.collection('showcaseWorkers').get();
    const balances = beats.docs.map((d) => d.get('clipdropBalance') as unknown);
    expect(balances.some((b) => typeof b === 'number' && b <= BALANCE - 10)).toBe(true);
  }, 240_000);
});
