import { randomUUID } from 'node:crypto';
import { cert, deleteApp, initializeApp, type App } from 'firebase-admin/app';
import { getFirestore, type Firestore } from 'firebase-admin/firestore';
import { getStorage } from 'firebase-admin/storage';
import type { Config } from '../config/load.js';

/** firebase-admin's Bucket (from @google-cloud/storage), named without importing that package. */
export type Bucket = ReturnType<ReturnType<typeof getStorage>['bucket']>;

export interface FirebaseHandles {
  app: App;
  db: Firestore;
  bucket: Bucket;
  close(): Promise<void>;
}

/**
 * One firebase-admin app for this worker. Credentials: the service account from config when
 * given, else Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS), else none
 * (emulators need none). The SDKs read emulator hosts from the environment, so the
 * composition root copies config into it before calling this. No configuration ever needs the
 * GCE metadata server, and none reaches it (test/integration/metadata-server.test.ts).
 */
export function openFirebase(config: Config): FirebaseHandles {
  const account = config.firebase.serviceAccount;
  const app = initializeApp(
    {
      projectId: config.firebase.projectId,
      storageBucket: config.firebase.storageBucket,
      ...(account
        ? {
            credential: cert({
              projectId: account.project_id,
              clientEmail: account.client_email,
              privateKey: account.private_key,
            }),
          }
        : {}),
    },
    `showcase-worker-${randomUUID()}`,
  );
  // The SDK wraps every call and listener event in OpenTelemetry spans unless told not to:
  // a no-op tracer here (we export no traces), yet about 3 % of the worker's CPU. An operator
  // who exports traces sets FIRESTORE_ENABLE_TRACING=on.
  process.env.FIRESTORE_ENABLE_TRACING ??= 'off';
  const db = getFirestore(app);
  if (config.firebase.firestoreEmulatorHost) {
    db.settings({
      host: config.firebase.firestoreEmulatorHost,
      ssl: false,
      // google-gax checks the credentials' universe before every channel. Without a key that
      // means Application Default Credentials, whose last resort is the GCE metadata server
      // (DNS look-up, HTTP to 169.254.169.254, a MetadataLookupWarning). The emulator needs no
      // credentials, so name the universe and nothing is ever asked. With a key the SDK gets
      // the key (below) and asks nothing either.
      ...(account ? {} : { universeDomain: 'googleapis.com' }),
    });
  }
  const bucket = getStorage(app).bucket(config.firebase.storageBucket);
  // Retries are decided in one place, the pipeline; the SDK's own would hide calls from the logs
  // (and it turns them off for good after a multipart upload without a precondition anyway).
  bucket.storage.retryOptions.autoRetry = false;
  return {
    app,
    db,
    bucket,
    close: () => deleteApp(app),
  };
}
