import { Subject, type Observable } from 'rxjs';
import {
  FieldValue,
  Timestamp,
  type DocumentData,
  type DocumentSnapshot,
  type Firestore,
} from 'firebase-admin/firestore';
import {
  createServerClock,
  monotonic,
  type Monotonic,
  type ServerClock,
} from '../../jobs/clock.js';
import {
  afterBeat,
  beatEveryMs,
  holds,
  isAlive,
  lapseAt,
  nextDeathCheck,
  NO_CONTINUITY,
  fleetMarginMs,
  type Continuity,
  type PresenceRecord,
} from '../../jobs/fleet.js';
import { describe } from '../../jobs/errors.js';
import type { Fence, FleetView, Log } from '../../jobs/ports.js';
import { leavingAt } from '../../jobs/quota-promise.js';

/** The shortest gap between two beats asked for at once (`nudge(true)`). */
const URGENT_EVERY_MS = 250;

export interface PresenceOptions {
  collection: string;
  workerId: string;
  /** How long after its last beat a worker counts as dead (PRESENCE_TIMEOUT_MS). */
  timeoutMs: number;
  log: Log;
  /** Jobs running, and requests accepted but not finished (running included). */
  load: () => { running: number; demand: number };
  /** Extra fields for this worker's document (its quota share and reservation). */
  extra?: () => Record<string, unknown>;
  /** The extra fields of a beat (the same object), once it is acknowledged (a promise now in force). */
  onAck?: (extra: Record<string, unknown>) => void;
  /** Counts Firestore reads and writes made for the fleet. */
  onOps?: (reads: number, writes: number) => void;
  /** Firestore's time: every read and beat of the fleet sets it (src/jobs/clock.ts). */
  clock?: ServerClock;
  /** This process's durations: coverage and its lapse. */
  mono?: Monotonic;
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
 * This worker's heartbeat in `{collection}/{workerId}`: `startedAt`, `beatAt` (the commit
 * time), `timeoutMs`, `expiresAt` (a Timestamp for a Firestore TTL policy, which removes
 * documents of workers that died), `running`, `demand`. Every beat is followed by a read of the
 * fleet (its documents).
 *
 * Liveness is judged on Firestore's clock only: a worker is alive while the read's time is
 * within its `timeoutMs` of its document's update time (the last beat's commit). Its own clock
 * plays no part, nor the reader's.
 *
 * The beat's acknowledgement is what makes the fence, on the monotonic clock: a beat sent at
 * `s` committed after `s`, so the others see this worker alive at least until `s + timeoutMs`;
 * and it knows, with no extra round trip, since when that has held without a gap.
 */
