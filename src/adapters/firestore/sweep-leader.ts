import { Timestamp, type Firestore } from 'firebase-admin/firestore';
import { monotonic, type Monotonic, type ServerClock } from '../../jobs/clock.js';
import { mayLead } from '../../jobs/fleet.js';
import type { SweepLeader } from '../../jobs/ports.js';

export interface SweepLeaderOptions {
  /** The fleet collection (`showcaseFleet`); the lease is its document `sweeper`. */
  collection: string;
  workerId: string;
  /** How long a lease holds without renewal (PRESENCE_TIMEOUT_MS). */
  leaseMs: number;
  marginMs: number;
  onOps?: (reads: number, writes: number) => void;
  /** Told Firestore's time of every read (src/jobs/clock.ts). */
  clock?: Pick<ServerClock, 'observe'>;
  mono?: Monotonic;
}

/**
 * One sweep for the fleet: `showcaseFleet/sweeper` = `{ holder, expiresAt }`, taken by
 * compare-and-set on its update time. Only the holder runs the reconciling query; when it dies the lease runs out
 * and the next worker to tick takes it; on a clean stop it is given up at once.
 *
 * `expiresAt` is on Firestore's clock (the read's time plus the lease) and judged against the
 * next reader's read time. The holder counts its own lease on the monotonic clock from the
 * moment it sent that read, which came before the read's time: it stops leading first.
 */
export function createSweepLeader(db: Firestore, opts: SweepLeaderOptions): SweepLeader {
  const ref = db.collection(opts.collection).doc('sweeper');
  const now = opts.mono ?? monotonic;
  let leadingUntil = 0;
  let renewedAt = 0;

  return {
    async tick(alive) {
      const sentAt = now();
      // A holder renews at a third of its lease, not at every tick: one write per ~5 s.
      if (sentAt < leadingUntil && sentAt - renewedAt < opts.leaseMs / 3) return true;
      // Compare-and-set on the update time (no transaction lock a cut-off worker could hold).
      const snap = await ref.get();
      opts.onOps?.(1, 0);
      const readAt = snap.readTime.toMillis();
      opts.clock?.observe(readAt);
      const d = snap.data();
      const lease = d
        ? {
            holder: typeof d.holder === 'string' ? d.holder : null,
            expiresAt: d.expiresAt instanceof Timestamp ? d.expiresAt.toMillis() : 0,
          }
        : undefined;
      let took = mayLead(lease, opts.workerId, readAt, opts.marginMs, alive);
      if (took) {
        const data = {
          holder: opts.workerId,
          expiresAt: Timestamp.fromMillis(readAt + opts.leaseMs),
        };
        try {
          if (snap.exists && snap.updateTime) {
            await ref.update(data, { lastUpdateTime: snap.updateTime });
          } else {
            await ref.create(data);
          }
          opts.onOps?.(0, 1);
        } catch (err) {
          // Another worker wrote first (FAILED_PRECONDITION, ALREADY_EXISTS): it leads.
          const code = (err as { code?: unknown }).code;
          if (code !== 9 && code !== 6) throw err;
          took = false;
        }
      }
      if (took) {
        leadingUntil = sentAt + opts.leaseMs - opts.marginMs;
        renewedAt = sentAt;
      } else {
        leadingUntil = 0;
      }
      return took && now() < leadingUntil;
    },
    leading: () => now() < leadingUntil,
    async resign() {
      if (now() >= leadingUntil) return;
      leadingUntil = 0;
      const snap = await ref.get();
      if (snap.data()?.holder === opts.workerId && snap.updateTime) {
        await ref.update({ holder: null, expiresAt: null }, { lastUpdateTime: snap.updateTime });
      }
      opts.onOps?.(1, 1);
    },
  };
}
