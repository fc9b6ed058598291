import { concatMap, from, Subject, type Observable, type Subscription } from 'rxjs';
import { describe } from '../jobs/errors.js';
import {
  callsLeft,
  fairShare,
  reservation,
  fleetMarginMs,
  takeoverShare,
  type PresenceSeen,
} from '../jobs/fleet.js';
import { TAKEOVER_HOLD_MS, type CallLimiter } from '../jobs/call-window.js';
import { leavingOf, type Leaving } from '../jobs/quota-promise.js';
import type {
  FleetPresence,
  FleetView,
  JobRequest,
  Log,
  QuotaLedger,
  SweepLeader,
  TakeoverFeed,
} from '../jobs/ports.js';

/**
 * This worker's share of the key's quota: its grant in the ledger, the promise its last
 * acknowledged heartbeat made (src/jobs/quota-promise.ts), and whether its presence lapsed.
 * The rate limiter follows them: the grant bounds the window and sizes the reserve, the promise
 * is a send allowance. Created before the heartbeat (which carries and acknowledges the
 * promise); the fleet loop changes it.
 */
export interface QuotaShare {
  /** Requests per window the ledger grants this worker (0 until it does, and after a lapse). */
  readonly grant: number;
  /** The limiter's requests in the window now, in flight included. */
  readonly used: number;
  /**
   * The heartbeat's fields: the grant, and the promise: the most calls in any window from this
   * beat on (`reserved`, so less the calls in the window now, the sends allowed until the next
   * beat) and when those in it leave (`leaving`). Sends stay under it from now on.
   */
  beat(): { share: number; reserved: number; leaving: Leaving };
  /** A beat's fields were acknowledged: its allowance is in force until the next one. */
  acknowledged(sent: Record<string, unknown>): void;
  /** The worker is alive in its own view again: the ledger's grants apply. */
  rejoin(): void;
  /** Lowers the grant at once to `fair` if above it: what is in the window then bounds what drains. */
  lower(fair: number): void;
  /** The grant the ledger settled on. */
  granted(limit: number): void;
  /** Others may have taken this worker's share: none until the ledger grants it again. */
  lapse(): void;
  /** A call waits for the send allowance alone: a beat now would raise it. */
  heldBack(): boolean;
  /** Told each time a call starts waiting for the allowance alone (the fleet loop beats). */
  onHeldBack(fn: () => void): void;
  /** Room kept for `calls` of jobs taken over from a dead worker (`TAKEOVER_HOLD_MS`). */
  holdForTakeover(calls: number): void;
}

/** CLIPDROP_RPM is the fleet's: the limiter sends nothing until the ledger grants a share. */
export function createQuotaShare(limiter: CallLimiter): QuotaShare {
  let grant = 0;
  let lapsed = false;
  /** Sends stop at this count: the allowance of the beat last acknowledged or in the air. */
  let untilSends = 0;
  let held = false;
  let tell: () => void = () => undefined;
  /**
   * The beat last built, and its allowance. The heartbeat builds one beat at a time and hands
   * its fields back on the ack (maybe copied, beside other fields): matched on what it promised.
   */
  let pending: { reserved: number; share: number; until: number } | undefined;
  const apply = () => limiter.setLimit(lapsed ? 0 : grant, lapsed ? 0 : grant);
  const allow = (until: number) => {
    untilSends = until;
    held = false;
    limiter.setAllowance(until, () => {
      held = true;
      tell();
    });
  };
  apply();
  allow(0);
  return {
    get grant() {
      return grant;
    },
    get used() {
      return limiter.used;
    },
    beat() {
      const used = limiter.used;
      // Never under what is in the window: the steps a dead worker drains by start there.
      const reserved = Math.max(used, reservation(grant, used));
      const until = limiter.sends + reserved - used;
      // While this beat is in the air the others may already read it: keep to it now.
      if (until < untilSends) allow(until);
      pending = { reserved, share: grant, until };
      return { share: grant, reserved, leaving: leavingOf(limiter.leavingIn()) };
    },
    acknowledged(sent) {
      if (pending === undefined) return;
      if (sent.reserved !== pending.reserved || sent.share !== pending.share) return;
      allow(pending.until);
      pending = undefined;
    },
    rejoin() {
      lapsed = false;
    },
    lower(fair) {
      if (fair >= grant) return;
      grant = fair;
      apply();
    },
    granted(limit) {
      grant = limit;
      apply();
    },
    lapse() {
      lapsed = true;
      grant = 0;
      apply();
    },
    heldBack: () => held,
    onHeldBack(fn) {
      tell = fn;
    },
    holdForTakeover(calls) {
      limiter.holdForTakeover(calls, TAKEOVER_HOLD_MS);
    },
  };
}

export interface FleetPorts {
  presence: FleetPresence;
  ledger: QuotaLedger;
  leader: SweepLeader;
  feed: TakeoverFeed;
  share: QuotaShare;
}

export interface FleetLoopOptions {
  workerId: string;
  /** The key's requests per window, for the whole fleet (CLIPDROP_RPM). */
  rpm: number;
  /** The quota's window (the ledger's). */
  windowMs: number;
  /** PRESENCE_TIMEOUT_MS; the fleet margin follows from it. */
  presenceTimeoutMs: number;
  log: Log;
  /** Each read of the fleet, as its handling starts (Firestore answered: readiness). */
  onView?: () => void;
}

