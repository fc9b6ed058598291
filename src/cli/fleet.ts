import type { Firestore } from 'firebase-admin/firestore';
import { recordOf } from '../adapters/firestore/presence.js';
import { isAlive, fleetMarginMs, type Grant } from '../jobs/fleet.js';

/** One live worker, as `status` shows it. */
export interface FleetMember {
  id: string;
  since: string;
  running: number;
  demand: number;
  /** ClipDrop requests a minute it may send now (the quota ledger's grant). */
  share: number;
  lastBeatAgoMs: number;
  /** ClipDrop's balance as the worker's last answered call said (`x-remaining-credits`). */
  clipdropBalance?: number;
  /** Credits of the daily budget it holds now (docs/budget.md). */
  budgetHeld?: number;
  /** Whether it claims nothing new now (intake paused: budget or operator). */
  intakePaused?: boolean;
  /** Why: `budget` or `operator` (the first pause in force). */
  intakePausedBy?: string;
  /** ClipDrop calls in its current window, by its last beat. */
  windowUsed?: number;
  /** Its ClipDrop account gate holds every call: why (`no-credits`, `unauthorized`, `outage`). */
  clipdropPausedBy?: string;
}

/**
 * The live workers (fresh heartbeats) with their quota share, oldest first: judged as the
 * workers judge each other, on Firestore's clock (the read's time), not the operator's.
 */
export async function listFleet(
  db: Firestore,
  opts: { workersCollection: string; fleetCollection: string; timeoutMs: number },
): Promise<FleetMember[]> {
  const [workers, quota] = await Promise.all([
    db.collection(opts.workersCollection).get(),
    db.collection(opts.fleetCollection).doc('quota').get(),
  ]);
  const grants = (quota.data()?.grants ?? {}) as Record<string, Grant | undefined>;
  const now = workers.readTime.toMillis();
  const margin = fleetMarginMs(opts.timeoutMs);
  return workers.docs
    .map((doc) => ({ w: recordOf(doc), data: doc.data() }))
    .filter(({ w }) => isAlive(w, now, margin))
    .map(({ w, data }) => ({
      id: w.workerId,
      since: new Date(w.startedAt).toISOString(),
      running: w.running,
      demand: w.demand,
      share: grants[w.workerId]?.limit ?? 0,
      lastBeatAgoMs: Math.max(0, now - w.beatAt),
      ...budgetFields(data),
    }))
    .sort((a, b) => a.since.localeCompare(b.since) || a.id.localeCompare(b.id));
}

/** The heartbeat's budget fields (docs/budget.md), where a worker wrote them. */
function budgetFields(data: Record<string, unknown>): Partial<FleetMember> {
  const n = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const balance = n(data.clipdropBalance);
  const held = n(data.budgetHeld);
  const paused = n(data.intakePaused);
  const used = n(data.clipdropWindowUsed);
  const gate = (n(data.clipdropPaused) ?? 0) > 0;
  return {
    ...(balance === undefined ? {} : { clipdropBalance: balance }),
    ...(held === undefined ? {} : { budgetHeld: held }),
    ...(paused === undefined ? {} : { intakePaused: paused > 0 }),
    ...(typeof data.intakePausedBy === 'string' ? { intakePausedBy: data.intakePausedBy } : {}),
    ...(used === undefined ? {} : { windowUsed: used }),
    ...(gate ? { clipdropPausedBy: str(data.clipdropPausedBy) ?? 'paused' } : {}),
  };
}

export function formatFleet(members: FleetMember[], rpm: number): string[] {
  const lines = [`workers: ${members.length} live, sharing ${rpm} ClipDrop requests a minute`];
  for (const m of members) {
    lines.push(
      `  ${m.id}  since ${m.since}  running ${m.running}  share ${m.share}/min${m.windowUsed === undefined ? '' : `  window ${m.windowUsed}/${m.share}`}  beat ${Math.round(m.lastBeatAgoMs / 1000)}s ago${m.intakePaused ? `  intake paused${m.intakePausedBy ? ` (${m.intakePausedBy})` : ''}` : ''}${m.clipdropPausedBy ? `  clipdrop paused (${m.clipdropPausedBy})` : ''}`,
    );
  }
  return lines;
}
