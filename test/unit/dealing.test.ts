import { NEVER, of, startWith, tap, type Observable } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import { dealOrder } from '../../src/jobs/deal.js';
import type { FleetView, JobRequest } from '../../src/jobs/ports.js';
import { createDealing } from '../../src/pipeline/dealing.js';
import { recordingLog, type RecordingLog } from './fakes.js';

const ME = 'a';
const FLEET = ['a', 'b', 'c'];

/** The first character whose order over the three workers is `order`. */
function characterWith(order: readonly string[], avoid: readonly string[] = []): string {
  for (let i = 0; i < 10_000; i++) {
    const id = `char-${i}`;
    if (!avoid.includes(id) && dealOrder(id, FLEET).join() === order.join()) return id;
  }
  throw new Error(`no character ordered ${order.join()}`);
}

const click = (characterId: string, version = 1): JobRequest => ({
  characterId,
  origin: 'listener',
  seenAt: version,
  document: { version },
});

const view = (alive: readonly string[]): FleetView => ({
  at: 0,
  workers: [],
  alive: new Set(alive),
});

/** Marble frames with the handoff mark left out (its own test below checks it). */
const unmarked = (frames: unknown): unknown =>
  Array.isArray(frames)
    ? frames.map((f: { notification?: { value?: unknown } }) => {
        const value = f.notification?.value as (JobRequest & object) | undefined;
        if (!value || typeof value !== 'object' || !('handedOver' in value)) return f;
        const request: Record<string, unknown> = { ...value };
        delete request.handedOver;
        return { ...f, notification: { ...f.notification, value: request } };
      })
    : frames;

function scheduler() {
  return new TestScheduler((actual, expected) => expect(unmarked(actual)).toEqual(expected));
}

interface Setup {
  views$?: Observable<FleetView>;
  taken$?: Observable<string>;
  hasFreeSlot?: () => boolean;
}

function dealingOn(ts: TestScheduler, log: RecordingLog, setup: Setup) {
  return createDealing({
    workerId: ME,
    views$: setup.views$ ?? NEVER,
    taken$: setup.taken$ ?? NEVER,
    hasFreeSlot: setup.hasFreeSlot ?? (() => true),
    log,
    scheduler: ts,
    recheckMs: 250,
  });
}

const mine = characterWith(['a', 'b', 'c']);
const runnerUp = characterWith(['b', 'a', 'c']); // dealt to b, a next
const last = characterWith(['b', 'c', 'a']); // dealt to b, a last
const toC = characterWith(['c', 'a', 'b']);

