import {
  asyncScheduler,
  interval,
  Observable,
  Subscription,
  type MonoTypeOperatorFunction,
  type SchedulerLike,
} from 'rxjs';
import { dealOrder, HANDOFF_AFTER_MS, handoffAfterMs } from '../jobs/deal.js';
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
 * click, a released job) dealt to this worker passes at once: the worker queues it even when
 * busy, and claims and downloads as before. One dealt to another live worker is held, with no
 * claim and no download, until:
 * - the listener sees its document taken (claimed, or no longer requested): dropped;
 * - a read of the fleet re-deals it to this worker (its worker is gone): passed at once;
 * - it waited its handoff delay unclaimed and this worker has a free slot: passed.
 * Sweep and takeover requests pass untouched: the sweep runs on one worker, takeovers are
 * dealt already (`takeoverShare`).
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

      // A worker that released a job is leaving: the job is dealt among the others.
      const liveFor = (r: JobRequest) =>
        r.releasedBy !== undefined && r.releasedBy !== me
          ? live.filter((id) => id !== r.releasedBy)
          : live;

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
        pass(h.request);
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

      /** Held clicks past their delay, oldest first, while this worker has a free slot. */
      const handOffWaited = () => {
        const now = scheduler.now();
        for (const h of [...held.values()]) {
          if (now - h.since < handoffAfterMs(h.position)) continue;
          if (!opts.hasFreeSlot()) return;
          handOff(h, 'waited');
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
            if (request.origin !== 'listener') return subscriber.next(request);
            open.add(request.characterId);
            const dealt = dealOf(request);
            if (dealt.dealtTo === me) return pass(request);
            // A newer snapshot of a held click replaces it; its wait counts from the first.
            hold(request, held.get(request.characterId)?.since ?? scheduler.now(), dealt);
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
    stillOpen: (request) => request.origin !== 'listener' || open.has(request.characterId),
  };
}
