/**
 * What every browser spec needs of the shared stack (test/browser/stack.ts, started once by
 * global-setup.ts): its addresses, a client of its emulator and bucket as the app has, signing
 * in, and the app's upload and click. Each spec still makes its own ids.
 */
import { randomUUID } from 'node:crypto';
import AxeBuilder from '@axe-core/playwright';
import { expect, type Page } from '@playwright/test';
import { initializeApp, type App } from 'firebase-admin/app';
import { getFirestore, type Firestore } from 'firebase-admin/firestore';
import { getStorage } from 'firebase-admin/storage';
import { characterPicture } from '../support/images.js';

export const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (test/browser/global-setup.ts sets it)`);
  return value;
};

export const CONSOLE = env('CONSOLE_URL');
export const READ_ONLY = env('CONSOLE_READ_ONLY_URL');
export const TOKEN = env('CONSOLE_TOKEN');
export const BUCKET = env('STORAGE_BUCKET');
/** The stack's one worker (stack.ts). */
export const WORKER = 'browser-test-worker';

export const uniqueId = (what: string) => `${what}-${randomUUID().slice(0, 8)}`;

/** A client of the stack's project, as the app has one (the caller deletes its app). */
export function openAppClient(name: string): { app: App; db: Firestore } {
  const app = initializeApp({ projectId: env('GOOGLE_CLOUD_PROJECT') }, `${name}-${randomUUID()}`);
  const db = getFirestore(app);
  db.settings({
    host: env('FIRESTORE_EMULATOR_HOST'),
    ssl: false,
    universeDomain: 'googleapis.com',
  });
  return { app, db };
}

export async function signIn(page: Page, base = CONSOLE): Promise<void> {
  await page.goto(`${base}login`);
  await page.getByLabel('Console token').fill(TOKEN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.locator('#connection')).toHaveText(/Live/);
}

/** Uploads a picture of its own (new bytes: the worker's result cache never answers it). */
export async function uploadPicture(app: App, userId: string, id: string): Promise<void> {
  const picture = await characterPicture(96, 72, 'png', Math.floor(Math.random() * 1_000_000));
  await getStorage(app)
    .bucket(BUCKET)
    .file(`raw-uploads/${userId}/${id}.png`)
    .save(picture, { resumable: false, contentType: 'image/png' });
}

/** The app's character and click: its picture is `raw-uploads/{userId}/{id}.png`. */
export async function clickCharacter(db: Firestore, id: string, userId: string): Promise<void> {
  await db.doc(`characters/${id}`).set({
    core: { name: `Character ${id}` },
    meta: { userId },
    visuals: {
      imageUrl: `gs://${BUCKET}/raw-uploads/${userId}/${id}.png`,
      showcaseProcessingStatus: 'removing-background',
    },
  });
}

/** Serious or critical accessibility violations on the page as it is now (axe). */
export async function seriousViolations(page: Page): Promise<string[]> {
  return (await new AxeBuilder({ page }).analyze()).violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}
