import { describe, expect, it } from 'vitest';
import { readinessOf, type HealthState } from '../../src/observability/health.js';

const NOW = 1_000_000;
const healthy = (over: Partial<HealthState> = {}): HealthState => ({
  lastSnapshotAt: NOW - 100,
  lastSweepAt: NOW - 500,
  listenerAttached: true,
  shuttingDown: false,
  staleAfterMs: 10_000,
  ...over,
});

describe('readinessOf', () => {
  it('is ready when attached and Firestore answered within the window', () => {
    expect(readinessOf(healthy(), NOW)).toEqual({ ready: true, reasons: [], firestoreAgoMs: 100 });
  });

  it('counts a recent sweep as an answer when no snapshot came for long (an idle queue)', () => {
    const r = readinessOf(healthy({ lastSnapshotAt: NOW - 3_600_000, lastSweepAt: NOW - 2 }), NOW);
    expect(r.ready).toBe(true);
    expect(r.firestoreAgoMs).toBe(2);
  });

  it('is not ready while shutting down', () => {
    expect(readinessOf(healthy({ shuttingDown: true }), NOW)).toMatchObject({
      ready: false,
      reasons: ['shutting down'],
    });
  });

  it('is not ready while the listener is detached', () => {
    expect(readinessOf(healthy({ listenerAttached: false }), NOW)).toMatchObject({
      ready: false,
      reasons: ['Firestore listener not attached'],
    });
  });

  it('is not ready before Firestore ever answered', () => {
    const r = readinessOf(healthy({ lastSnapshotAt: 0, lastSweepAt: 0 }), NOW);
    expect(r).toMatchObject({ ready: false, firestoreAgoMs: null });
    expect(r.reasons).toContain('Firestore has not answered yet');
  });

  it('is not ready when neither a snapshot nor a sweep came within the window', () => {
    const r = readinessOf(
      healthy({ lastSnapshotAt: NOW - 10_001, lastSweepAt: NOW - 20_000 }),
      NOW,
    );
    expect(r.ready).toBe(false);
    expect(r.reasons).toEqual(['Firestore has not answered for 10001 ms']);
    // The window's edge itself is still fine.
    expect(readinessOf(healthy({ lastSnapshotAt: NOW - 10_000 }), NOW).ready).toBe(true);
  });
});