export interface FleetLoop {
  /** This worker's dealt part of the jobs of workers newly seen dead. */
  readonly takeovers$: Observable<JobRequest>;
  /**
   * Follows the fleet's reads and this worker's lapses, and starts the heartbeat; resolves
   * once the first beat is acknowledged and the fleet read once (a claim needs coverage).
   */
  start(): Promise<void>;
  /**
   * Leaves the fleet cleanly: stops following it, then the sweep lease and the quota share pass
   * on and the heartbeat goes. A failure is logged (the lease and the share run out anyway).
   */
  leave(): Promise<void>;
}

/**
 * After every read of the fleet: take over this worker's part of the jobs of workers newly
 * seen dead, settle its quota share, take or keep the sweep lease and, leading, forget workers
 * long dead. A lapse of this worker's presence drops its share at once. Rules: src/jobs/fleet.ts.
 */
export function createFleetLoop(ports: FleetPorts, opts: FleetLoopOptions): FleetLoop {
  const { presence, ledger, leader, feed, share } = ports;
  const { workerId: owner, log } = opts;
  const margin = fleetMarginMs(opts.presenceTimeoutMs);
  const takeovers$ = new Subject<JobRequest>();
  /** Workers seen dead whose jobs were looked for already. */
  const handledDead = new Set<string>();
  /** The grant and fleet size last logged (`quota.share`). */
  let shown = { limit: -1, workers: 0 };
  let subscriptions: Subscription[] | undefined;
  share.onHeldBack(() => presence.nudge(true));

  const takeOver = async (dead: string[], live: string[]): Promise<void> => {
    const held = await feed.findHeldBy(dead, Date.now());
    const jobs = held.map((h) => ({ id: h.request.characterId, callsLeft: callsLeft(h.status) }));
    const mine = new Set(takeoverShare(jobs, live, owner));
    log.warn('fleet.worker_dead', { workers: dead, jobs: held.length, takingOver: mine.size });
    // Before the ledger raises this worker's share: that room is theirs first.
    share.holdForTakeover(jobs.filter((j) => mine.has(j.id)).reduce((n, j) => n + j.callsLeft, 0));
    for (const { request } of held) if (mine.has(request.characterId)) takeovers$.next(request);
  };

  const onView = async (view: FleetView): Promise<void> => {
    opts.onView?.();
    const seen = new Map<string, PresenceSeen>(
      view.workers.map((w) => [
        w.workerId,
        {
          expiresAt: w.expiresAt,
          alive: view.alive.has(w.workerId),
          ...(w.reserved === undefined ? {} : { reserved: w.reserved }),
          ...(w.leaving === undefined ? {} : { leaving: w.leaving }),
        },
      ]),
    );
    // Back (a partition healed) or forgotten: a later death of that id is a new one.
    const listed = new Set(view.workers.map((w) => w.workerId));
    for (const id of handledDead) if (!listed.has(id) || view.alive.has(id)) handledDead.delete(id);
    if (view.alive.has(owner)) {
      // Every survivor looks for the dead's jobs at once (one small query per death), before
      // the ledger: a taken-over job's user has waited longest (docs/fleet.md).
      const dead = view.workers
        .map((w) => w.workerId)
        .filter((id) => !view.alive.has(id) && !handledDead.has(id));
      if (dead.length > 0) {
        dead.forEach((id) => handledDead.add(id));
        // Awaited: the settle below may free the dead worker's share, held for its jobs first.
        await takeOver(dead, [...view.alive]).catch((err: unknown) => {
          // The sweep finds them later (orphaned jobs are claimable).
          log.warn('fleet.takeover_query_failed', { detail: describe(err) });
        });
      }
      share.rejoin();
      share.lower(fairShare(opts.rpm, [...view.alive], owner));
      const { limit, target } = await ledger.settle(seen, share.used);
      // When the grant or the fleet's size changes (the fair share is lowered before the
      // settle, so the grant alone may not show a worker joining).
      if (limit !== shown.limit || view.alive.size !== shown.workers) {
        shown = { limit, workers: view.alive.size };
        log.info('quota.share', { limit, target, workers: view.alive.size });
      }
      share.granted(limit);
      // Raise the allowance now rather than at the next beat.
      if (share.heldBack()) presence.nudge(true);
    }
    const leading = await leader.tick((id) => view.alive.has(id));
    if (!leading) return;
    // Documents of workers dead for longer than a quota window: nothing refers to them now.
    for (const w of view.workers) {
      if (!view.alive.has(w.workerId) && view.at > w.expiresAt + opts.windowMs + 2 * margin) {
        await presence.forget(w.workerId);
      }
    }
  };

  return {
    takeovers$: takeovers$.asObservable(),
    start() {
      subscriptions ??= [
        presence.views$
          .pipe(
            // A failed settle or tick is retried at the next read of the fleet.
            concatMap((view) =>
              from(
                onView(view).catch((err: unknown) =>
                  log.warn('fleet.view_failed', { detail: describe(err) }),
                ),
              ),
            ),
          )
          .subscribe(),
        presence.fence.lapses$.subscribe(() => {
          share.lapse();
          // The others may see it dead and take the lease: it stops sweeping at once.
          leader
            .resign()
            .catch((err: unknown) => log.warn('fleet.resign_failed', { detail: describe(err) }));
        }),
      ];
      return presence.start();
    },
    async leave() {
      subscriptions?.forEach((s) => s.unsubscribe());
      const leaving = await Promise.allSettled([
        leader.resign(),
        ledger.leave(share.used),
        presence.stop(),
      ]);
      for (const r of leaving) {
        if (r.status === 'rejected') log.warn('fleet.leave_failed', { detail: describe(r.reason) });
      }
    },
  };
}
