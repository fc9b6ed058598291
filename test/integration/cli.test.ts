import { Timestamp, type Firestore } from 'firebase-admin/firestore';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { characterPicture } from '../support/images.js';
import { runCliCaptured, spawnCli } from '../support/cli.js';
import { BUCKET, startStack, type Stack } from '../support/stack.js';
import { statusOf, waitForDoc } from '../support/wait.js';

/** A pace so fast that pacing never slows a test down (the pace itself is unit-tested). */
const FAST = { CLIPDROP_RPM: '6000000' };

const done = (d: FirebaseFirestore.DocumentData | undefined) =>
  statusOf(d) === 'complete' || statusOf(d) === 'failed';

/** Writes a character as the app (and earlier jobs) left it. */
async function put(
  db: Firestore,
  id: string,
  visuals: Record<string, unknown>,
  collection = 'characters',
): Promise<void> {
  await db.doc(`${collection}/${id}`).set({
    core: { name: `Character ${id}` },
    meta: { userId: 'user-1' },
    visuals: { imageUrl: `gs://${BUCKET}/raw-uploads/user-1/${id}.png`, ...visuals },
  });
}

const failed = (code: string, at = Timestamp.now()) => ({
  showcaseProcessingStatus: 'failed',
  showcaseProcessingError: { code, message: 'It failed.', stage: 'removing-background', at },
  showcaseJob: { jobId: `job-${code}`, state: 'failed', owner: null, attempts: 1, credits: 1 },
});

async function statuses(db: Firestore, ids: string[]): Promise<Record<string, string | undefined>> {
  const snaps = await Promise.all(ids.map((id) => db.doc(`characters/${id}`).get()));
  return Object.fromEntries(snaps.map((s) => [s.id, statusOf(s.data())]));
}

describe('showcase-worker enqueue', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack();
    await stack.startWorker();
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('clicks Process, and the worker completes the job', async () => {
    stack.storage.putObject(BUCKET, 'raw-uploads/user-1/e-1.png', await characterPicture());
    await put(stack.db, 'e-1', {});
    const run = await runCliCaptured(['enqueue', 'e-1'], { ...stack.env, ...FAST });
    expect(run).toMatchObject({ code: 0, err: '' });
    expect(run.out).toMatch(/^enqueued\s+e-1\s+was never processed$/);
    const data = await waitForDoc(stack.db, 'characters/e-1', done);
    expect(statusOf(data)).toBe('complete');
  });

  it('reports ids that do not exist or have no image, and exits 1', async () => {
    await stack.db.doc('characters/e-noimg').set({ meta: { userId: 'user-1' }, visuals: {} });
    const run = await runCliCaptured(['enqueue', 'e-missing', 'e-noimg'], stack.env);
    expect(run.code).toBe(1);
    expect(run.out.split('\n')).toEqual([
      expect.stringMatching(/^missing\s+e-missing\s+no such character$/),
      expect.stringMatching(/^no-image\s+e-noimg\s+/),
    ]);
    const noimg = await stack.db.doc('characters/e-noimg').get();
    expect(statusOf(noimg.data())).toBeUndefined();
  });

  it('needs at least one id (usage error, 64)', async () => {
    const run = await runCliCaptured(['enqueue'], stack.env);
    expect(run.code).toBe(64);
    expect(run.err).toContain('give at least one character id');
  });
});

