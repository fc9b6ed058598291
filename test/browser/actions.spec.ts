/**
 * The console's two bulk-ish actions in real Chromium: per-user limits (the same rule and
 * document as `showcase-worker limit`) and Retry all of an error code (a preview, then a paced
 * run on the server). Each test makes its own users, characters and error codes, so the
 * other specs' failures on the shared stack never count here.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, test, type Page } from '@playwright/test';
import { deleteApp, type App } from 'firebase-admin/app';
import { Timestamp, type Firestore } from 'firebase-admin/firestore';
import {
  CONSOLE,
  openAppClient,
  READ_ONLY,
  seriousViolations,
  signIn,
  TOKEN,
  uniqueId,
  uploadPicture,
  BUCKET,
} from './helpers.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

let app: App;
let db: Firestore;

test.beforeAll(() => ({ app, db } = openAppClient('actions')));
test.afterAll(() => deleteApp(app));

/** An error code of this test's own (codes are upper case): no other test's failure has it. */
const uniqueCode = () =>
  `TEST_${
    randomUUID()
      .replace(/[^a-f]/g, '')
      .slice(0, 8)
      .toUpperCase() || 'X'
  }_FAILED`;

const serious = (page: Page) => seriousViolations(page);

/** `showcase-worker limit <uid> [args]` run as an operator would, against the same stack. */
async function limitCli(...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', 'src/cli.ts', 'limit', ...args],
    { cwd: ROOT, env: process.env, timeout: 60_000 },
  );
  return stdout;
}

/**
 * A character that failed with `code` `agoMs` before now, its picture uploaded (so a retry
 * completes): written as the worker writes a failure.
 */
async function failed(code: string, agoMs: number): Promise<string> {
  const id = uniqueId('all');
  const userId = 'user-all';
  await uploadPicture(app, userId, id);
  await db.doc(`characters/${id}`).set({
    core: { name: `Character ${id}` },
    meta: { userId },
    visuals: {
      imageUrl: `gs://${BUCKET}/raw-uploads/${userId}/${id}.png`,
      showcaseProcessingStatus: 'failed',
      showcaseProcessingError: {
        code,
        stage: 'download',
        message: 'a stand-in failure',
        at: Timestamp.fromMillis(Date.now() - agoMs),
      },
    },
  });
  return id;
}

async function visualsOf(id: string): Promise<{ status: unknown; requestedBy: unknown }> {
  const snap = await db.doc(`characters/${id}`).get();
  return {
    status: snap.get('visuals.showcaseProcessingStatus'),
    requestedBy: snap.get('visuals.showcaseJob.requestedBy'),
  };
}

