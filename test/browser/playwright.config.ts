import { defineConfig } from '@playwright/test';

/**
 * Browser tests of the operator console in real Chromium: Debian's `chromium` package (the
 * registry cannot download Playwright's own builds; .ci/run installs the package), driven by
 * Playwright's test runner. `npm run test:browser`.
 */
export default defineConfig({
  testDir: '.',
  testMatch: '*.spec.ts',
  globalSetup: './global-setup.ts',
  // One stack (emulator, stand-ins, a worker, two consoles) shared by every test; each test
  // uses its own characters. Generous deadlines: a loaded 2-core machine.
  workers: 1,
  timeout: 180_000,
  expect: { timeout: 60_000 },
  reporter: [['list']],
  outputDir: '../../.scratch/browser-results',
  use: {
    browserName: 'chromium',
    headless: true,
    launchOptions: { executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium' },
    trace: 'off',
  },
});
