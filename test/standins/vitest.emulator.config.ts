import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/standins/firestore-emulator.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