test('a per-user override set on the page is what `showcase-worker limit` then shows', async ({
  page,
}, testInfo) => {
  const uid = uniqueId('user-limit');
  await signIn(page);
  const limits = page.locator('#user-limits');
  await page.getByLabel('User id').fill(uid);
  await page.getByRole('button', { name: 'Show limits' }).click();
  // The stack's configuration: USER_DAILY_JOB_LIMIT 100, USER_MAX_ACTIVE 0 (defaults).
  await expect(limits.locator('[data-limit="dailyJobs"] dd')).toHaveText('100 (configured)');
  await expect(limits.locator('[data-limit="maxActive"] dd')).toHaveText('no limit (configured)');

  await page.getByLabel('Daily jobs').fill('3');
  await page.getByLabel('Jobs at once').fill('2');
  await page.getByRole('button', { name: 'Set limits' }).click();
  await expect(page.locator('#limits-result')).toHaveText(
    `${uid}: daily jobs default → 3; jobs at once default → 2.`,
  );
  await expect(limits.locator('[data-limit="dailyJobs"] dd')).toHaveText(
    '3 (override; configured: 100)',
  );
  let cli = await limitCli(uid);
  expect(cli).toContain('daily jobs      3 (override)');
  expect(cli).toContain('jobs at once    2 (override)');
  expect(await serious(page)).toEqual([]);
  await page.screenshot({ path: testInfo.outputPath('limits-1280.png'), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: testInfo.outputPath('limits-390.png'), fullPage: true });

  // Back to default for one: the other override stays (the CLI's merge).
  await page.getByLabel('Daily jobs').fill('default');
  await page.getByRole('button', { name: 'Set limits' }).click();
  await expect(page.locator('#limits-result')).toHaveText(`${uid}: daily jobs 3 → default.`);
  cli = await limitCli(uid);
  expect(cli).toContain('daily jobs      100 (configured)');
  expect(cli).toContain('jobs at once    2 (override)');

  // The CLI's rule refuses what it refuses, in the same words, and nothing is written.
  await page.getByLabel('Daily jobs').fill('10001');
  await page.getByRole('button', { name: 'Set limits' }).click();
  await expect(page.locator('#limits-result')).toHaveText(
    'daily jobs must be at most 10000; for more, 0 (no limit)',
  );
  expect((await db.doc(`showcaseUsage/limits-${uid}`).get()).get('dailyJobs')).toBeUndefined();

  // And the other way: what the CLI sets, the page shows.
  await limitCli(uid, '--active', 'default', '--daily', '0');
  await page.getByRole('button', { name: 'Show limits' }).click();
  await expect(limits.locator('[data-limit="dailyJobs"] dd')).toHaveText(
    'no limit (override; configured: 100)',
  );
  await expect(limits.locator('[data-limit="maxActive"] dd')).toHaveText('no limit (configured)');

  // A session's POST without the page's CSRF token is refused.
  const forged = await page.request.post(`${CONSOLE}actions/limit`, {
    form: { user: uid, daily: '1' },
    headers: { origin: new URL(CONSOLE).origin, accept: 'application/json' },
  });
  expect(forged.status()).toBe(403);
  expect((await db.doc(`showcaseUsage/limits-${uid}`).get()).get('dailyJobs')).toBe(0);
});

test('the top users list opens a user’s limits', async ({ page }) => {
  const uid = uniqueId('user-top');
  // A day document with credits: the top users query lists it.
  const day = new Date().toISOString().slice(0, 10);
  await db.doc(`showcaseUsage/day-${day}-${uid}`).set({
    userId: uid,
    day,
    jobs: 7,
    jobIds: {},
    credits: 99_999,
    updatedAt: Timestamp.now(),
  });
  await signIn(page);
  // Top users are read every 2 min, and when a page opens on a list older than 10 s.
  const button = page.getByRole('button', { name: `Limits of ${uid}` });
  await expect(async () => {
    await page.reload();
    await expect(button).toBeVisible({ timeout: 5_000 });
  }).toPass({ timeout: 120_000 });
  await button.click();
  await expect(page.locator('#user-limits [data-limit="user"] dd')).toHaveText(uid);
  await expect(page.locator('#user-limits [data-limit="today"] dd')).toHaveText(
    '7 jobs counted, 99999 credits',
  );
});

