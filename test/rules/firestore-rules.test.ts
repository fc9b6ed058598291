/**
 * firestore.rules against the Firestore emulator (CONTRACT §4): what a browser may write to a
 * character, and that the worker's own collections are closed. Clients are the firebase JS
 * SDK through @firebase/rules-unit-testing; the worker's Admin SDK bypasses the rules, which
 * the last test proves with a real job.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  assertFails,
  assertSucceeds,
  initializeTestEnvironment,
  type RulesTestContext,
  type RulesTestEnvironment,
} from '@firebase/rules-unit-testing';
import {
  deleteDoc,
  deleteField,
  doc,
  getDoc,
  setDoc,
  setLogLevel,
  updateDoc,
} from 'firebase/firestore';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { characterPicture } from '../support/images.js';
import { BUCKET, startStack, type Stack } from '../support/stack.js';
import { statusOf, waitForDoc } from '../support/wait.js';

const RULES = readFileSync('firestore.rules', 'utf8');
// Each denied write is expected here; the SDK would log every one as a warning.
setLogLevel('error');
const WORKER_FIELDS = [
  'showcaseImageUrl',
  'isShowcaseProcessed',
  'showcaseProcessingError',
  'showcaseJob',
] as const;
const FORGED: Record<(typeof WORKER_FIELDS)[number], unknown> = {
  showcaseImageUrl: 'https://evil.example.com/fake.png',
  isShowcaseProcessed: true,
  showcaseProcessingError: { code: 'NONE', message: 'x', stage: 'finalizing', at: 1 },
  showcaseJob: { jobId: 'forged', state: 'running', owner: 'me', attempts: 0 },
};
/** What the worker wrote on alice's character (a failed job), unlike every forged value. */
const WRITTEN_BY_WORKER: typeof FORGED = {
  showcaseImageUrl: 'https://firebasestorage.googleapis.com/v0/b/x/o/old.png?token=t',
  isShowcaseProcessed: false,
  showcaseProcessingError: { code: 'SOURCE_NOT_FOUND', message: 'y', stage: 'upscaling', at: 2 },
  showcaseJob: { jobId: 'real', state: 'failed', owner: null, attempts: 1 },
};
const OTHER_STATUSES = ['upscaling', 'finalizing', 'complete', 'failed', '', 'anything'];

function emulatorHostPort(): { host: string; port: number } {
  const [host = '127.0.0.1', port = ''] = inject('firestoreEmulatorHost').split(':');
  return { host, port: Number(port) };
}

async function rulesEnvironment(projectId: string): Promise<RulesTestEnvironment> {
  return initializeTestEnvironment({
    projectId,
    firestore: { ...emulatorHostPort(), rules: RULES },
  });
}

/** A character as the app creates it: owned by `userId`, with a picture, not clicked. */
function character(userId: string, visuals: Record<string, unknown> = {}) {
  return {
    core: { name: 'Aria' },
    meta: { userId, createdWith: 'app' },
    visuals: { imageUrl: `gs://${BUCKET}/raw-uploads/${userId}/aria.png`, ...visuals },
  };
}