export function createFirestorePresence(db: Firestore, opts: PresenceOptions): Presence {
  const mono = opts.mono ?? monotonic;
  const clock = opts.clock ?? createServerClock(mono);
  const col = db.collection(opts.collection);
  const ref = col.doc(opts.workerId);
  const margin = fleetMarginMs(opts.timeoutMs);
  const lapses$ = new Subject<void>();
  const views$ = new Subject<FleetView>();
  let startedAt: Timestamp | undefined;
  let continuity: Continuity = NO_CONTINUITY;
  let current: FleetView = { at: 0, workers: [], alive: new Set() };
  let beatTimer: NodeJS.Timeout | undefined;
  let lapseTimer: NodeJS.Timeout | undefined;
  let deathTimer: NodeJS.Timeout | undefined;
  let stopped = false;
  let beating: Promise<void> | undefined;
  /** An urgent beat was asked while one was in the air. */
  let beatAgain = false;
  let busy = false;
  let lastSentAt = 0;

  const isBusy = () => opts.load().demand > 0;

  function armLapse(): void {
    clearTimeout(lapseTimer);
    const delay = lapseAt(continuity, margin) - mono();
    lapseTimer = setTimeout(
      () => {
        if (stopped || mono() < lapseAt(continuity, margin)) return armLapse();
        opts.log.warn('presence.lapsed', { coveredUntil: continuity.coveredUntil });
        lapses$.next();
      },
      Math.max(0, delay),
    );
    lapseTimer.unref();
  }

  async function beatOnce(): Promise<void> {
    const sentAt = mono();
    lastSentAt = sentAt;
    const load = opts.load();
    busy = load.demand > 0;
    const extra = opts.extra?.() ?? {};
    try {
      const written = await ref.set({
        workerId: opts.workerId,
        // The first beat's commit time, once known.
        startedAt: startedAt ?? FieldValue.serverTimestamp(),
        beatAt: FieldValue.serverTimestamp(),
        timeoutMs: opts.timeoutMs,
        // For the TTL policy, people and workers of the previous version; this version judges
        // liveness on the update time. Left out until Firestore's time is known: a time from
        // a clock minutes slow would let the TTL policy delete a live worker's document.
        ...(clock.synced ? { expiresAt: Timestamp.fromMillis(clock.now() + opts.timeoutMs) } : {}),
        running: load.running,
        demand: load.demand,
        ...extra,
      });
      clock.observe(written.writeTime.toMillis());
      startedAt ??= written.writeTime;
      opts.onOps?.(0, 1);
      if (stopped) return;
      opts.onAck?.(extra);
      const ackAt = mono();
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
      // An urgent beat asked while this one was in the air (its ack, the read after it) comes
      // as soon as allowed, not at the next regular beat.
      const urgent = beatAgain;
      beatAgain = false;
      schedule(
        urgent
          ? Math.max(0, lastSentAt + URGENT_EVERY_MS - mono())
          : beatEveryMs(opts.timeoutMs, isBusy()),
      );
    });
    return beating;
  }

  async function refresh(): Promise<FleetView> {
    const snap = await col.get();
    opts.onOps?.(Math.max(1, snap.size), 0);
    const at = snap.readTime.toMillis();
    clock.observe(at);
    const workers = snap.docs.map((doc) => recordOf(doc));
    const alive = new Set(workers.filter((w) => isAlive(w, at, margin)).map((w) => w.workerId));
    // In its own view this worker is alive exactly while its coverage lasts, whatever its
    // document says: a lapsed worker takes no quota share until its beats are acknowledged.
    if (mono() < lapseAt(continuity, margin)) alive.add(opts.workerId);
    else alive.delete(opts.workerId);
    current = { at, workers, alive };
    armDeathCheck(at);
    views$.next(current);
    return current;
  }

  /**
   * Reads the fleet again right after another worker's heartbeat would run out: a delay on
   * Firestore's clock from the read at `t`, waited on the monotonic one.
   */
  function armDeathCheck(t: number): void {
    clearTimeout(deathTimer);
    if (stopped) return;
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
      // A read first: Firestore's time is known before the first beat stamps `expiresAt`.
      await ref
        .get()
        .then((snap) => {
          clock.observe(snap.readTime.toMillis());
          opts.onOps?.(1, 0);
        })
        .catch((err: unknown) => opts.log.warn('presence.read_failed', { detail: describe(err) }));
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
      holds: (claimedAt) => holds(continuity, mono(), claimedAt, margin),
      lapses$: lapses$.asObservable(),
    },
    views$: views$.asObservable(),
    view: () => current,
    refresh,
    nudge(urgent = false) {
      if (stopped) return;
      if (!busy) return void beat();
      if (!urgent) return;
      // At most one urgent beat per 250 ms; one asked sooner comes then, not at the next beat.
      if (beating) {
        beatAgain = true;
        return;
      }
      const wait = lastSentAt + URGENT_EVERY_MS - mono();
      if (wait <= 0) void beat();
      else schedule(wait);
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
  opts: { collection: string; timeoutMs: number },
): (workerId: string, onRead: (reads: number) => void) => Promise<boolean> {
  const col = db.collection(opts.collection);
  const margin = fleetMarginMs(opts.timeoutMs);
  return async (workerId, onRead) => {
    const snap = await col.doc(workerId).get();
    onRead(1);
    return snap.exists && isAlive(recordOf(snap), snap.readTime.toMillis(), margin);
  };
}

/**
 * A heartbeat document as the fleet's rules read it, on Firestore's clock: the last beat is the
 * document's update time, and it expires `timeoutMs` later (a document written before
 * `timeoutMs` was: the gap its writer left between `beatAt` and `expiresAt`).
 */
export function recordOf(doc: DocumentSnapshot): PresenceRecord {
  const d: DocumentData = doc.data() ?? {};
  const ms = (v: unknown) => (v instanceof Timestamp ? v.toMillis() : 0);
  const beatAt = doc.updateTime?.toMillis() ?? 0;
  const ttl =
    typeof d.timeoutMs === 'number' ? d.timeoutMs : Math.max(0, ms(d.expiresAt) - ms(d.beatAt));
  return {
    workerId: doc.id,
    startedAt: ms(d.startedAt),
    beatAt,
    expiresAt: beatAt + ttl,
    running: typeof d.running === 'number' ? d.running : 0,
    demand: typeof d.demand === 'number' ? d.demand : 0,
    ...(typeof d.reserved === 'number' ? { reserved: d.reserved } : {}),
    ...(typeof d.share === 'number' ? { share: d.share } : {}),
    ...(d.leaving !== undefined ? { leaving: leavingAt(d.leaving, beatAt) } : {}),
  };
}
