import { Timestamp, type Firestore } from 'firebase-admin/firestore';
import { isAlive, skewMarginMs, type Grant } from '../jobs/fleet.js';

/** One live worker, as `status` shows it. */
export interface FleetMember {
  id: string;
  since: string;
  running: number;
  demand: number;
  /** ClipDrop requests a minute it may send now (the quota ledger's grant). */
  share: number;
  lastBeatAgoMs: number;
}

/** The live workers (fresh heartbeats) with their quota share, oldest first. */
export async function listFleet(
  db: Firestore,
  opts: { workersCollection: string; fleetCollection: string; timeoutMs: number },
  now: number,
): Promise<FleetMember[]> {
  const [workers, quota] = await Promise.all([
    db.collection(opts.workersCollection).get(),
    db.collection(opts.fleetCollection).doc('quota').get(),
  ]);
  const grants = (quota.data()?.grants ?? {}) as Record<string, Grant | undefined>;
  const ms = (v: unknown) => (v instanceof Timestamp ? v.toMillis() : 0);
  const margin = skewMarginMs(opts.timeoutMs);
  return workers.docs
    .map((doc) => ({ doc, d: doc.data() }))
    .filter(({ d }) => isAlive({ expiresAt: ms(d.expiresAt) }, now, margin))
    .map(({ doc, d }) => ({
      id: doc.id,
      since: new Date(ms(d.startedAt)).toISOString(),
      running: typeof d.running === 'number' ? d.running : 0,
      demand: typeof d.demand === 'number' ? d.demand : 0,
      share: grants[doc.id]?.limit ?? 0,
      lastBeatAgoMs: Math.max(0, now - ms(d.beatAt)),
    }))
    .sort((a, b) => a.since.localeCompare(b.since) || a.id.localeCompare(b.id));
}

export function formatFleet(members: FleetMember[], rpm: number): string[] {
  const lines = [`workers: ${members.length} live, sharing ${rpm} ClipDrop requests a minute`];
  for (const m of members) {
    lines.push(
      `  ${m.id}  since ${m.since}  running ${m.running}  share ${m.share}/min  beat ${Math.round(m.lastBeatAgoMs / 1000)}s ago`,
    );
  }
  return lines;
}
