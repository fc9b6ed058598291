/**
 * What the workers publish, on the console's pages (docs/console.md): the Fleet's window use
 * and ClipDrop gate, one job's stage times, round trips and credits. The few helpers are
 * shared with the other specs (./helpers.ts).
 */
import { expect, test } from '@playwright/test';
import { deleteApp, type App } from 'firebase-admin/app';
import type { Firestore } from 'firebase-admin/firestore';
import {
  clickCharacter,
  CONSOLE,
  openAppClient,
  signIn,
  TOKEN,
  uniqueId,
  uploadPicture,
  WORKER,
} from './helpers.js';

/** The stand-in's latency per call (test/browser/stack.ts): the paid stages take at least it. */
const CALL_MS = 1_500;
const SHOTS = '.scratch/browser-results';

let app: App;
let db: Firestore;

test.beforeAll(() => ({ app, db } = openAppClient('publish')));
test.afterAll(() => deleteApp(app));

/** A character with a picture of its own (new bytes: no cached result), clicked by the app. */
async function clickNew(id: string, userId: string): Promise<void> {
  await uploadPicture(app, userId, id);
  await clickCharacter(db, id, userId);
}

const seconds = (text: string) => Number(/([\d.]+) s/.exec(text)?.[1] ?? NaN) * 1000;

test("a job's page shows its stage times, round trips and credits; the Fleet the window's use", async ({
  page,
  request,
}) => {
  const id = uniqueId('publish');
  await clickNew(id, 'user-publish');
  await signIn(page);
  await page.goto(`${CONSOLE}jobs/${id}`);
  await expect(page.locator('#record')).toHaveAttribute('data-status', 'complete', {
    timeout: 90_000,
  });

  // Each stage, in order, with how long it took; the paid ones at least a call's latency.
  const rows = page.locator('#stages tr');
  await expect(rows).toHaveCount(3);
  await expect(page.locator('#stages tr[data-stage]')).toHaveCount(3);
  const stages = await Promise.all(
    [0, 1, 2].map(async (i) => {
      const tr = rows.nth(i);
      return {
        stage: await tr.getAttribute('data-stage'),
        started: (await tr.locator('td[data-label="Started"]').textContent()) ?? '',
        took: (await tr.locator('td[data-label="Took"]').textContent()) ?? '',
      };
    }),
  );
  expect(stages.map((s) => s.stage)).toEqual(['removing-background', 'upscaling', 'finalizing']);
  for (const s of stages) expect(s.started).toMatch(/\d\d:\d\d:\d\d/);
  expect(seconds(stages[0]!.took)).toBeGreaterThanOrEqual(CALL_MS);
  expect(seconds(stages[1]!.took)).toBeGreaterThanOrEqual(CALL_MS);
  expect(seconds(stages[2]!.took)).toBeLessThan(seconds(stages[1]!.took));
  // The timeline has the job's own stage starts.
  await expect(page.locator('#timeline')).toContainText('upscaling began');
  // Round trips (a fresh job: 10 Google requests) and credits (one a call).
  const record = page.locator('#record');
  await expect(record).toContainText(/Round trips\s*[4-6] in sequence, 10 in all/);
  await expect(record).toContainText(/Credits\s*2/);
  await page.screenshot({ path: `${SHOTS}/publish-job.png`, fullPage: true });

  // The Fleet: this worker's window holds at least this job's two calls (a minute's window).
  await page.goto(CONSOLE);
  const row = page.locator('#workers tr', { hasText: WORKER });
  const windowCell = row.locator('td[data-label="Window"]');
  await expect(windowCell).toHaveText(/^\d+ \/ \d+$/);
  const [used, share] = (await windowCell.textContent())!.split(' / ').map(Number);
  expect(used).toBeGreaterThanOrEqual(2);
  expect(share).toBeGreaterThan(0);
  await expect(row.locator('td[data-label="ClipDrop"]')).toHaveText('open');
  await expect(page.locator('#key-window')).toContainText(/Key's window: \d+ of 60 requests/);
  await expect(page.locator('#clipdrop-paused')).toBeHidden();
  await page.screenshot({ path: `${SHOTS}/publish-fleet.png`, fullPage: true });

  // The same on the console's /metrics.
  const metrics = await (
    await request.get(`${CONSOLE}metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })
  ).text();
  expect(metrics).toMatch(
    new RegExp(`showcase_fleet_worker_window_used\\{worker="${WORKER}"\\} \\d+`),
  );
  expect(metrics).toContain(
    `showcase_fleet_worker_clipdrop_paused{worker="${WORKER}",reason=""} 0`,
  );
});

test('a paused ClipDrop gate: the line says why and since when, and the worker row too (390 px)', async ({
  page,
  request,
}) => {
  // The stand-in of the shared stack cannot be told to answer 402 from here (the integration
  // test publish.test.ts does that end to end): the page is given the server's own state with
  // the worker's gate paused, as its heartbeat would say it.
  const res = await request.get(`${CONSOLE}api/state`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  expect(res.status()).toBe(200);
  const state = (await res.json()) as {
    serverNow: number;
    fleet: { workers: Array<{ id: string; gate: unknown; windowUsed: number | null }> };
  };
  const since = new Date(2026, 0, 1, 9, 41).getTime();
  const worker = state.fleet.workers.find((w) => w.id === WORKER);
  expect(worker).toBeDefined();
  worker!.gate = { reason: 'no-credits', since };
  worker!.windowUsed = 7;
  await signIn(page);
  await page.setViewportSize({ width: 390, height: 844 });
  await page.route('**/events', (route) =>
    route.fulfill({
      status: 200,
      headers: { 'content-type': 'text/event-stream' },
      body: `event: state\ndata: ${JSON.stringify(state)}\n\n`,
    }),
  );
  await page.goto(CONSOLE);
  const line = page.locator('#clipdrop-paused');
  await expect(line).toBeVisible();
  await expect(line).toContainText('ClipDrop paused: payment required (402) since 09:41');
  const row = page.locator('#workers tr', { hasText: WORKER });
  await expect(row.locator('td[data-label="ClipDrop"]')).toContainText('paused: payment required');
  await expect(row.locator('td[data-label="Window"]')).toContainText('7 /');
  await expect(page.locator('#key-window')).toContainText("Key's window: 7 of 60");
  const overflow = Number(
    await page.evaluate(
      'document.documentElement.scrollWidth - document.documentElement.clientWidth',
    ),
  );
  expect(overflow).toBeLessThanOrEqual(0);
  await line.scrollIntoViewIfNeeded();
  await page.screenshot({ path: `${SHOTS}/publish-paused-390.png` });
});
