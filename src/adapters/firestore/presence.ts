import { Subject, type Observable } from 'rxjs';
import { Timestamp, type DocumentData, type Firestore } from 'firebase-admin/firestore';
import {
  afterBeat,
  beatEveryMs,
  holds,
  isAlive,
  lapseAt,
  nextDeathCheck,
  NO_CONTINUITY,
  skewMarginMs,
  type Continuity,
  type PresenceRecord,
} from '../../jobs/fleet.js';
import { describe } from '../../jobs/errors.js';
import type { Fence, FleetView, Log } from '../../jobs/ports.js';

export interface PresenceOptions {
  collection: string;
  workerId: string;
  /** How long after its last beat a worker counts as dead (PRESENCE_TIMEOUT_MS). */
  timeoutMs: number;
  log: Log;
  /** Jobs running, and requests accepted but not finished (running included). */
  load: () => { running: number; demand: number };
  /** Extra fields for this worker's document (its quota share and reservation). */
  extra?: () => Record<string, number>;
  /** The extra fields of a beat, once it is acknowledged (a promise now in force). */
  onAck?: (extra: Record<string, number>) => void;
  /** Counts Firestore reads and writes made for the fleet. */
  onOps?: (reads: number, writes: number) => void;
  now?: () => number;
}

export interface Presence {
  /** The first beat acknowledged and the fleet read once: intake may start. */
  start(): Promise<void>;
  /** Stops beating and deletes this worker's document (a clean stop needs no timeout). */
  stop(): Promise<void>;
  readonly fence: Fence;
  /** A fresh view after every refresh. */
  readonly views$: Observable<FleetView>;
  view(): FleetView;
  /** Reads the fleet now. */
  refresh(): Promise<FleetView>;
  /**
   * Beat now: when intake turns busy (the fast cadence starts at once), or `urgent` (a larger
   * reservation is needed; at most one such beat per 250 ms).
   */
  nudge(urgent?: boolean): void;
  /** Deletes a dead worker's document once its jobs were handed to the sweep. */
  forget(workerId: string): Promise<void>;
}

/**
 * This worker's heartbeat in `{collection}/{workerId}`: `startedAt`, `beatAt`, `expiresAt`
 * (a Timestamp: a Firestore TTL policy on it removes documents of workers that died),
 * `running`, `demand`. Every beat is followed by a read of the fleet (its documents).
 *
 * The beat's acknowledgement is what makes the fence: the worker knows, with no extra round
 * trip, until when the others see it alive and since when that has held without a gap.
 */
