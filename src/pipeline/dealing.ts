import {
  asyncScheduler,
  interval,
  Observable,
  Subscription,
  type MonoTypeOperatorFunction,
  type SchedulerLike,
} from 'rxjs';
import { dealOrder, HANDOFF_AFTER_MS, HANDOFF_ANYWAY_MS, handoffAfterMs } from '../jobs/deal.js';
import type { FleetView, JobRequest, Log } from '../jobs/ports.js';

export interface DealingOptions {
  workerId: string;
  /** The fleet after each read; the live set is its `alive`, plus this worker always. */
  views$: Observable<FleetView>;
  /** Characters the listener saw stop being claimable (RequestFeed.taken$). */
  taken$: Observable<string>;
  /** Whether this worker would start one more job at once (a click handed off takes a slot). */
  hasFreeSlot: () => boolean;
  log: Log;
  scheduler?: SchedulerLike;
  /** How often a click past its handoff delay looks for a free slot again. */
  recheckMs?: number;
}

export interface Dealing {
  /** The stage on the request stream, before the worker. */
  readonly deal: MonoTypeOperatorFunction<JobRequest>;
  /**
   * False for a listener request whose document the listener saw taken since it was seen (by
   * another worker, while this one had it queued): its slot skips it, no claim, no download.
   */
  readonly stillOpen: (request: JobRequest) => boolean;
}

/** A click dealt to another worker, held here in case that worker cannot take it. */
interface Held {
  request: JobRequest;
  /** When first seen (the scheduler's clock): the handoff delay counts from here. */
  since: number;
  dealtTo: string;
  /** This worker's place in the click's order (1: the runner-up). */
  position: number;
}

/**
 * One replica per click (src/jobs/deal.ts, docs/fleet.md). A request from the listener (a
 * click, a released job) or the leader's sweep dealt to this worker passes at once: the worker
 * queues it even when busy, and claims and downloads as before. One dealt to another live
 * worker is held, with no claim and no download, until:
 * - the listener sees its document taken (claimed, or no longer requested): dropped;
 * - a read of the fleet re-deals it to this worker (its worker is gone): passed at once;
 * - it waited its handoff delay unclaimed and this worker has a free slot, or waited
 *   HANDOFF_ANYWAY_MS: passed.
 * Takeovers (a dead worker's jobs, a lease run out) pass untouched: they are dealt already
 * (`takeoverShare`), or found by the one sweeping worker.
 */
export function createDealing(opts: DealingOptions): Dealing {
  const me = opts.workerId;
  const scheduler = opts.scheduler ?? asyncScheduler;
  const recheckMs = opts.recheckMs ?? HANDOFF_AFTER_MS / 8;
  /** Characters the listener last saw claimable (not taken since). */
  const open = new Set<string>();

  const deal = (requests$: Observable<JobRequest>) =>
    new Observable<JobRequest>((subscriber) => {
      const subscription = new Subscription();
      const held = new Map<string, Held>();
      let live: readonly string[] = [me];
      let ticking: Subscription | undefined;

      // A worker that released a job gave it up (leaving, or its presence lapsed): the job is
      // dealt among the others, by every worker alike (the releaser included), unless alone.
      const liveFor = (r: JobRequest) => {
        const others = live.filter((id) => id !== r.releasedBy);
        return others.length > 0 ? others : live;
      };

      const forget = (characterId: string) => {
        held.delete(characterId);
        if (held.size > 0) return;
        ticking?.unsubscribe();
        ticking = undefined;
      };

      const pass = (request: JobRequest) => {
        forget(request.characterId);
        subscriber.next(request);
      };

      const handOff = (h: Held, reason: 'dead' | 'waited') => {
        opts.log.info('deal.handoff', {
          characterId: h.request.characterId,
          reason,
          dealtTo: h.dealtTo,
          waitedMs: scheduler.now() - h.since,
        });
        // Its dealt worker may be claiming it now: this one claims before it downloads.
        pass(reason === 'waited' ? { ...h.request, handedOver: true } : h.request);
      };

      /** The request dealt over the live set: to whom, and this worker's place in its order. */
      const dealOf = (request: JobRequest) => {
        const order = dealOrder(request.characterId, liveFor(request));
        return { dealtTo: order[0] ?? me, position: order.indexOf(me) };
      };

      const hold = (request: JobRequest, since: number, dealt: ReturnType<typeof dealOf>) => {
        held.set(request.characterId, { request, since, ...dealt });
        ticking ??= interval(recheckMs, scheduler).subscribe(() => handOffWaited());
        opts.log.debug('deal.held', { characterId: request.characterId, dealtTo: dealt.dealtTo });
      };

      /**
       * Held clicks past their delay, oldest first, while this worker has a free slot; any
       * held past HANDOFF_ANYWAY_MS, slot or not.
       */
      const handOffWaited = () => {
        const now = scheduler.now();
        for (const h of [...held.values()]) {
          const waited = now - h.since;
          if (waited >= HANDOFF_ANYWAY_MS) handOff(h, 'waited');
          else if (waited >= handoffAfterMs(h.position) && opts.hasFreeSlot()) handOff(h, 'waited');
        }
      };

      subscription.add(
        opts.views$.subscribe({
          next: (view) => {
            const next = [...new Set([...view.alive, me])].sort();
            if (next.join() !== live.join()) opts.log.debug('deal.fleet', { live: next });
            live = next;
            for (const h of [...held.values()]) {
              const dealt = dealOf(h.request);
              // By rendezvous a held click moves to this worker only when its worker is gone.
              if (dealt.dealtTo === me) handOff(h, 'dead');
              else Object.assign(h, dealt);
            }
          },
          error: (err: unknown) => subscriber.error(err),
        }),
      );
      subscription.add(
        opts.taken$.subscribe({
          next: (characterId) => {
            open.delete(characterId);
            const h = held.get(characterId);
            if (h === undefined) return;
            opts.log.debug('deal.taken', { characterId, dealtTo: h.dealtTo });
            forget(characterId);
          },
          error: (err: unknown) => subscriber.error(err),
        }),
      );
      subscription.add(
        requests$.subscribe({
          next: (request) => {
            // Takeovers are dealt already (takeoverShare), and so is a job whose lease ran out.
            if (request.takeover === true) return subscriber.next(request);
            // The listener or the sweep just saw it claimable.
            open.add(request.characterId);
            const dealt = dealOf(request);
            if (dealt.dealtTo === me) return pass(request);
            const before = held.get(request.characterId);
            // A sweep's request (the leader's query sees every waiting click) is dealt like a
            // click: the leader does not pull the fleet's backlog into its own queue. It does not
            // replace a held listener request, which carries the version a claim is sent on.
            if (before !== undefined && request.origin === 'sweep') return;
            // A newer snapshot of a held click replaces it; its wait counts from the first.
            hold(request, before?.since ?? scheduler.now(), dealt);
          },
          error: (err: unknown) => subscriber.error(err),
          complete: () => subscriber.complete(),
        }),
      );
      return () => {
        subscription.unsubscribe();
        ticking?.unsubscribe();
        held.clear();
      };
    });

  return {
    deal,
    stillOpen: (request) => request.takeover === true || open.has(request.characterId),
  };
}
