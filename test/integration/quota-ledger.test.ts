import { afterEach, describe, expect, it } from 'vitest';
import { createQuotaLedger } from '../../src/adapters/firestore/quota-ledger.js';
import { counted, type PresenceSeen } from '../../src/jobs/fleet.js';
import { startStack, type Stack } from '../support/stack.js';

describe('the quota ledger on the emulator', () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.close();
    stack = undefined;
  });

  it('workers that settle at the same moment all get their share at once, within the quota', async () => {
    stack = await startStack();
    const db = stack.db;
    const ids = ['w-a', 'w-b', 'w-c', 'w-d'];
    const now = Date.now();
    const presence = new Map<string, PresenceSeen>(
      ids.map((id) => [id, { expiresAt: now + 15_000, alive: true }]),
    );
    const ledgerOf = (workerId: string) =>
      createQuotaLedger(db, {
        collection: 'showcaseFleet',
        workerId,
        rpm: 60,
        windowMs: 60_000,
        marginMs: 3_000,
      });
    // All race for the one document (a death or a start seen by everyone at once): a lost
    // compare-and-set reads again at once instead of failing until the next heartbeat.
    const results = await Promise.all(ids.map((id) => ledgerOf(id).settle(presence, 0)));
    expect(results.map((r) => r.limit)).toEqual([15, 15, 15, 15]);
    const grants = await ledgerOf('w-a').read();
    const total = Object.values(grants).reduce((n, g) => n + counted(g, Date.now()), 0);
    expect(total).toBeLessThanOrEqual(60);
  });
});
