import { randomUUID } from 'node:crypto';
import type { DocumentReference } from 'firebase-admin/firestore';
import { answerLost } from '../../src/adapters/firestore/lost-answer.js';

const TRIES = 3;

/**
 * A click as the app writes it, surviving the emulator's lost answers: a commit answered
 * `UNKNOWN` or `CANCELLED` may have landed (src/adapters/firestore/lost-answer.ts). Retrying
 * blindly could click twice (the worker may have claimed the first one meanwhile), so each try
 * carries a fresh `visuals.clickId` and a read says whether it landed. Resolves with the
 * write's answer, or undefined when it landed unanswered.
 */
export async function clickSurely<T>(
  ref: DocumentReference,
  write: (clickId: string) => Promise<T>,
): Promise<T | undefined> {
  for (let attempt = 1; ; attempt++) {
    const clickId = randomUUID();
    try {
      return await write(clickId);
    } catch (err) {
      if (!answerLost((err as { code?: unknown }).code)) throw err;
      const snap = await ref.get();
      // Landed: its answer (the write time) is what was lost.
      if (snap.get('visuals.clickId') === clickId) return undefined;
      if (attempt >= TRIES) throw err;
    }
  }
}