describe('firestore.rules: characters', () => {
  let env: RulesTestEnvironment;
  let alice: RulesTestContext;
  let bob: RulesTestContext;
  let anonymous: RulesTestContext;
  const ref = (ctx: RulesTestContext, id = 'c1') => doc(ctx.firestore(), `characters/${id}`);

  beforeAll(async () => {
    env = await rulesEnvironment(`demo-rules-${randomUUID().slice(0, 8)}`);
    alice = env.authenticatedContext('alice');
    bob = env.authenticatedContext('bob');
    anonymous = env.unauthenticatedContext();
  });
  afterAll(async () => {
    await env?.cleanup();
  });
  beforeEach(async () => {
    await env.clearFirestore();
    // Alice's character, as it is after a finished job (the worker wrote its fields).
    await env.withSecurityRulesDisabled(async (admin) => {
      await setDoc(
        doc(admin.firestore(), 'characters/c1'),
        character('alice', { showcaseProcessingStatus: 'failed', ...WRITTEN_BY_WORKER }),
      );
    });
  });

  describe('the owner', () => {
    it('may click Process (status removing-background)', async () => {
      await assertSucceeds(
        updateDoc(ref(alice), { 'visuals.showcaseProcessingStatus': 'removing-background' }),
      );
    });

    it('may create a character, clicked or not', async () => {
      await assertSucceeds(setDoc(ref(alice, 'new-1'), character('alice')));
      await assertSucceeds(
        setDoc(
          ref(alice, 'new-2'),
          character('alice', { showcaseProcessingStatus: 'removing-background' }),
        ),
      );
    });

    it('may edit the app’s other fields: name, picture, other meta and visuals fields', async () => {
      await assertSucceeds(
        updateDoc(ref(alice), {
          'core.name': 'Aria II',
          'meta.createdWith': 'import',
          'visuals.imageUrl': `gs://${BUCKET}/raw-uploads/alice/aria-2.png`,
          'visuals.style': 'watercolor',
          traits: ['brave'],
        }),
      );
    });

    it('may read their character; may delete it', async () => {
      await assertSucceeds(getDoc(ref(alice)));
      await assertSucceeds(deleteDoc(ref(alice)));
    });

    it.each(OTHER_STATUSES)('may not set the status to %j', async (status) => {
      // From a different status, so the write is a change.
      const before = status === 'upscaling' ? 'finalizing' : 'upscaling';
      await env.withSecurityRulesDisabled((admin) =>
        updateDoc(doc(admin.firestore(), 'characters/c1'), {
          'visuals.showcaseProcessingStatus': before,
        }),
      );
      await assertFails(updateDoc(ref(alice), { 'visuals.showcaseProcessingStatus': status }));
    });

    it.each(OTHER_STATUSES)('may not create a character with the status %j', async (status) => {
      await assertFails(
        setDoc(ref(alice, 'new-s'), character('alice', { showcaseProcessingStatus: status })),
      );
    });

    it('may not remove the status', async () => {
      await assertFails(
        updateDoc(ref(alice), { 'visuals.showcaseProcessingStatus': deleteField() }),
      );
    });

    it.each(WORKER_FIELDS)('may not write visuals.%s on update', async (field) => {
      await assertFails(updateDoc(ref(alice), { [`visuals.${field}`]: FORGED[field] }));
    });

    it.each(WORKER_FIELDS)('may not remove visuals.%s on update', async (field) => {
      await assertFails(updateDoc(ref(alice), { [`visuals.${field}`]: deleteField() }));
    });

    it.each(WORKER_FIELDS)('may not write visuals.%s along with a click', async (field) => {
      await assertFails(
        updateDoc(ref(alice), {
          'visuals.showcaseProcessingStatus': 'removing-background',
          [`visuals.${field}`]: FORGED[field],
        }),
      );
    });

    it.each(WORKER_FIELDS)('may not create a character with visuals.%s', async (field) => {
      await assertFails(
        setDoc(ref(alice, 'new-w'), character('alice', { [field]: FORGED[field] })),
      );
    });

    it('may not change meta.userId (giving the character or its output path away)', async () => {
      await assertFails(updateDoc(ref(alice), { 'meta.userId': 'bob' }));
      await assertFails(updateDoc(ref(alice), { meta: { createdWith: 'app' } }));
    });

    it('may not replace the whole document and drop the worker’s fields', async () => {
      await assertFails(setDoc(ref(alice), character('alice')));
    });
  });

  describe('anyone else', () => {
    it('may not create a character in another user’s name', async () => {
      await assertFails(setDoc(ref(bob, 'new-b'), character('alice')));
    });

    it('may not create a character without an owner', async () => {
      await assertFails(setDoc(ref(bob, 'new-b'), { visuals: { imageUrl: 'x' } }));
    });

    it('may not click Process on another user’s character', async () => {
      await assertFails(
        updateDoc(ref(bob), { 'visuals.showcaseProcessingStatus': 'removing-background' }),
      );
    });

    it('may not edit or delete another user’s character', async () => {
      await assertFails(updateDoc(ref(bob), { 'core.name': 'Mine now' }));
      await assertFails(updateDoc(ref(bob), { 'meta.userId': 'bob' }));
      await assertFails(deleteDoc(ref(bob)));
    });

    it('may not read another user’s character (owner-only reads by default)', async () => {
      await assertFails(getDoc(ref(bob)));
    });

    it('unauthenticated: may not write, click or read', async () => {
      await assertFails(setDoc(ref(anonymous, 'new-a'), character('alice')));
      await assertFails(
        updateDoc(ref(anonymous), { 'visuals.showcaseProcessingStatus': 'removing-background' }),
      );
      await assertFails(getDoc(ref(anonymous)));
    });
  });
});

