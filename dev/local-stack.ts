import {
  startClipdropStandin,
  type ClipdropStandin,
  type ClipdropStandinOptions,
} from './clipdrop-standin.js';
import { EmulatorNotFoundError, startFirestoreEmulator } from './firestore-emulator.js';
import { startStorageStandin, type StorageStandin } from './storage-standin.js';

export const LOCAL_PROJECT = 'demo-charaforge';
export const LOCAL_BUCKET = 'demo-charaforge.appspot.com';
export const LOCAL_API_KEY = 'local-clipdrop-key';

export interface LocalStack {
  firestoreHost: string;
  clipdrop: ClipdropStandin;
  storage: StorageStandin;
  /** The environment a worker needs to run against this stack. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * Everything the worker talks to, on this machine: the real Firestore emulator (or the one
 * FIRESTORE_EMULATOR_HOST names) and the ClipDrop and Cloud Storage stand-ins.
 */
export async function startLocalStack(
  opts: { clipdrop?: ClipdropStandinOptions } = {},
): Promise<LocalStack> {
  let firestoreHost = process.env.FIRESTORE_EMULATOR_HOST ?? '';
  let stopEmulator = async () => {};
  if (!firestoreHost) {
    try {
      const emulator = await startFirestoreEmulator();
      firestoreHost = emulator.host;
      stopEmulator = () => emulator.stop();
    } catch (err) {
      if (err instanceof EmulatorNotFoundError) {
        process.stderr.write(`\n${err.message}\n\n`);
        process.exit(3);
      }
      throw err;
    }
  }
  const clipdrop = await startClipdropStandin({ apiKey: LOCAL_API_KEY, ...opts.clipdrop });
  const storage = await startStorageStandin({ buckets: [LOCAL_BUCKET] });
  const env = {
    GOOGLE_CLOUD_PROJECT: LOCAL_PROJECT,
    STORAGE_BUCKET: LOCAL_BUCKET,
    FIRESTORE_EMULATOR_HOST: firestoreHost,
    FIREBASE_STORAGE_EMULATOR_HOST: storage.host,
    CLIPDROP_API_KEY: LOCAL_API_KEY,
    CLIPDROP_API_URL: clipdrop.url,
  };
  return {
    firestoreHost,
    clipdrop,
    storage,
    env,
    async stop() {
      await Promise.all([clipdrop.close(), storage.close()]);
      await stopEmulator();
    },
  };
}
