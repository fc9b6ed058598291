/**
 * vitest globalSetup: makes a Firestore emulator available to every test as
 * `inject('firestoreEmulatorHost')` ('127.0.0.1:PORT').
 *
 * - FIRESTORE_EMULATOR_HOST set: use that emulator (not started, not stopped here).
 * - Otherwise: start the real emulator (dev/firestore-emulator.ts) and stop it
 *   in teardown.
 *
 * Tests should isolate themselves with a unique projectId per test/suite
 * (or clearFirestore(host, projectId)).
 */
import type { TestProject } from 'vitest/node';

import {
  EmulatorNotFoundError,
  startFirestoreEmulator,
  type FirestoreEmulator,
} from '../../dev/firestore-emulator.js';

declare module 'vitest' {
  export interface ProvidedContext {
    firestoreEmulatorHost: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const fromEnv = process.env.FIRESTORE_EMULATOR_HOST;
  if (fromEnv) {
    project.provide('firestoreEmulatorHost', fromEnv);
    return async () => {};
  }

  let emulator: FirestoreEmulator;
  const started = Date.now();
  try {
    emulator = await startFirestoreEmulator({ timeoutMs: 90_000 });
  } catch (err) {
    if (err instanceof EmulatorNotFoundError) {
      // Keep the actionable message on top of vitest's output.
      throw new EmulatorNotFoundError(
        `${err.message}\n\n(needed by test/support/global-setup.ts; ` +
          'alternatively set FIRESTORE_EMULATOR_HOST to a running emulator)',
      );
    }
    throw err;
  }
  if (process.env.DEBUG_FIRESTORE_EMULATOR) {
    console.log(
      `[global-setup] Firestore emulator on ${emulator.host} in ${Date.now() - started} ms`,
    );
  }
  project.provide('firestoreEmulatorHost', emulator.host);
  return () => emulator.stop();
}