describe('showcase-worker status', () => {
  let stack: Stack;
  const col = 'characters';

  beforeAll(async () => {
    // No worker: the documents stay exactly as written.
    stack = await startStack();
    const future = Timestamp.fromMillis(Date.now() + 3_600_000);
    await Promise.all([
      put(stack.db, 's-new-1', {}),
      put(stack.db, 's-new-2', {}),
      put(stack.db, 's-waiting', { showcaseProcessingStatus: 'removing-background' }),
      put(stack.db, 's-running', {
        showcaseProcessingStatus: 'upscaling',
        showcaseJob: {
          jobId: 'j-run',
          state: 'running',
          owner: 'w-1',
          leaseExpiresAt: future,
          attempts: 2,
        },
      }),
      put(stack.db, 's-done-1', { showcaseProcessingStatus: 'complete' }),
      put(stack.db, 's-done-2', { showcaseProcessingStatus: 'complete' }),
      put(stack.db, 's-done-3', { showcaseProcessingStatus: 'complete' }),
      put(stack.db, 's-fail-1', failed('CLIPDROP_REJECTED')),
      put(stack.db, 's-fail-2', failed('CLIPDROP_REJECTED')),
      put(stack.db, 's-fail-3', failed('SOURCE_NOT_FOUND')),
    ]);
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('prints the count of each status, running and waiting jobs, failures by code', async () => {
    const run = await runCliCaptured(['status'], stack.env);
    expect(run.code).toBe(0);
    const rows: Record<string, [number, string | undefined]> = Object.fromEntries(
      [...run.out.matchAll(/^ {2}(\S.*?)\s+(\d+)(?: {2}(.*))?$/gm)].map((m) => [
        m[1] ?? '',
        [Number(m[2]), m[3]] as [number, string | undefined],
      ]),
    );
    expect(rows).toEqual({
      'not requested': [2, undefined],
      'removing-background': [1, undefined],
      upscaling: [1, undefined],
      finalizing: [0, undefined],
      complete: [3, undefined],
      failed: [3, 'CLIPDROP_REJECTED 2, SOURCE_NOT_FOUND 1'],
    });
    expect(run.out).toContain(`${col}: 10 characters`);
    expect(run.out).toContain('in progress: 1 running, 1 waiting for a worker');
  });

  it('prints the same counts as JSON with --json', async () => {
    const run = await runCliCaptured(['status', '--json'], stack.env);
    expect(JSON.parse(run.out)).toEqual({
      total: 10,
      notRequested: 2,
      byStatus: { 'removing-background': 1, upscaling: 1, finalizing: 0, complete: 3, failed: 3 },
      inProgress: { running: 1, waiting: 1 },
      failedByCode: { CLIPDROP_REJECTED: 2, SOURCE_NOT_FOUND: 1 },
      usersToday: [],
      workers: [],
      budget: {
        budget: 0,
        source: 'env',
        day: expect.stringMatching(/^\d{4}-\d{2}-\d{2}$/) as unknown,
        spent: 0,
        held: {},
        committed: 0,
        paused: false,
      },
      intake: { paused: false, by: '', at: 0, note: '' },
    });
  });

  it("prints one character's job in full", async () => {
    const running = await runCliCaptured(['status', 's-running'], stack.env);
    expect(running.code).toBe(0);
    expect(running.out).toMatch(/^status\s+upscaling$/m);
    expect(running.out).toMatch(/^attempts\s+2$/m);
    expect(running.out).toMatch(/^worker\s+w-1$/m);
    expect(running.out).toMatch(/^lease\s+held until \S+ \(\d+s left\)$/m);
    const fail = await runCliCaptured(['status', 's-fail-3'], stack.env);
    expect(fail.out).toMatch(
      /^error\s+SOURCE_NOT_FOUND at removing-background, \S+: It failed\.$/m,
    );
    expect(fail.out).toMatch(/^credits\s+1$/m);
  });

  it('exits 1 for a character that does not exist', async () => {
    const run = await runCliCaptured(['status', 'nobody'], stack.env);
    expect(run.code).toBe(1);
    expect(run.err).toContain('no character "nobody"');
  });
});

describe('showcase-worker retry-failed', () => {
  let stack: Stack;
  const ids = ['r-a1', 'r-a2', 'r-b1', 'r-c-old', 'r-c-new', 'r-ok'];

  beforeAll(async () => {
    stack = await startStack();
    const twoDaysAgo = Timestamp.fromMillis(Date.now() - 2 * 86_400_000);
    await Promise.all([
      put(stack.db, 'r-a1', failed('STORAGE_UNAVAILABLE')),
      put(stack.db, 'r-a2', failed('STORAGE_UNAVAILABLE')),
      put(stack.db, 'r-b1', failed('CLIPDROP_REJECTED')),
      put(stack.db, 'r-c-old', failed('CLIPDROP_RATE_LIMITED', twoDaysAgo)),
      put(stack.db, 'r-c-new', failed('CLIPDROP_RATE_LIMITED')),
      put(stack.db, 'r-ok', { showcaseProcessingStatus: 'complete' }),
    ]);
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('lists the matching failures with --dry-run and writes nothing', async () => {
    const run = await runCliCaptured(
      ['retry-failed', '--code', 'STORAGE_UNAVAILABLE', '--dry-run'],
      { ...stack.env, ...FAST },
    );
    expect(run.code).toBe(0);
    const listed = [...run.out.matchAll(/^would retry\s+(\S+)\s+STORAGE_UNAVAILABLE/gm)].map(
      (m) => m[1],
    );
    expect(listed.sort()).toEqual(['r-a1', 'r-a2']);
    expect(run.out).toContain('2 of 5 failed jobs match (code STORAGE_UNAVAILABLE); dry run');
    expect(Object.values(await statuses(stack.db, ids)).filter((s) => s === 'failed')).toHaveLength(
      5,
    );
  });

  it('re-clicks only the failures with that code', async () => {
    const run = await runCliCaptured(['retry-failed', '--code', 'STORAGE_UNAVAILABLE'], {
      ...stack.env,
      ...FAST,
    });
    expect(run.code).toBe(0);
    expect(run.out).toContain('re-clicked 2');
    expect(await statuses(stack.db, ids)).toEqual({
      'r-a1': 'removing-background',
      'r-a2': 'removing-background',
      'r-b1': 'failed',
      'r-c-old': 'failed',
      'r-c-new': 'failed',
      'r-ok': 'complete',
    });
  });

  it('re-clicks only failures newer than --since', async () => {
    const run = await runCliCaptured(
      ['retry-failed', '--code', 'CLIPDROP_RATE_LIMITED', '--since', '24h'],
      { ...stack.env, ...FAST },
    );
    expect(run.code).toBe(0);
    expect(await statuses(stack.db, ['r-c-old', 'r-c-new', 'r-b1'])).toEqual({
      'r-c-old': 'failed',
      'r-c-new': 'removing-background',
      'r-b1': 'failed',
    });
  });

  it('refuses a malformed --since (usage error, 64)', async () => {
    const run = await runCliCaptured(['retry-failed', '--since', 'yesterday'], stack.env);
    expect(run.code).toBe(64);
    expect(run.err).toContain('--since must be a duration like 30m, 24h, 7d');
  });
});

describe('showcase-worker backfill', () => {
  let stack: Stack;
  const candidates = ['b-1', 'b-2', 'b-3'];

  beforeAll(async () => {
    stack = await startStack();
    const picture = await characterPicture(32, 32);
    for (const id of candidates) {
      stack.storage.putObject(BUCKET, `raw-uploads/user-1/${id}.png`, picture);
      await put(stack.db, id, {});
    }
    await put(stack.db, 'b-done', {
      showcaseProcessingStatus: 'complete',
      isShowcaseProcessed: true,
      showcaseImageUrl: 'https://example.test/x.png',
    });
    await put(stack.db, 'b-failed', failed('SOURCE_NOT_FOUND'));
    await stack.db.doc('characters/b-noimage').set({ meta: { userId: 'user-1' }, visuals: {} });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('lists the characters without a showcase with --dry-run, and writes nothing', async () => {
    const run = await runCliCaptured(['backfill', '--dry-run'], { ...stack.env, ...FAST });
    expect(run.code).toBe(0);
    expect([...run.out.matchAll(/^would enqueue\s+(\S+)\s+gs:\/\//gm)].map((m) => m[1])).toEqual(
      candidates,
    );
    expect(run.out).toContain('3 characters need a showcase; dry run: nothing written');
    expect(Object.values(await statuses(stack.db, candidates))).toEqual([
      undefined,
      undefined,
      undefined,
    ]);
  });

  it('enqueues up to --limit, with one progress line each when not on a terminal', async () => {
    const run = await runCliCaptured(['backfill', '--limit', '2'], { ...stack.env, ...FAST });
    expect(run.code).toBe(0);
    expect(run.out).toContain('3 characters need a showcase; taking the first 2');
    expect(run.out).toContain('clicked 1/2 b-1 enqueued');
    expect(run.out).toContain('clicked 2/2 b-2 enqueued');
    expect(run.out).toContain('enqueued 2');
    expect(await statuses(stack.db, candidates)).toEqual({
      'b-1': 'removing-background',
      'b-2': 'removing-background',
      'b-3': undefined,
    });
  });

  it('enqueues the rest with a progress bar on a terminal, and the worker completes them', async () => {
    await stack.startWorker();
    const run = await runCliCaptured(['backfill'], { ...stack.env, ...FAST }, { isTTY: true });
    expect(run.code).toBe(0);
    // b-1 and b-2 are queued already: only b-3 needs a click now.
    expect(run.out).toContain('1 characters need a showcase');
    expect(run.out).toContain(`\r\x1b[2K[${'#'.repeat(24)}] 1/1 100%  eta 0s  b-3 enqueued\n`);
    for (const id of candidates) {
      expect(statusOf(await waitForDoc(stack.db, `characters/${id}`, done))).toBe('complete');
    }
    expect(await statuses(stack.db, ['b-failed', 'b-noimage'])).toEqual({
      'b-failed': 'failed',
      'b-noimage': undefined,
    });
  });
});

describe('the CLI applies the worker’s source rule (SOURCE_GS_PATHS)', () => {
  let stack: Stack;
  const gs = (path: string) => `gs://${BUCKET}/${path}`;
  // Owned by user-1: the first is theirs, the others another user's upload and the worker's own.
  const sources = {
    's-mine': gs('raw-uploads/user-1/s-mine.png'),
    's-theirs': gs('raw-uploads/user-2/private.png'),
    's-work': gs('showcase-work/c9/key/cutout.png'),
  };

  beforeAll(async () => {
    stack = await startStack();
    for (const [id, imageUrl] of Object.entries(sources)) await put(stack.db, id, { imageUrl });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('enqueue refuses to click a character whose source is not its owner’s, and exits 1', async () => {
    const run = await runCliCaptured(['enqueue', 's-theirs', 's-work'], { ...stack.env, ...FAST });
    expect(run.code).toBe(1);
    expect(run.out.split('\n')).toEqual([
      expect.stringMatching(
        /^forbidden\s+s-theirs\s+source refused \(SOURCE_URL_FORBIDDEN\): .*owner/,
      ),
      expect.stringMatching(
        /^forbidden\s+s-work\s+source refused \(SOURCE_URL_FORBIDDEN\): .*showcase-work/,
      ),
    ]);
    expect(await statuses(stack.db, ['s-theirs', 's-work'])).toEqual({
      's-theirs': undefined,
      's-work': undefined,
    });
  });

  it('backfill lists the refused ones and clicks only the owner’s source, exiting 1', async () => {
    const dry = await runCliCaptured(['backfill', '--dry-run'], { ...stack.env, ...FAST });
    expect(dry.code).toBe(1);
    expect(
      [...dry.out.matchAll(/^refused\s+(\S+)\s+source not allowed/gm)].map((m) => m[1]),
    ).toEqual(['s-theirs', 's-work']);
    expect([...dry.out.matchAll(/^would enqueue\s+(\S+)/gm)].map((m) => m[1])).toEqual(['s-mine']);
    expect(dry.out).toContain('1 characters need a showcase; 2 refused (source not allowed)');

    const run = await runCliCaptured(['backfill'], { ...stack.env, ...FAST });
    expect(run.code).toBe(1);
    expect(await statuses(stack.db, Object.keys(sources))).toEqual({
      's-mine': 'removing-background',
      's-theirs': undefined,
      's-work': undefined,
    });
    // Nothing was read to decide: the rule needs only the document.
    expect(stack.storage.requests).toEqual([]);
  });
});

describe('showcase-worker doctor', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('passes every check on a working setup, and exits 0', async () => {
    const run = await runCliCaptured(['doctor'], stack.env);
    const lines = run.out.split('\n');
    expect(lines.map((l) => l.split(/\s+/).slice(0, 2).join(' '))).toEqual([
      'ok config',
      'ok credentials',
      'ok firestore',
      'ok storage',
      'warn budget',
      'ok clipdrop',
      'doctor: everything',
    ]);
    expect(run.out).toMatch(
      /^warn {2}budget\s+no daily credit budget: .* Fix: set CLIPDROP_DAILY_CREDIT_BUDGET /m,
    );
    expect(run.code).toBe(0);
  });

  it('is content with a daily credit budget', async () => {
    const run = await runCliCaptured(['doctor'], {
      ...stack.env,
      CLIPDROP_DAILY_CREDIT_BUDGET: '500',
    });
    expect(run.out).toMatch(/^ok {4}budget\s+500 credits a day \(env\), 0 committed today$/m);
    expect(run.code).toBe(0);
  });

  it('reports a wrong ClipDrop key and a missing bucket with their fixes, spending nothing', async () => {
    const creditsBefore = stack.clipdrop.stats.creditsUsed;
    const run = await runCliCaptured(['doctor'], {
      ...stack.env,
      CLIPDROP_API_KEY: 'not-the-right-key-42',
      STORAGE_BUCKET: 'no-such-bucket.appspot.com',
    });
    expect(run.code).toBe(1);
    expect(run.out).toMatch(
      /^FAIL {2}storage\s+bucket no-such-bucket\.appspot\.com does not exist\. Fix: set STORAGE_BUCKET to /m,
    );
    expect(run.out).toMatch(
      /^FAIL {2}clipdrop\s+.* refused the API key \(401\)\. Fix: set CLIPDROP_API_KEY /m,
    );
    expect(run.out).toMatch(/^ok {4}firestore/m);
    expect(run.out).toContain('doctor: 2 problems to fix');
    expect(run.out).not.toContain('not-the-right-key-42');
    expect(stack.clipdrop.stats.creditsUsed).toBe(creditsBefore);
  });

  it('warns about a SOURCE_GS_PATHS pattern that names no owner, and still exits 0', async () => {
    const run = await runCliCaptured(['doctor'], {
      ...stack.env,
      SOURCE_GS_PATHS: 'raw-uploads/{userId}/**,stock/**',
      SOURCE_GS_ALLOW_SHARED_PATHS: 'true',
    });
    expect(run.out).toMatch(
      /^warn {2}sources\s+SOURCE_GS_PATHS stock\/\*\* names no owner .*Fix: keep only objects every user may see/m,
    );
    expect(run.code).toBe(0);
  });

  it('reports an invalid configuration line by line and skips what needs it', async () => {
    const run = await runCliCaptured(['doctor'], { ...stack.env, CLIPDROP_API_KEY: undefined });
    expect(run.code).toBe(1);
    expect(run.out).toMatch(/^FAIL {2}config\s+CLIPDROP_API_KEY: required\. Fix: set it where/m);
    expect(run.out).toMatch(/^skip {2}clipdrop\s+needs a valid configuration$/m);
  });
});

describe('the showcase-worker executable', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack?.close();
  });

  const env = () => ({ ...process.env, ...stack.env });

  it('prints the commands with --help (0), and refuses an unknown command (64)', async () => {
    const help = await spawnCli(['--help'], env());
    expect(help.code).toBe(0);
    for (const name of ['enqueue', 'status', 'retry-failed', 'backfill', 'doctor']) {
      expect(help.out).toMatch(new RegExp(`^ {2}${name} `, 'm'));
    }
    const unknown = await runCliCaptured(['frobnicate'], env());
    expect(unknown.code).toBe(64);
    expect(unknown.err).toContain('unknown command "frobnicate"');
  });

  it('answers --help on every command, and 64 on an unknown option', async () => {
    for (const name of ['enqueue', 'status', 'retry-failed', 'backfill', 'doctor']) {
      const run = await runCliCaptured([name, '--help'], {});
      expect(run.code, name).toBe(0);
      expect(run.out, name).toMatch(new RegExp(`^Usage: showcase-worker ${name}`));
      expect(run.out, name).toContain('Exit codes:');
    }
    const bad = await runCliCaptured(['status', '--frobnicate'], env());
    expect(bad.code).toBe(64);
    expect(bad.err).toContain('Run "showcase-worker status --help"');
  });

  it('exits 2 on an invalid configuration, like the worker', async () => {
    const run = await runCliCaptured(['status'], { ...env(), STORAGE_BUCKET: '' });
    expect(run.code).toBe(2);
    expect(run.err).toContain('STORAGE_BUCKET: required');
  });

  it('runs doctor as a process: the verdicts on stdout and a non-zero exit', async () => {
    const run = await spawnCli(['doctor'], {
      ...env(),
      CLIPDROP_API_KEY: 'not-the-right-key-42',
      STORAGE_BUCKET: 'no-such-bucket.appspot.com',
    });
    expect(run.code).toBe(1);
    expect(run.out).toMatch(/^FAIL {2}storage .*does not exist/m);
    expect(run.out).toMatch(/^FAIL {2}clipdrop .*refused the API key/m);
  });
});