describe('the dealing stage (one replica per click)', () => {
  it('a worker alone takes every click at once', () => {
    const ts = scheduler();
    ts.run(({ hot, expectObservable }) => {
      const d = dealingOn(ts, recordingLog(), { views$: of(view([ME])) });
      const requests = { m: click(mine), r: click(runnerUp), l: click(last), c: click(toC) };
      expectObservable(hot('-mrlc', requests).pipe(d.deal), '^ 10s !').toBe('-mrlc', requests);
    });
  });

  it('before any read of the fleet, everything is dealt to itself', () => {
    const ts = scheduler();
    ts.run(({ hot, expectObservable }) => {
      const d = dealingOn(ts, recordingLog(), {});
      const requests = { m: click(mine), r: click(runnerUp) };
      expectObservable(hot('-mr', requests).pipe(d.deal), '^ 10s !').toBe('-mr', requests);
    });
  });

  it('passes its own clicks at once; holds another live worker’s, and drops it when taken', () => {
    const ts = scheduler();
    const log = recordingLog();
    ts.run(({ hot, expectObservable }) => {
      const d = dealingOn(ts, log, {
        views$: of(view(FLEET)),
        taken$: hot('---- 1s t', { t: runnerUp }),
      });
      const requests = { m: click(mine), r: click(runnerUp) };
      // Never passed: taken 1 s after it was seen, before its handoff delay.
      expectObservable(hot('-rm', requests).pipe(d.deal), '^ 10s !').toBe('--m', requests);
    });
    expect(log.entries.filter((e) => e.message === 'deal.handoff')).toEqual([]);
    expect(log.entries.find((e) => e.message === 'deal.taken')?.fields).toEqual({
      characterId: runnerUp,
      dealtTo: 'b',
    });
  });

  it('the runner-up takes a click left unclaimed for HANDOFF_AFTER_MS; the others after twice that', () => {
    const ts = scheduler();
    const log = recordingLog();
    ts.run(({ hot, expectObservable }) => {
      const d = dealingOn(ts, log, { views$: of(view(FLEET)) });
      const requests = { r: click(runnerUp), l: click(last) };
      expectObservable(hot('(rl)', requests).pipe(d.deal), '^ 10s !').toBe(
        '2s r 1999ms l',
        requests,
      );
    });
    expect(log.entries.filter((e) => e.message === 'deal.handoff')).toEqual([
      {
        level: 'info',
        message: 'deal.handoff',
        fields: { characterId: runnerUp, reason: 'waited', dealtTo: 'b', waitedMs: 2_000 },
      },
      {
        level: 'info',
        message: 'deal.handoff',
        fields: { characterId: last, reason: 'waited', dealtTo: 'b', waitedMs: 4_000 },
      },
    ]);
  });

  it('a click taken after waiting is marked handed over (it claims before it downloads); one re-dealt from the dead is not', () => {
    const passed: JobRequest[] = [];
    const ts = new TestScheduler(() => undefined);
    ts.run(({ hot, expectObservable }) => {
      const d = dealingOn(ts, recordingLog(), { views$: of(view(FLEET)) });
      const requests = { r: click(runnerUp) };
      expectObservable(
        hot('r', requests).pipe(
          d.deal,
          tap((r) => passed.push(r)),
        ),
        '^ 10s !',
      );
    });
    expect(passed.map((r) => r.handedOver)).toEqual([true]);

    const redealt: JobRequest[] = [];
    const ts2 = new TestScheduler(() => undefined);
    ts2.run(({ hot, cold, expectObservable }) => {
      const views$ = cold('a 99ms b', { a: view(FLEET), b: view(['a', 'c']) });
      const d = dealingOn(ts2, recordingLog(), { views$ });
      expectObservable(
        hot('r', { r: click(runnerUp) }).pipe(
          d.deal,
          tap((r) => redealt.push(r)),
        ),
        '^ 10s !',
      );
    });
    expect(redealt).toHaveLength(1);
    expect(redealt[0]?.handedOver).toBeUndefined();
  });

  it('a click past its delay waits for a free slot, and takes the first one, oldest first', () => {
    const ts = scheduler();
    let free = 0;
    ts.run(({ hot, expectObservable }) => {
      ts.schedule(() => free++, 5_100); // a job ends: one slot free
      ts.schedule(() => free++, 6_900); // another
      const d = dealingOn(ts, recordingLog(), {
        views$: of(view(FLEET)),
        hasFreeSlot: () => free > 0,
      });
      const other = characterWith(['b', 'a', 'c'], [runnerUp]);
      const requests = { r: click(runnerUp), o: click(other) };
      // Each click handed off takes its slot (the worker accepts it at once).
      const passed = hot('r 99ms o', requests).pipe(
        d.deal,
        tap(() => free--),
      );
      // Rechecked every 250 ms: the first tick after each slot frees.
      expectObservable(passed, '^ 10s !').toBe('5250ms r 1749ms o', requests);
    });
  });

  it('a click dealt to a worker seen dead is re-dealt at once: taken here, or left to its new worker', () => {
    const ts = scheduler();
    const log = recordingLog();
    ts.run(({ hot, cold, expectObservable }) => {
      const d = dealingOn(ts, log, {
        views$: cold('500ms w', { w: view(['a', 'c']) }).pipe(startWith(view(FLEET))),
        // Busy until 3 s: no handoff for waiting before then.
        hasFreeSlot: () => ts.now() >= 3_000,
      });
      const requests = { r: click(runnerUp), l: click(last) };
      // runnerUp (b, a, c) → a at once when b dies; last (b, c, a) → c, with a its runner-up
      // now: a takes it only once it waited 2 s and a has a slot.
      expectObservable(hot('(rl)', requests).pipe(d.deal), '^ 10s !').toBe(
        '500ms r 2499ms l',
        requests,
      );
    });
    expect(log.entries.filter((e) => e.message === 'deal.handoff').map((e) => e.fields)).toEqual([
      { characterId: runnerUp, reason: 'dead', dealtTo: 'b', waitedMs: 500 },
      { characterId: last, reason: 'waited', dealtTo: 'c', waitedMs: 3_000 },
    ]);
  });

  it('a worker joining takes only the clicks it wins: the others stay where they were', () => {
    const ts = scheduler();
    ts.run(({ hot, expectObservable }) => {
      const d = dealingOn(ts, recordingLog(), {
        views$: of(view([...FLEET, 'd'])),
        hasFreeSlot: () => false,
      });
      const own = [...Array(200).keys()]
        .map((i) => `join-${i}`)
        .filter((id) => dealOrder(id, FLEET)[0] === ME);
      const stays = own.filter((id) => dealOrder(id, [...FLEET, 'd'])[0] === ME);
      expect(stays.length).toBeLessThan(own.length);
      const values = Object.fromEntries(
        own.map((id, i) => [String.fromCharCode(0x100 + i), click(id)]),
      );
      const kept = Object.fromEntries(
        Object.entries(values).filter(([, r]) => stays.includes(r.characterId)),
      );
      const marble = (keys: string[]) => `(${keys.join('')})`;
      expectObservable(hot(marble(Object.keys(values)), values).pipe(d.deal), '^ 10s !').toBe(
        marble(Object.keys(kept)),
        kept,
      );
    });
  });

  it('a newer snapshot of a held click replaces it; its wait counts from the first', () => {
    const ts = scheduler();
    ts.run(({ hot, expectObservable }) => {
      const d = dealingOn(ts, recordingLog(), { views$: of(view(FLEET)) });
      const requests = { r: click(runnerUp, 1), s: click(runnerUp, 2) };
      expectObservable(hot('r 999ms s', requests).pipe(d.deal), '^ 10s !').toBe('2s s', requests);
    });
  });

  it('a job released by a worker that is leaving is dealt among the others', () => {
    const ts = scheduler();
    ts.run(({ hot, expectObservable }) => {
      const views$ = of(view(FLEET));
      const busy = dealingOn(ts, recordingLog(), { views$, hasFreeSlot: () => false });
      const released = { ...click(runnerUp), releasedBy: 'b' };
      const releasedToC = { ...click(toC), releasedBy: 'b' };
      expectObservable(
        hot('-r-c', { r: released, c: releasedToC }).pipe(busy.deal),
        '^ 10s !',
      ).toBe('-r', { r: released });
      // One this worker released (its presence lapsed, or a restart with a fixed WORKER_ID) is
      // dealt among the others by it too: it takes it back only as any other worker would.
      const d = dealingOn(ts, recordingLog(), { views$ });
      const byMe = { ...click(runnerUp, 2), releasedBy: ME };
      expectObservable(hot('-x', { x: byMe }).pipe(d.deal), '^ 10s !').toBe('- 4s x', {
        x: byMe,
      });
    });
  });

  it("takeovers pass untouched; the sweep's clicks are dealt like the listener's", () => {
    const ts = scheduler();
    ts.run(({ hot, expectObservable }) => {
      const d = dealingOn(ts, recordingLog(), {
        views$: of(view(FLEET)),
        hasFreeSlot: () => false,
      });
      const requests: Record<string, JobRequest> = {
        s: { characterId: runnerUp, origin: 'sweep', seenAt: 0 },
        t: { characterId: toC, origin: 'takeover', seenAt: 0, takeover: true },
        m: { characterId: mine, origin: 'sweep', seenAt: 0 },
      };
      // The leader's sweep sees every waiting click: it keeps only those dealt to it.
      expectObservable(hot('-stm', requests).pipe(d.deal), '^ 10s !').toBe('--tm', requests);
    });
  });

  it('a click still unclaimed after HANDOFF_ANYWAY_MS is taken without a free slot', () => {
    const ts = scheduler();
    ts.run(({ hot, expectObservable }) => {
      const log = recordingLog();
      // Its worker is alive but not claiming (draining, its listener reconnecting).
      const d = dealingOn(ts, log, { views$: of(view(FLEET)), hasFreeSlot: () => false });
      const requests = { x: click(toC) };
      expectObservable(hot('-x', requests).pipe(d.deal), '^ 30s !').toBe('- 20s x', requests);
    });
  });

  it('stillOpen: a listener request whose document was taken since it was seen is not', () => {
    const ts = scheduler();
    const checks: boolean[] = [];
    ts.run(({ hot, expectObservable }) => {
      const d = dealingOn(ts, recordingLog(), { taken$: hot('--t', { t: mine }) });
      const first = click(mine, 1);
      const again = click(mine, 2);
      ts.schedule(() => checks.push(d.stillOpen(first)), 1); // seen, not taken
      ts.schedule(() => checks.push(d.stillOpen(first)), 3); // taken since: skip it
      const takeover = { ...first, origin: 'takeover' as const, takeover: true };
      ts.schedule(() => checks.push(d.stillOpen(takeover)), 4); // dealt already: never skipped
      ts.schedule(() => checks.push(d.stillOpen(again)), 6); // clicked again: open
      const requests = { f: first, a: again };
      expectObservable(hot('f----a', requests).pipe(d.deal), '^ 10ms !').toBe('f----a', requests);
    });
    expect(checks).toEqual([true, false, true, true]);
  });
});
