import type { Firestore } from 'firebase-admin/firestore';
import type { ServerClock } from '../../jobs/clock.js';
import { rebalance, type Grant, type PresenceSeen } from '../../jobs/fleet.js';
import type { QuotaLedger as LedgerPort } from '../../jobs/ports.js';
import { answerLost, GRPC } from './lost-answer.js';

export interface QuotaLedgerOptions {
  /** The fleet collection (`showcaseFleet`); the ledger is its document `quota`. */
  collection: string;
  workerId: string;
  /** The key's requests per window, for the whole fleet (CLIPDROP_RPM). */
  rpm: number;
  windowMs: number;
  /** Latency allowed when a grant stops counting (a request sent just before a lower limit). */
  marginMs: number;
  onOps?: (reads: number, writes: number) => void;
  /** Told Firestore's time of every read (src/jobs/clock.ts). */
  clock?: Pick<ServerClock, 'observe'>;
}

/** The ledger's port (settle, leave), and what operators read. */
export interface QuotaLedger extends LedgerPort {
  /** Every worker's grant as last read (operators). */
  read(): Promise<Record<string, Grant>>;
}

/**
 * `showcaseFleet/quota`: `{ grants: { [workerId]: { limit, drainLimit, drainUntil } } }`.
 * One small document, changed only when shares change (a worker joins, leaves or dies): the
 * steady state costs one read per heartbeat and no write. Its times (`drainUntil`, and the
 * presence expiries it is settled with) are Firestore's: "now" is the read's time.
 */
export function createQuotaLedger(db: Firestore, opts: QuotaLedgerOptions): QuotaLedger {
  const ref = db.collection(opts.collection).doc('quota');
  const readAt = (snap: FirebaseFirestore.DocumentSnapshot): number => {
    const at = snap.readTime.toMillis();
    opts.clock?.observe(at);
    return at;
  };
  const grantsOf = (data: unknown): Record<string, Grant> => {
    const grants = (data as { grants?: unknown } | undefined)?.grants;
    return grants && typeof grants === 'object' ? (grants as Record<string, Grant>) : {};
  };

  /**
   * Compare-and-set on the document's update time, not a transaction: a worker cut off
   * mid-transaction would hold the document's lock (the server SDKs lock pessimistically)
   * and stall every other worker's settle. A lost race throws (settle reads again).
   */
  async function writeIfUnchanged(
    snap: FirebaseFirestore.DocumentSnapshot,
    data: { grants: Record<string, Grant> },
  ): Promise<void> {
    if (snap.exists && snap.updateTime) {
      await ref.update(data, { lastUpdateTime: snap.updateTime });
    } else {
      await ref.create(data);
    }
    opts.onOps?.(0, 1);
  }

  async function settleOnce(presence: ReadonlyMap<string, PresenceSeen>, used: number) {
    const snap = await ref.get();
    opts.onOps?.(1, 0);
    const before = grantsOf(snap.data());
    const result = rebalance(before, {
      me: opts.workerId,
      rpm: opts.rpm,
      now: readAt(snap),
      windowMs: opts.windowMs,
      marginMs: opts.marginMs,
      presence,
      used,
    });
    if (JSON.stringify(sorted(result.ledger)) !== JSON.stringify(sorted(before))) {
      await writeIfUnchanged(snap, { grants: result.ledger });
    }
    return { limit: result.limit, target: result.target };
  }

  return {
    async settle(presence, used) {
      // Workers see a death (or a start) at the same moment and race for the one document:
      // the loser reads again at once rather than a heartbeat later.
      for (let attempt = 1; ; attempt++) {
        try {
          return await settleOnce(presence, used);
        } catch (err) {
          if (attempt >= SETTLE_TRIES || !lostRace(err)) throw err;
        }
      }
    },
    async read() {
      const snap = await ref.get();
      opts.onOps?.(1, 0);
      return grantsOf(snap.data());
    },
    async leave(used) {
      const snap = await ref.get();
      opts.onOps?.(1, 0);
      const grants = grantsOf(snap.data());
      const mine = grants[opts.workerId];
      if (!mine) return;
      const t = readAt(snap);
      grants[opts.workerId] = {
        limit: 0,
        drainLimit: Math.min(Math.max(mine.limit, t < mine.drainUntil ? mine.drainLimit : 0), used),
        drainUntil: t + opts.windowMs + opts.marginMs,
      };
      await writeIfUnchanged(snap, { grants });
    },
  };
}

/** Enough for every worker of a large fleet to lose one race each. */
const SETTLE_TRIES = 10;

/**
 * FAILED_PRECONDITION (the update time moved), ALREADY_EXISTS (created meanwhile), or an answer
 * lost (maybe not the write): a settle computed again from a fresh read is exact.
 */
function lostRace(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return code === GRPC.FAILED_PRECONDITION || code === GRPC.ALREADY_EXISTS || answerLost(code);
}

function sorted(grants: Record<string, Grant>): Array<[string, Grant]> {
  return Object.entries(grants)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([id, g]) => [id, { limit: g.limit, drainLimit: g.drainLimit, drainUntil: g.drainUntil }]);
}
