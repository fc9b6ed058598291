import { randomUUID } from 'node:crypto';
import type { DocumentReference } from 'firebase-admin/firestore';
import { answerLost } from '../../src/adapters/firestore/lost-answer.js';

const TRIES = 3;

/**
 * A click as the app writes it, surviving the emulator's lost answers: a commit answered
 * `UNKNOWN` or `CANCELLED` may have landed (src/adapters/firestore/lost-answer.ts). Retrying
 * blindly could click twice (the worker may have claimed the first one meanwhile), so each try
 * carries a fresh `visuals.clickId` and a read says whether it landed.
 */
export async function clickSurely(
  ref: DocumentReference,
  write: (clickId: string) => Promise<unknown>,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const clickId = randomUUID();
    try {
      await write(clickId);
      return;
    } catch (err) {
      if (!answerLost((err as { code?: unknown }).code) || attempt >= TRIES) throw err;
      const snap = await ref.get();
      if (snap.get('visuals.clickId') === clickId) return;
    }
  }
}