export function createFirestorePresence(db: Firestore, opts: PresenceOptions): Presence {
  const now = opts.now ?? Date.now;
  const col = db.collection(opts.collection);
  const ref = col.doc(opts.workerId);
  const margin = skewMarginMs(opts.timeoutMs);
  const lapses$ = new Subject<void>();
  const views$ = new Subject<FleetView>();
  const startedAt = now();
  let continuity: Continuity = NO_CONTINUITY;
  let current: FleetView = { at: 0, workers: [], alive: new Set() };
  let beatTimer: NodeJS.Timeout | undefined;
  let lapseTimer: NodeJS.Timeout | undefined;
  let deathTimer: NodeJS.Timeout | undefined;
  let stopped = false;
  let beating: Promise<void> | undefined;
  let busy = false;
  let lastSentAt = 0;

  const isBusy = () => opts.load().demand > 0;

  function armLapse(): void {
    clearTimeout(lapseTimer);
    const delay = lapseAt(continuity, margin) - now();
    lapseTimer = setTimeout(
      () => {
        if (stopped || now() < lapseAt(continuity, margin)) return armLapse();
        opts.log.warn('presence.lapsed', { coveredUntil: continuity.coveredUntil });
        lapses$.next();
      },
      Math.max(0, delay),
    );
    lapseTimer.unref();
  }

  async function beatOnce(): Promise<void> {
    const sentAt = now();
    lastSentAt = sentAt;
    const load = opts.load();
    busy = load.demand > 0;
    const extra = opts.extra?.() ?? {};
    try {
      await ref.set({
        workerId: opts.workerId,
        startedAt: Timestamp.fromMillis(startedAt),
        beatAt: Timestamp.fromMillis(sentAt),
        expiresAt: Timestamp.fromMillis(sentAt + opts.timeoutMs),
        running: load.running,
        demand: load.demand,
        ...extra,
      });
      opts.onOps?.(0, 1);
      if (stopped) return;
      opts.onAck?.(extra);
      const ackAt = now();
      const before = continuity.since;
      continuity = afterBeat(continuity, {
        sentAt,
        ackAt,
        ttlMs: opts.timeoutMs,
        marginMs: margin,
      });
      if (continuity.since !== before && before !== Number.POSITIVE_INFINITY) {
        opts.log.warn('presence.resumed', { since: continuity.since });
      }
      armLapse();
    } catch (err) {
      opts.log.warn('presence.beat_failed', { detail: describe(err) });
    }
    try {
      await refresh();
    } catch (err) {
      opts.log.warn('presence.read_failed', { detail: describe(err) });
    }
  }

  function schedule(delayMs: number): void {
    clearTimeout(beatTimer);
    if (stopped) return;
    beatTimer = setTimeout(() => void beat(), delayMs);
  }

  function beat(): Promise<void> {
    beating ??= beatOnce().finally(() => {
      beating = undefined;
      schedule(beatEveryMs(opts.timeoutMs, isBusy()));
    });
    return beating;
  }

  async function refresh(): Promise<FleetView> {
    const snap = await col.get();
    opts.onOps?.(Math.max(1, snap.size), 0);
    const at = now();
    const workers = snap.docs.map((doc) => recordOf(doc.id, doc.data()));
    const alive = new Set(workers.filter((w) => isAlive(w, at, margin)).map((w) => w.workerId));
    // In its own view this worker is alive exactly while its coverage lasts, whatever its
    // document says: a lapsed worker takes no quota share until its beats are acknowledged.
    if (at < lapseAt(continuity, margin)) alive.add(opts.workerId);
    else alive.delete(opts.workerId);
    current = { at, workers, alive };
    armDeathCheck();
    views$.next(current);
    return current;
  }

  /** Reads the fleet again right after another worker's heartbeat would run out. */
  function armDeathCheck(): void {
    clearTimeout(deathTimer);
    if (stopped) return;
    const t = now();
    const at = nextDeathCheck(
      current.workers,
      opts.workerId,
      t,
      margin,
      t + beatEveryMs(opts.timeoutMs, isBusy()),
    );
    if (at >= t + beatEveryMs(opts.timeoutMs, isBusy())) return; // the next beat reads anyway
    deathTimer = setTimeout(
      () =>
        void refresh().catch((err: unknown) =>
          opts.log.warn('presence.read_failed', { detail: describe(err) }),
        ),
      Math.max(0, at - t),
    );
  }

  return {
    async start() {
      await beat();
      if (continuity.since === Number.POSITIVE_INFINITY) {
        // The first beat failed: keep beating; intake waits for the first success.
        await new Promise<void>((resolve) => {
          const check = setInterval(() => {
            if (stopped || continuity.since !== Number.POSITIVE_INFINITY) {
              clearInterval(check);
              resolve();
            }
          }, 100);
        });
      }
      opts.log.info('presence.started', {
        workerId: opts.workerId,
        timeoutMs: opts.timeoutMs,
        fleet: current.alive.size,
      });
    },
    async stop() {
      stopped = true;
      clearTimeout(beatTimer);
      clearTimeout(lapseTimer);
      clearTimeout(deathTimer);
      await beating?.catch(() => undefined);
      try {
        await ref.delete();
        opts.onOps?.(0, 1);
      } catch (err) {
        opts.log.warn('presence.delete_failed', { detail: describe(err) });
      }
      lapses$.complete();
      views$.complete();
    },
    fence: {
      holds: (claimedAt) => holds(continuity, now(), claimedAt, margin),
      lapses$: lapses$.asObservable(),
    },
    views$: views$.asObservable(),
    view: () => current,
    refresh,
    nudge(urgent = false) {
      if (stopped) return;
      if (!busy || (urgent && now() - lastSentAt >= 250)) void beat();
    },
    async forget(workerId) {
      await col.doc(workerId).delete();
      opts.onOps?.(0, 1);
    },
  };
}

/**
 * Whether a worker has a fresh heartbeat, by one read of its document: for the job store,
 * which finds jobs held by other workers and must not parse their documents itself. `onRead`
 * counts the read (for the job it was made for).
 */
export function createPresenceReader(
  db: Firestore,
  opts: { collection: string; timeoutMs: number; now?: () => number },
): (workerId: string, onRead: (reads: number) => void) => Promise<boolean> {
  const col = db.collection(opts.collection);
  const now = opts.now ?? Date.now;
  const margin = skewMarginMs(opts.timeoutMs);
  return async (workerId, onRead) => {
    const snap = await col.doc(workerId).get();
    onRead(1);
    const data = snap.data();
    return isAlive(data && recordOf(workerId, data), now(), margin);
  };
}

/** A heartbeat document as the fleet's rules read it (a time missing or malformed: 0). */
function recordOf(workerId: string, d: DocumentData): PresenceRecord {
  const ms = (v: unknown) => (v instanceof Timestamp ? v.toMillis() : 0);
  return {
    workerId,
    startedAt: ms(d.startedAt),
    beatAt: ms(d.beatAt),
    expiresAt: ms(d.expiresAt),
    running: typeof d.running === 'number' ? d.running : 0,
    demand: typeof d.demand === 'number' ? d.demand : 0,
    ...(typeof d.reserved === 'number' ? { reserved: d.reserved } : {}),
    ...(typeof d.share === 'number' ? { share: d.share } : {}),
  };
}