test('Retry all of a code: its preview count first, then the jobs re-queued and completed', async ({
  page,
}, testInfo) => {
  const code = uniqueCode();
  const ids = [
    await failed(code, 3 * 60_000),
    await failed(code, 2 * 60_000),
    await failed(code, 60_000),
  ];
  // Outside the panel's 24 hours: not counted, not clicked.
  const old = await failed(code, 25 * 3_600_000);
  await signIn(page);
  const group = page.locator(`#failure-codes li[data-code="${code}"]`);
  await expect(group).toContainText(`${code} 3`);
  await group.getByRole('button', { name: `Retry all ${code}` }).click();
  await expect(page.locator('#retry-code-preview')).toContainText(
    `Retry all: 3 failed jobs of ${code} from the last 24 hours`,
  );
  const confirm = page.getByRole('button', { name: 'Retry 3' });
  await expect(confirm).toBeFocused();
  expect(await serious(page)).toEqual([]);
  await page.screenshot({ path: testInfo.outputPath('retry-all-1280.png'), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: testInfo.outputPath('retry-all-390.png'), fullPage: true });
  // The preview wrote nothing.
  for (const id of ids) expect((await visualsOf(id)).status).toBe('failed');

  await confirm.click();
  await expect(page.locator('#retry-code')).toBeHidden();
  const result = page.locator('#retry-code-result');
  await expect(result).toHaveAttribute('data-done', 'true');
  await expect(result).toHaveText(`Retry all of ${code}: 3 of 3 re-queued.`);
  for (const id of ids) await expect(page.locator(`#finished tr[data-id="${id}"]`)).toBeVisible();
  for (const id of ids) {
    expect(await visualsOf(id)).toEqual({ status: 'complete', requestedBy: 'operator' });
  }
  expect((await visualsOf(old)).status).toBe('failed');
  await expect(group).toHaveCount(0);

  // Nothing left of the code in the window: the next preview says so, with no confirm.
  const bearer = { authorization: `Bearer ${TOKEN}`, accept: 'application/json' };
  const again = await page.request.post(`${CONSOLE}actions/retry-code/preview`, {
    form: { code },
    headers: bearer,
  });
  expect(again.status()).toBe(200);
  expect(await again.json()).toMatchObject({ code, count: 0, more: false });
});

test('read-only: no limit or Retry all controls, and the server refuses those POSTs', async ({
  page,
}) => {
  const code = uniqueCode();
  const id = await failed(code, 60_000);
  const uid = uniqueId('user-ro');
  await db.doc(`showcaseUsage/limits-${uid}`).set({ userId: uid, dailyJobs: 4 });
  await signIn(page, READ_ONLY);
  await expect(page.locator(`#failure-codes li[data-code="${code}"]`)).toBeVisible();
  // A code's chip (a button that only lists its failures) is no action.
  await expect(
    page.locator('#failure-codes button:not(.code-toggle), #retry-code, #retry-code-form'),
  ).toHaveCount(0);
  await expect(page.locator(`#failure-codes .code-toggle[data-code="${code}"]`)).toBeVisible();
  await expect(page.locator('#limits-daily, #limits-active')).toHaveCount(0);
  await expect(page.locator('form[action="/actions/limit"]')).toHaveCount(0);
  await expect(page.getByRole('button', { name: 'Set limits' })).toHaveCount(0);
  // Looking is allowed: the override as the CLI would show it.
  await page.getByLabel('User id').fill(uid);
  await page.getByRole('button', { name: 'Show limits' }).click();
  await expect(page.locator('#user-limits [data-limit="dailyJobs"] dd')).toHaveText(
    '4 (override; configured: 100)',
  );

  const csrf = (await page.locator('body').getAttribute('data-csrf')) ?? '';
  const headers = { origin: new URL(READ_ONLY).origin, accept: 'application/json' };
  const posts = [
    ['actions/limit', { csrf, user: uid, daily: '9' }],
    ['actions/retry-code/preview', { csrf, code }],
    ['actions/retry-code', { csrf, code, max: '1' }],
  ] as const;
  for (const [path, form] of posts) {
    const res = await page.request.post(`${READ_ONLY}${path}`, { form, headers });
    expect(res.status(), path).toBe(403);
    expect(await res.text(), path).toContain('read-only');
  }
  // The bearer token is refused the same.
  const bearer = await page.request.post(`${READ_ONLY}actions/retry-code`, {
    form: { code, max: '1' },
    headers: { authorization: `Bearer ${TOKEN}`, accept: 'application/json' },
  });
  expect(bearer.status()).toBe(403);
  expect((await db.doc(`showcaseUsage/limits-${uid}`).get()).get('dailyJobs')).toBe(4);
  expect((await visualsOf(id)).status).toBe('failed');
});
