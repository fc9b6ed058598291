import { afterEach, describe, expect, it } from 'vitest';
import { characterPicture } from '../support/images.js';
import { BUCKET, startStack, type Stack } from '../support/stack.js';
import { runCliCaptured } from '../support/cli.js';
import { reclick } from '../support/stack.js';
import { statusOf, waitForDoc } from '../support/wait.js';
import { spawnWorker, type WorkerProcess } from '../support/worker-process.js';

const errorCodeOf = (d: FirebaseFirestore.DocumentData | undefined) =>
  (d?.visuals as { showcaseProcessingError?: { code?: string } } | undefined)
    ?.showcaseProcessingError?.code;

const isTerminal = (d: FirebaseFirestore.DocumentData | undefined) =>
  ['complete', 'failed'].includes(statusOf(d) ?? '');

describe('fair to every user', () => {
  let stack: Stack | undefined;
  const processes: WorkerProcess[] = [];
  afterEach(async (ctx) => {
    for (const p of processes.splice(0)) {
      if (p.proc.exitCode === null && p.proc.signalCode === null) p.kill('SIGKILL');
      await p.exited;
      if (ctx.task.result?.state === 'fail') {
        process.stderr.write(p.lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
      }
    }
    await stack?.close();
    stack = undefined;
  });

  /** Clicks all of `ids` at once and waits for each to end; returns their final documents. */
  async function clickAndSettle(s: Stack, userId: string, ids: string[]) {
    await Promise.all(ids.map((id) => clickAs(s, userId, id)));
    return Promise.all(ids.map((id) => waitForDoc(s.db, `characters/${id}`, isTerminal, 60_000)));
  }

  const usageOf = async (s: Stack, userId: string) => {
    const day = new Date().toISOString().slice(0, 10);
    return (await s.db.doc(`showcaseUsage/day-${day}-${userId}`).get()).data();
  };

  /** Uploads a distinct picture for each id (no result-cache hits) under the owner's folder. */
  async function seed(s: Stack, userId: string, ids: string[], first = 1): Promise<void> {
    await Promise.all(
      ids.map(async (id, i) => {
        const picture = await characterPicture(24, 24, 'png', first + i);
        s.storage.putObject(BUCKET, `raw-uploads/${userId}/${id}.png`, picture);
      }),
    );
  }
  const clickAs = (s: Stack, userId: string, id: string) =>
    s.click(id, { userId, imageUrl: `gs://${BUCKET}/raw-uploads/${userId}/${id}.png` });

  it("a second user's clicks are not stuck behind the first user's 40 (60 rpm, 500 ms a call)", async () => {
    const s = (stack = await startStack({ clipdrop: { rpm: 60 } }));
    s.clipdrop.setLatency({ removeBackground: 500, upscale: 500 });
    const a = Array.from({ length: 40 }, (_, i) => `a-${i}`);
    const b = ['b-0', 'b-1', 'b-2'];
    await seed(s, 'user-a', a, 1);
    await seed(s, 'user-b', b, 100);
    await s.startWorker({ CLIPDROP_RPM: '60' });

    await Promise.all(a.map((id) => clickAs(s, 'user-a', id)));
    await new Promise((r) => setTimeout(r, 2_000));
    const clickedAt = Date.now();
    await Promise.all(b.map((id) => clickAs(s, 'user-b', id)));
    const waits = await Promise.all(
      b.map(async (id) => {
        const doc = await waitForDoc(s.db, `characters/${id}`, isTerminal, 60_000);
        return { status: statusOf(doc), ms: Date.now() - clickedAt };
      }),
    );
    process.stdout.write(`fairness: user B's jobs completed after ${JSON.stringify(waits)}\n`);
    expect(waits.map((w) => w.status)).toEqual(['complete', 'complete', 'complete']);
    // Arrival order would make each of them wait behind all 40 of user A's (about a minute).
    for (const w of waits) expect(w.ms).toBeLessThan(15_000);
  }, 120_000);

  it('USER_DAILY_JOB_LIMIT=5, 8 clicks: 5 complete, 3 refused with no ClipDrop call', async () => {
    const s = (stack = await startStack());
    const ids = Array.from({ length: 8 }, (_, i) => `d-${i}`);
    await seed(s, 'user-d', ids, 200);
    await s.startWorker({ USER_DAILY_JOB_LIMIT: '5' });

    const docs = await clickAndSettle(s, 'user-d', ids);
    const complete = docs.filter((d) => statusOf(d) === 'complete');
    const refused = docs.filter((d) => errorCodeOf(d) === 'USER_QUOTA_EXCEEDED');
    expect(complete).toHaveLength(5);
    expect(refused).toHaveLength(3);
    // One remove-background and one upscale for each of the 5; none for the 3.
    expect(s.clipdrop.stats.calls).toEqual({ removeBackground: 5, upscale: 5 });
    const message = (refused[0]?.visuals as { showcaseProcessingError: { message: string } })
      .showcaseProcessingError.message;
    expect(message).toMatch(
      /limit of 5 showcase jobs per day\. It resets at \d{4}-\d\d-\d\dT00:00:00Z/,
    );
    expect(await usageOf(s, 'user-d')).toMatchObject({ jobs: 5 });
    // Credits are added after each job's final write: wait for the last of them.
    const day = new Date().toISOString().slice(0, 10);
    await waitForDoc(s.db, `showcaseUsage/day-${day}-user-d`, (d) => d?.credits === 10, 10_000);
  }, 90_000);

  it('three worker processes racing admit exactly 5 of 8 (no over-admission)', async () => {
    // Calls that take a moment: a worker holds its jobs long enough for the others to claim
    // theirs, so the admissions really race across processes.
    const s = (stack = await startStack({ clipdrop: { latencyMs: { removeBackground: 500 } } }));
    const ids = Array.from({ length: 8 }, (_, i) => `r-${i}`);
    await seed(s, 'user-r', ids, 300);
    const workers = [0, 1, 2].map(() => {
      const p = spawnWorker({ ...s.env, LOG_LEVEL: 'debug', USER_DAILY_JOB_LIMIT: '5' });
      processes.push(p);
      return p;
    });
    // Each deals over all three before the clicks (its `deal.fleet` line): a worker that still
    // thought itself alone would claim every click, and nothing would race.
    await Promise.all(
      workers.map((w) =>
        w.waitForLog(
          (l) => l.message === 'deal.fleet' && (l.live as string[] | undefined)?.length === 3,
          60_000,
        ),
      ),
    );

    const docs = await clickAndSettle(s, 'user-r', ids);
    expect(docs.filter((d) => statusOf(d) === 'complete')).toHaveLength(5);
    expect(docs.filter((d) => errorCodeOf(d) === 'USER_QUOTA_EXCEEDED')).toHaveLength(3);
    expect(s.clipdrop.stats.calls).toEqual({ removeBackground: 5, upscale: 5 });
    expect(await usageOf(s, 'user-r')).toMatchObject({ jobs: 5 });
    const claimers = workers.filter((w) => w.lines.some((l) => l.message === 'job.claimed'));
    process.stdout.write(`fairness: ${claimers.length} of 3 workers claimed jobs\n`);
    expect(claimers.length).toBeGreaterThan(1);
  }, 120_000);

  it('a re-click on an unchanged picture (cache hit) does not count', async () => {
    const s = (stack = await startStack());
    await seed(s, 'user-c', ['c-0', 'c-1'], 400);
    await s.startWorker({ USER_DAILY_JOB_LIMIT: '2' });

    const [first] = await clickAndSettle(s, 'user-c', ['c-0']);
    expect(statusOf(first)).toBe('complete');
    await reclick(s.db, 'c-0');
    const again = await waitForDoc(
      s.db,
      'characters/c-0',
      (d) => isTerminal(d) && (d?.visuals as { clickedAt?: unknown }).clickedAt !== undefined,
      60_000,
    );
    expect(statusOf(again)).toBe('complete');
    expect(s.clipdrop.stats.calls.removeBackground).toBe(1);
    // The refund settles after the result is written (the user is not kept waiting for it).
    const day = new Date().toISOString().slice(0, 10);
    await waitForDoc(s.db, `showcaseUsage/day-${day}-user-c`, (d) => d?.jobs === 1, 10_000);
    // Had the cache hit counted, this second picture would be the third job of a limit of 2.
    const [second] = await clickAndSettle(s, 'user-c', ['c-1']);
    expect(statusOf(second)).toBe('complete');
    expect(await usageOf(s, 'user-c')).toMatchObject({ jobs: 2 });
  }, 90_000);

  it('operator clicks do not count; a per-user override raises the limit; status shows the day', async () => {
    const s = (stack = await startStack());
    const ids = ['o-0', 'o-1', 'o-2', 'o-3'];
    await seed(s, 'user-o', ids, 500);
    await s.startWorker({ USER_DAILY_JOB_LIMIT: '1' });
    const env = { ...s.env, USER_DAILY_JOB_LIMIT: '1' };

    const [first] = await clickAndSettle(s, 'user-o', ['o-0']);
    expect(statusOf(first)).toBe('complete');

    // The operator's click on the same user's character: processed, not counted.
    await s.db.doc('characters/o-1').set({
      meta: { userId: 'user-o' },
      visuals: { imageUrl: `gs://${BUCKET}/raw-uploads/user-o/o-1.png` },
    });
    expect((await runCliCaptured(['enqueue', 'o-1'], env)).code).toBe(0);
    const operators = await waitForDoc(s.db, 'characters/o-1', isTerminal, 60_000);
    expect(statusOf(operators)).toBe('complete');
    const job = (operators?.visuals as { showcaseJob?: unknown } | undefined)?.showcaseJob;
    expect(job).toMatchObject({ requestedBy: 'operator' });
    expect(await usageOf(s, 'user-o')).toMatchObject({ jobs: 1 });

    // The user's own second click of the day is over the limit of 1.
    const [refused] = await clickAndSettle(s, 'user-o', ['o-2']);
    expect(errorCodeOf(refused)).toBe('USER_QUOTA_EXCEEDED');

    // An override for this user, no restart.
    const set = await runCliCaptured(['limit', 'user-o', '--daily', '3'], env);
    expect(set.code).toBe(0);
    expect(set.out).toMatch(/daily jobs\s+3 \(override\)/);
    const [raised] = await clickAndSettle(s, 'user-o', ['o-3']);
    expect(statusOf(raised)).toBe('complete');
    expect(await usageOf(s, 'user-o')).toMatchObject({ jobs: 2 });

    const day = new Date().toISOString().slice(0, 10);
    await waitForDoc(s.db, `showcaseUsage/day-${day}-user-o`, (d) => d?.credits === 4, 10_000);
    const status = await runCliCaptured(['status'], env);
    expect(status.out).toMatch(/top users today/);
    expect(status.out).toMatch(/user-o\s+2 jobs\s+4 credits/);
    expect(s.clipdrop.stats.calls).toEqual({ removeBackground: 3, upscale: 3 });
  }, 90_000);

  it('USER_MAX_ACTIVE=1 across two workers: one job of the user at a time, all complete', async () => {
    const s = (stack = await startStack());
    s.clipdrop.setLatency({ removeBackground: 300, upscale: 300 });
    const ids = ['m-0', 'm-1', 'm-2', 'm-3'];
    await seed(s, 'user-m', ids, 600);
    const env = { USER_MAX_ACTIVE: '1', USER_DEFERRED_RETRY_MS: '200' };
    const workers = [await s.startWorker(env), await s.startWorker(env)];

    const docs = await clickAndSettle(s, 'user-m', ids);
    expect(docs.map(statusOf)).toEqual(ids.map(() => 'complete'));
    // Each job's calls are sequential: more than one call at once means two jobs at once.
    expect(s.clipdrop.stats.maxInFlight).toBe(1);
    const deferred = workers.flatMap((w) => w.outcomes).filter((o) => o.kind === 'deferred');
    expect(deferred.length).toBeGreaterThan(0);
    // Every slot was given back.
    const slots = (await s.db.doc('showcaseUsage/active-user-m').get()).data();
    expect(slots).toMatchObject({ slots: {} });
  }, 90_000);
});
