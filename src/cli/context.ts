import type { CollectionReference, DocumentData, Firestore } from 'firebase-admin/firestore';
import { openFirebase, type FirebaseHandles } from '../adapters/firebase-app.js';
import type { SourcePolicy } from '../adapters/http/url-policy.js';
import { sourcePolicyOf } from '../adapters/source-fetcher.js';
import { loadConfig, type Config } from '../config/load.js';
import type { CliIo } from './io.js';

export interface Session {
  config: Config;
  firebase: FirebaseHandles;
  db: Firestore;
  characters: CollectionReference<DocumentData>;
  /** The worker's source policy: a click it would refuse is not made. */
  sources: SourcePolicy;
  close(): Promise<void>;
}

/** Loads the configuration the worker would use (throws ConfigError). */
export function configOf(io: CliIo): Config {
  return loadConfig({ env: io.env, ...(io.configDir ? { configDir: io.configDir } : {}) });
}

/** Opens Firebase with the worker's configuration, as the worker does. */
export function openSession(io: CliIo, config: Config = configOf(io)): Session {
  // The Storage SDK reads the emulator host from the environment (see main.ts).
  if (config.firebase.storageEmulatorHost) {
    process.env.FIREBASE_STORAGE_EMULATOR_HOST = config.firebase.storageEmulatorHost;
  }
  const firebase = openFirebase(config);
  return {
    config,
    firebase,
    db: firebase.db,
    characters: firebase.db.collection(config.firebase.collection),
    sources: sourcePolicyOf(config),
    close: () => firebase.close(),
  };
}
