import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect, test } from '@playwright/test';
import { deleteApp, type App } from 'firebase-admin/app';
import type { Firestore } from 'firebase-admin/firestore';
import { getStorage } from 'firebase-admin/storage';
import {
  BUCKET,
  clickCharacter,
  CONSOLE,
  env,
  openAppClient,
  READ_ONLY,
  seriousViolations,
  signIn,
  TOKEN,
  uniqueId,
  uploadPicture,
  WORKER,
} from './helpers.js';

let app: App;
let db: Firestore;

test.beforeAll(() => ({ app, db } = openAppClient('browser')));
test.afterAll(() => deleteApp(app));

const upload = (userId: string, id: string) => uploadPicture(app, userId, id);
const click = (id: string, userId: string) => clickCharacter(db, id, userId);

async function statusOf(id: string): Promise<unknown> {
  return (await db.doc(`characters/${id}`).get()).get('visuals.showcaseProcessingStatus');
}

/** A job that fails with SOURCE_NOT_FOUND: its picture is not uploaded. */
async function failedJob(): Promise<string> {
  const id = uniqueId('fail');
  await click(id, 'user-f');
  await expect.poll(() => statusOf(id), { timeout: 60_000 }).toBe('failed');
  return id;
}

test('without the token: 401 and no data, for the page, an action and /metrics', async ({
  request,
}) => {
  const secret = uniqueId('secret');
  await upload('user-s', secret);
  await click(secret, 'user-s');
  const tries = [
    request.get(`${CONSOLE}`, { headers: { accept: 'text/html' } }),
    request.get(`${CONSOLE}api/state`),
    request.get(`${CONSOLE}events`),
    request.get(`${CONSOLE}metrics`),
    request.get(`${CONSOLE}metrics`, { headers: { authorization: 'Bearer not-the-token' } }),
    request.get(`${CONSOLE}jobs/${secret}`),
    request.get(`${CONSOLE}jobs/${secret}/source`),
    request.post(`${CONSOLE}actions/retry`, { form: { id: secret } }),
  ];
  for (const res of await Promise.all(tries)) {
    expect(res.status(), res.url()).toBe(401);
    const body = await res.text();
    expect(body).not.toContain(WORKER);
    expect(body).not.toContain(secret);
    expect(body).not.toContain('showcase_fleet');
  }
  // With the token as a bearer header, a script gets the fleet's metrics.
  const metrics = await request.get(`${CONSOLE}metrics`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  expect(metrics.status()).toBe(200);
  expect(await metrics.text()).toContain(`showcase_fleet_worker_running_jobs{worker="${WORKER}"}`);
});

test('signed in, the fleet shows the live worker', async ({ page }) => {
  await signIn(page);
  await expect(page.locator('#workers')).toContainText(WORKER);
  await expect(page.locator('#fleet-summary')).toContainText('1 live worker');
});

test('a click appears and walks its statuses without a reload; its timeline and pictures open', async ({
  page,
}) => {
  await signIn(page);
  // A reload would lose this mark.
  await page.evaluate('window.mark = 1');
  const tile = page.locator('#counts [data-status="complete"] dd');
  await expect(tile).toHaveText(/^\d+$/);
  const completeBefore = Number(await tile.textContent());
  const id = uniqueId('walk');
  const user = uniqueId('user-w');
  await upload(user, id);
  await click(id, user);
  // Each ClipDrop call takes 1.5 s in this stack (stack.ts): every stage is seen.
  await expect(page.locator(`#active tr[data-id="${id}"]`)).toBeVisible();
  await expect(page.locator(`#user-queues tr[data-user="${user}"]`)).toBeVisible();
  await expect(page.locator(`#active tr[data-id="${id}"][data-status="upscaling"]`)).toBeVisible();
  await expect(page.locator(`#finished tr[data-id="${id}"]`)).toBeVisible();
  await expect(page.locator(`#active tr[data-id="${id}"]`)).toHaveCount(0);
  await expect(page.locator(`#user-queues tr[data-user="${user}"]`)).toHaveCount(0);
  // The Queue's tile and this hour's bar count it (recounted on the list's change).
  await expect.poll(async () => Number(await tile.textContent())).toBeGreaterThan(completeBefore);
  const thisHour = page.locator('#hourly tr:last-child td[data-label="Completed"]');
  await expect.poll(async () => Number(await thisHour.textContent())).toBeGreaterThan(0);
  expect(await page.evaluate('window.mark')).toBe(1);

  // Its own page, following a second click (a new picture: no cached result) stage by stage.
  await page.locator(`#finished tr[data-id="${id}"] a`).click();
  await expect(page.locator('#record')).toHaveAttribute('data-status', 'complete');
  await upload(user, id);
  await db
    .doc(`characters/${id}`)
    .update({ 'visuals.showcaseProcessingStatus': 'removing-background' });
  await expect(page.locator('#record')).toHaveAttribute('data-status', 'upscaling');
  await expect(page.locator('#record')).toHaveAttribute('data-status', 'complete');
  await expect(page.locator('#timeline')).toContainText('upscaling (seen here)');
  await expect(page.locator('#timeline')).toContainText('finished: complete');
  for (const picture of ['#source-picture', '#result-picture']) {
    await expect(page.locator(picture)).toBeVisible();
    await expect
      .poll(() =>
        page.locator(picture).evaluate((img) => (img as { naturalWidth: number }).naturalWidth),
      )
      .toBeGreaterThan(0);
  }
  // The pictures come from the console itself: the source is 96 px wide, the result upscaled.
  const sizes = await Promise.all(
    ['#source-picture', '#result-picture'].map((i) =>
      page.locator(i).evaluate((img) => {
        const { src, naturalWidth } = img as unknown as { src: string; naturalWidth: number };
        return { src: new URL(src).origin, width: naturalWidth };
      }),
    ),
  );
  expect(sizes).toEqual([
    { src: new URL(CONSOLE).origin, width: 96 },
    { src: new URL(CONSOLE).origin, width: 192 },
  ]);
});

test('a job failed by a stand-in fault appears under its code, and Retry makes it complete', async ({
  page,
}) => {
  await signIn(page);
  // ClipDrop's stand-in answers the next remove-background call 400: CLIPDROP_REJECTED.
  const injected = await fetch(`${env('STANDIN_CONTROL_URL')}clipdrop/faults`, {
    method: 'POST',
    body: JSON.stringify([{ kind: 'status', status: 400, endpoint: 'removeBackground' }]),
  });
  expect(injected.status).toBe(204);
  const id = uniqueId('rejected');
  await upload('user-f', id);
  await click(id, 'user-f');
  await expect.poll(() => statusOf(id), { timeout: 60_000 }).toBe('failed');
  await expect(page.locator('#failure-codes li[data-code="CLIPDROP_REJECTED"]')).toBeVisible();
  const row = page.locator(`#failed tr[data-id="${id}"]`);
  await expect(row).toContainText('CLIPDROP_REJECTED');
  await row.getByRole('button', { name: `Retry ${id}` }).click();
  await expect(page.locator('#action-result')).toContainText(
    `${id}: retried (was CLIPDROP_REJECTED)`,
  );
  await expect(page.locator(`#finished tr[data-id="${id}"]`)).toBeVisible();
  expect(await statusOf(id)).toBe('complete');
  // Counted as the operator's click (not against the owner's limits).
  const job = (await db.doc(`characters/${id}`).get()).get('visuals.showcaseJob') as {
    requestedBy?: string;
  };
  expect(job.requestedBy).toBe('operator');
});

test("a code's chip lists that code's failures only, and again all of them", async ({ page }) => {
  await signIn(page);
  const notFound = await failedJob();
  // Bytes that are no picture: SOURCE_NOT_IMAGE.
  const notImage = uniqueId('not-image');
  await getStorage(app)
    .bucket(BUCKET)
    .file(`raw-uploads/user-f/${notImage}.png`)
    .save(Buffer.from('not a picture at all'), { resumable: false, contentType: 'image/png' });
  await click(notImage, 'user-f');
  await expect.poll(() => statusOf(notImage), { timeout: 60_000 }).toBe('failed');
  const rowOf = (id: string) => page.locator(`#failed tr[data-id="${id}"]`);
  await expect(rowOf(notImage)).toContainText('SOURCE_NOT_IMAGE');
  await expect(rowOf(notFound)).toBeVisible();

  const chip = page
    .locator('#failure-codes')
    .getByRole('button', { name: 'SOURCE_NOT_IMAGE', exact: true });
  await chip.click();
  await expect(chip).toHaveAttribute('aria-pressed', 'true');
  await expect(rowOf(notFound)).toHaveCount(0);
  await expect(rowOf(notImage)).toBeVisible();
  await expect(
    page.locator('#failed tr[data-code]:not([data-code="SOURCE_NOT_IMAGE"])'),
  ).toHaveCount(0);
  await expect(page.locator('#failures-summary')).toContainText('SOURCE_NOT_IMAGE only');

  await chip.click();
  await expect(chip).toHaveAttribute('aria-pressed', 'false');
  await expect(rowOf(notFound)).toBeVisible();
});

/** The worker's heartbeat: what it holds and runs, and whether it claims. */
async function beat(): Promise<{ demand: number; running: number; by: unknown; at: number }> {
  const d = (await db.doc(`showcaseWorkers/${WORKER}`).get()).data() ?? {};
  return {
    demand: typeof d.demand === 'number' ? d.demand : 0,
    running: typeof d.running === 'number' ? d.running : 0,
    by: d.intakePausedBy,
    at: (d.beatAt as { toMillis(): number } | undefined)?.toMillis() ?? 0,
  };
}

test('Pause: a new click stays unclaimed while paused; Resume lets it complete', async ({
  page,
}, testInfo) => {
  await signIn(page);
  try {
    await page.getByRole('button', { name: 'Pause intake' }).click();
    await expect(page.locator('#control-result')).toHaveText('Intake paused.');
    await expect(page.locator('#intake-state')).toHaveAttribute('data-paused', 'true');
    await expect(page.locator('#intake-state')).toContainText('Intake paused by console (session)');
    await expect(page.getByRole('button', { name: 'Pause intake' })).toBeHidden();
    // The worker obeys, and says so in its heartbeat: the Fleet panel shows it.
    await expect(page.locator('#workers')).toContainText('paused (operator)');
    await expect(page.locator('#fleet-summary')).toContainText('Intake paused by the operator');

    const id = uniqueId('paused');
    await upload('user-p', id);
    await click(id, 'user-p');
    await expect(page.locator(`#active tr[data-id="${id}"]`)).toContainText('waiting');
    // The worker holds the click before its claim: two beats on, still no job record.
    const held = (b: Awaited<ReturnType<typeof beat>>) =>
      b.by === 'operator' && b.demand >= 1 && b.running === 0;
    await expect.poll(async () => held(await beat())).toBe(true);
    const first = (await beat()).at;
    await expect.poll(async () => (await beat()).at > first && held(await beat())).toBe(true);
    const second = (await beat()).at;
    await expect.poll(async () => (await beat()).at > second && held(await beat())).toBe(true);
    const job = (await db.doc(`characters/${id}`).get()).get('visuals.showcaseJob') as unknown;
    expect(job).toBeUndefined();
    expect(await statusOf(id)).toBe('removing-background');
    await expect(page.locator(`#active tr[data-id="${id}"]`)).toContainText('waiting');
    await page.screenshot({ path: testInfo.outputPath('paused-1280.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: testInfo.outputPath('paused-390.png'), fullPage: true });

    await page.getByRole('button', { name: 'Resume intake' }).click();
    await expect(page.locator('#control-result')).toHaveText('Intake resumed.');
    await expect(page.locator('#intake-state')).toHaveAttribute('data-paused', 'false');
    await expect(page.locator(`#finished tr[data-id="${id}"]`)).toBeVisible();
    await expect(page.locator('#workers')).not.toContainText('paused (operator)');
  } finally {
    // Never leave the shared worker paused for the other tests.
    await db.doc('showcaseFleet/intake').set({ paused: false, by: 'test', note: '' });
  }
});

test('Spend shows today’s credits, the balance and the top users', async ({ page }) => {
  const id = uniqueId('spend');
  await upload('user-spend', id);
  await click(id, 'user-spend');
  await expect.poll(() => statusOf(id), { timeout: 60_000 }).toBe('complete');
  await signIn(page);
  await expect(page.locator('#spend-figures [data-figure="Budget"] dd')).toHaveText('none');
  await expect(page.locator('#spend-summary')).toContainText('No daily credit budget');
  // The stand-in's balance, as the worker's heartbeat reports it.
  await expect(page.locator('#spend-figures [data-figure="ClipDrop balance"] dd')).toHaveText(
    /^\d+$/,
  );
  // Two paid calls, one credit each (the stand-in's x-credits-consumed).
  await expect(
    page.locator('#top-users tr[data-user="user-spend"] td[data-label="Credits"]'),
  ).toHaveText('2');
  // The day's totals over every user: what the usage documents add up to.
  const day = new Date().toISOString().slice(0, 10);
  const usage = await db.collection('showcaseUsage').where('day', '==', day).get();
  const total = (field: string) =>
    usage.docs.reduce(
      (n, d) => n + (typeof d.get(field) === 'number' ? Number(d.get(field)) : 0),
      0,
    );
  expect(total('credits')).toBeGreaterThanOrEqual(2);
  await expect(page.locator('#spend-figures [data-figure="Credits today"] dd')).toHaveText(
    String(total('credits')),
  );
  await expect(page.locator('#spend-figures [data-figure="Jobs today"] dd')).toHaveText(
    String(total('jobs')),
  );
  await expect(page.locator('#spend-figures [data-figure="Requests today"] dd')).toHaveText(
    String(total('requests')),
  );
});

test('read-only: no action controls, and the server refuses an action', async ({ page }) => {
  const id = await failedJob();
  await signIn(page, READ_ONLY);
  await expect(page.locator(`#failed tr[data-id="${id}"]`)).toBeVisible();
  await expect(page.locator('#failed button, #failed form')).toHaveCount(0);
  await expect(page.locator('.badge')).toHaveText('Read-only');
  // The intake's state, with no Pause or Resume.
  await expect(page.locator('#intake-state')).toContainText('Intake open');
  await expect(page.locator('#control button, #control form')).toHaveCount(0);
  const csrf = await page.locator('body').getAttribute('data-csrf');
  const pause = await page.request.post(`${READ_ONLY}actions/pause`, {
    form: { csrf: csrf ?? '' },
    headers: { origin: new URL(READ_ONLY).origin, accept: 'application/json' },
  });
  expect(pause.status()).toBe(403);
  expect(await pause.text()).toContain('read-only');
  expect((await db.doc('showcaseFleet/intake').get()).get('paused')).not.toBe(true);
  const res = await page.request.post(`${READ_ONLY}actions/retry`, {
    form: { id, csrf: csrf ?? '' },
    headers: { origin: new URL(READ_ONLY).origin, accept: 'application/json' },
  });
  expect(res.status()).toBe(403);
  expect(await res.text()).toContain('read-only');
  expect(await statusOf(id)).toBe('failed');
});

test('a cross-site form POST to an action is refused', async ({ page }) => {
  const id = await failedJob();
  await signIn(page);
  // Another origin on the same host (so the SameSite cookie is sent: the CSRF checks must hold).
  const evil: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<!doctype html><form method="post" action="${CONSOLE}actions/retry">
      <input name="id" value="${id}"><input name="csrf" value="guessed"></form>
      <script>document.forms[0].submit()</script>`);
  });
  await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
  try {
    const answer = page.waitForResponse((r) => r.url().endsWith('/actions/retry'));
    await page.goto(`http://127.0.0.1:${(evil.address() as AddressInfo).port}/`);
    expect((await answer).status()).toBe(403);
  } finally {
    evil.close();
  }
  expect(await statusOf(id)).toBe('failed');
});

test('no serious accessibility violations; usable at 390 px without sideways scrolling', async ({
  page,
}, testInfo) => {
  await failedJob();
  await signIn(page);
  await expect(page.locator('#failed tr[data-id]').first()).toBeVisible();
  await expect(page.locator('#workers')).toContainText(WORKER);
  const serious = () => seriousViolations(page);
  expect(await serious()).toEqual([]);
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.screenshot({ path: testInfo.outputPath('console-1280.png'), fullPage: true });

  await page.setViewportSize({ width: 390, height: 844 });
  // What sticks out, if anything: named in the failure.
  // What sticks out, if anything, is named in the failure (run in the page: DOM code as text,
  // the project's types have no DOM).
  const overflow = () =>
    page.evaluate(`(() => {
      const over = document.documentElement.scrollWidth - window.innerWidth;
      if (over <= 0) return over;
      const wide = [...document.querySelectorAll('body *')]
        .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
        .slice(0, 5)
        .map((e) => e.tagName.toLowerCase() + '#' + e.id + '.' + e.className);
      return over + ' px too wide: ' + wide.join(', ');
    })()`);
  expect(await overflow()).toBeLessThanOrEqual(0);
  for (const panel of ['Fleet', 'Control', 'Queue', 'Failures', 'Spend', 'Recent']) {
    await page
      .getByRole('navigation', { name: 'Panels' })
      .getByRole('link', { name: panel })
      .click();
    await expect(page.locator(`#${panel.toLowerCase()} h2`)).toBeInViewport();
  }
  expect(await serious()).toEqual([]);
  await page.screenshot({ path: testInfo.outputPath('console-390.png'), fullPage: true });

  // One job's page, too.
  await page.locator('#failed tr[data-id] a').first().click();
  await expect(page.locator('#record')).toHaveAttribute('data-status', 'failed');
  expect(await overflow()).toBeLessThanOrEqual(0);
  expect(await serious()).toEqual([]);
  await page.screenshot({ path: testInfo.outputPath('job-390.png'), fullPage: true });
});
