/**
 * What the worker knows about its own health, kept up to date by the composition root and
 * read by `/readyz`. Times are ms epoch; 0 means "never".
 */
export interface HealthState {
  /** When the Firestore listener last delivered a snapshot. */
  lastSnapshotAt: number;
  /** When the periodic sweep query last succeeded. */
  lastSweepAt: number;
  /** False from a listener error until its next snapshot (and before the first one). */
  listenerAttached: boolean;
  /** True once shutdown began: the platform should stop routing to this process. */
  shuttingDown: boolean;
  /** Firestore must have answered (a snapshot or a sweep) within this long; derived from the lease. */
  readonly staleAfterMs: number;
}

export interface Readiness {
  ready: boolean;
  /** Why not, in words an operator can act on; empty when ready. */
  reasons: string[];
  /** Ms since Firestore last answered (snapshot or sweep), or null if it never has. */
  firestoreAgoMs: number | null;
}

/**
 * Ready means: not shutting down, the listener attached, and Firestore answered recently.
 * The listener alone is not enough: the SDK reconnects silently, so an attached listener can
 * be deaf for minutes; the sweep runs every lease/2 and proves the connection works.
 */
export function readinessOf(health: HealthState, now: number): Readiness {
  const reasons: string[] = [];
  if (health.shuttingDown) reasons.push('shutting down');
  if (!health.listenerAttached) reasons.push('Firestore listener not attached');
  const last = Math.max(health.lastSnapshotAt, health.lastSweepAt);
  const firestoreAgoMs = last > 0 ? now - last : null;
  if (firestoreAgoMs === null) {
    reasons.push('Firestore has not answered yet');
  } else if (firestoreAgoMs > health.staleAfterMs) {
    reasons.push(`Firestore has not answered for ${firestoreAgoMs} ms`);
  }
  return { ready: reasons.length === 0, reasons, firestoreAgoMs };
}
