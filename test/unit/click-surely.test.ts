import type { DocumentReference } from 'firebase-admin/firestore';
import { describe, expect, it } from 'vitest';
import { clickSurely } from '../support/app-write.js';

// The tests' own clicks meet the emulator's lost answers too; a click must land exactly once.
function fakeDoc(answers: ('ok' | 'lost-landed' | 'lost' | 'denied')[]) {
  let stored: string | undefined;
  const writes: string[] = [];
  const ref = {
    get: () =>
      Promise.resolve({
        get: (field: string) => (field === 'visuals.clickId' ? stored : undefined),
      }),
  } as unknown as DocumentReference;
  const write = (clickId: string): Promise<void> => {
    writes.push(clickId);
    const answer = answers.shift() ?? 'ok';
    if (answer === 'ok' || answer === 'lost-landed') stored = clickId;
    if (answer === 'ok') return Promise.resolve();
    return Promise.reject(Object.assign(new Error(answer), { code: answer === 'denied' ? 7 : 2 }));
  };
  return { ref, write, writes };
}

describe('clickSurely', () => {
  it('does not click again when the lost answer hid a write that landed', async () => {
    const doc = fakeDoc(['lost-landed']);
    await clickSurely(doc.ref, doc.write);
    expect(doc.writes).toHaveLength(1);
  });

  it('clicks again, with a new id, when the write did not land', async () => {
    const doc = fakeDoc(['lost', 'ok']);
    await clickSurely(doc.ref, doc.write);
    expect(doc.writes).toHaveLength(2);
    expect(doc.writes[0]).not.toBe(doc.writes[1]);
  });

  it('passes other errors through at once', async () => {
    const doc = fakeDoc(['denied']);
    await expect(clickSurely(doc.ref, doc.write)).rejects.toThrow('denied');
    expect(doc.writes).toHaveLength(1);
  });

  it('gives up after three lost writes', async () => {
    const doc = fakeDoc(['lost', 'lost', 'lost', 'ok']);
    await expect(clickSurely(doc.ref, doc.write)).rejects.toThrow('lost');
    expect(doc.writes).toHaveLength(3);
  });
});