describe('firestore.rules: the worker’s collections are closed to clients', () => {
  let env: RulesTestEnvironment;

  beforeAll(async () => {
    env = await rulesEnvironment(`demo-rules-${randomUUID().slice(0, 8)}`);
    await env.withSecurityRulesDisabled(async (admin) => {
      for (const path of ['showcaseWorkers/w1', 'showcaseFleet/leader', 'showcaseUsage/alice']) {
        await setDoc(doc(admin.firestore(), path), { owner: 'w1', userId: 'alice' });
      }
    });
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it.each(['showcaseWorkers/w1', 'showcaseFleet/leader', 'showcaseUsage/alice'])(
    '%s: no client reads or writes it, not even the user it counts',
    async (path) => {
      for (const ctx of [env.authenticatedContext('alice'), env.unauthenticatedContext()]) {
        await assertFails(getDoc(doc(ctx.firestore(), path)));
        await assertFails(setDoc(doc(ctx.firestore(), path), { owner: 'me' }));
        await assertFails(setDoc(doc(ctx.firestore(), `${path}-new`), { owner: 'me' }));
      }
    },
  );
});

describe('firestore.rules in force: the worker still does its job (Admin SDK)', () => {
  let stack: Stack;
  let env: RulesTestEnvironment;

  beforeAll(async () => {
    stack = await startStack();
    // The rules loaded into the very project the worker uses.
    env = await rulesEnvironment(stack.projectId);
  });
  afterAll(async () => {
    await stack?.close();
    await env?.cleanup();
  });

  it('completes a job the owner clicked through the rules', async () => {
    stack.storage.putObject(
      BUCKET,
      'raw-uploads/alice/ruled.png',
      await characterPicture(64, 48, 'png', 3),
    );
    await stack.startWorker();
    const alice = env.authenticatedContext('alice').firestore();
    const ruled = doc(alice, 'characters/ruled');
    await assertSucceeds(
      setDoc(ruled, {
        core: { name: 'Ruled' },
        meta: { userId: 'alice' },
        visuals: { imageUrl: `gs://${BUCKET}/raw-uploads/alice/ruled.png` },
      }),
    );
    await assertSucceeds(
      updateDoc(ruled, { 'visuals.showcaseProcessingStatus': 'removing-background' }),
    );
    const done = await waitForDoc(
      stack.db,
      'characters/ruled',
      (d) => ['complete', 'failed'].includes(statusOf(d) ?? ''),
      30_000,
    );
    const visuals = done?.visuals as Record<string, unknown>;
    expect(statusOf(done), JSON.stringify(visuals.showcaseProcessingError)).toBe('complete');
    expect(visuals.isShowcaseProcessed).toBe(true);
    expect(String(visuals.showcaseImageUrl)).toContain('showcase_ruled.png');
    // And the owner, through the rules, reads the result the worker wrote.
    const seen = await assertSucceeds(getDoc(ruled));
    expect(statusOf(seen.data())).toBe('complete');
  }, 60_000);
});
