/**
 * `npm run screenshot`: the README's picture of the console (docs/console.png). Starts the
 * local stack with a worker and the console, seeds the samples (dev/seed.ts), signs in with
 * Playwright driving Debian's Chromium (/usr/bin/chromium, or CHROMIUM_PATH: the registry
 * cannot download Playwright's own builds) and photographs the page at 1280 px wide.
 */
import { resolve } from 'node:path';
import { chromium } from '@playwright/test';
import { startDevFleet } from './dev-fleet.js';

const OUT = resolve(process.argv[2] ?? 'docs/console.png');
const say = (line: string) => process.stdout.write(`[screenshot] ${line}\n`);

say('starting the local stack, a worker and the console');
const fleet = await startDevFleet();
let code = 0;
try {
  await fleet.seed(say);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${fleet.consoleUrl}login`);
    await page.getByLabel('Console token').fill(fleet.token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    // Everything the seed made, on the page: the live worker, the jobs, the failures, counts.
    await page.locator('#connection').filter({ hasText: 'Live' }).waitFor();
    await page.locator('#workers').getByText('dev-worker').waitFor();
    await page.locator('#active tr[data-id="sample-upscaling"]').waitFor();
    await page.locator('#finished tr[data-id="sample-complete"]').waitFor();
    await page.locator('#failure-codes li[data-code="INVALID_DOCUMENT"]').waitFor();
    await page.locator('#counts dd').first().waitFor();
    await page.screenshot({ path: OUT, fullPage: true });
    say(`wrote ${OUT}`);
  } finally {
    await browser.close();
  }
} catch (err) {
  code = 1;
  say(`FAILED: ${err instanceof Error ? err.message : String(err)}`);
} finally {
  await fleet.stop();
}
process.exit(code);
