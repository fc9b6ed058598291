import { Timestamp, type DocumentData } from 'firebase-admin/firestore';
import { afterEach, describe, expect, it } from 'vitest';
import { createConsoleFeed, type ConsoleFeed } from '../../src/console/feeds.js';
import type { ConsoleState } from '../../src/console/state.js';
import type { Log } from '../../src/jobs/ports.js';
import { startStack, type Stack } from '../support/stack.js';

const HOUR = 3_600_000;

const silent: Log = {
  error: () => undefined,
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
  child: () => silent,
};

/**
 * The console's Queue against the real emulator: counts that follow the lists within seconds
 * (not the 30 s timer), the chart of jobs ended per hour from count queries, and the deepest
 * per-user queues.
 */
describe("the console's Queue", () => {
  let stack: Stack | undefined;
  let feed: ConsoleFeed | undefined;

  afterEach(async () => {
    feed?.close();
    feed = undefined;
    await stack?.close();
    stack = undefined;
  });

  const ended = (status: 'complete' | 'failed', userId: string, atMs: number): DocumentData => ({
    meta: { userId },
    visuals: {
      showcaseProcessingStatus: status,
      ...(status === 'complete'
        ? { showcaseJob: { state: 'complete', finishedAt: Timestamp.fromMillis(atMs) } }
        : {
            showcaseJob: { state: 'failed', finishedAt: Timestamp.fromMillis(atMs) },
            showcaseProcessingError: {
              code: 'SOURCE_UNREACHABLE',
              message: 'x',
              stage: 'removing-background',
              at: Timestamp.fromMillis(atMs),
            },
          }),
    },
  });
  const clicked = (userId: string): DocumentData => ({
    meta: { userId },
    visuals: { showcaseProcessingStatus: 'removing-background' },
  });

  /** Resolves with the first state pushed that passes `ok`. */
  function stateWhere(f: ConsoleFeed, ok: (s: ConsoleState) => boolean, timeoutMs = 30_000) {
    return new Promise<ConsoleState>((resolve, reject) => {
      let last: ConsoleState | undefined;
      // eslint-disable-next-line prefer-const
      let stop: (() => void) | undefined;
      const timer = setTimeout(() => {
        stop?.();
        reject(new Error(`no such state in ${timeoutMs} ms; last: ${JSON.stringify(last?.queue)}`));
      }, timeoutMs);
      stop = f.subscribe((s) => {
        last = s;
        if (!ok(s)) return;
        clearTimeout(timer);
        queueMicrotask(() => stop?.());
        resolve(s);
      });
    });
  }

  it('counts follow the lists within seconds; the chart has each hour’s jobs; deepest users first', async () => {
    const s = (stack = await startStack());
    const chars = s.db.collection('characters');
    // Hours are counted on the clock: never start within a minute of one turning.
    const left = HOUR - (Date.now() % HOUR);
    if (left < 60_000) await new Promise((r) => setTimeout(r, left + 1_000));
    const now = Date.now();
    const thisHour = Math.floor(now / HOUR) * HOUR;
    // Two hours ago: 3 completed, 1 failed; five hours ago: 2 failed; 13 hours ago: outside.
    const batch = s.db.batch();
    for (let i = 0; i < 3; i++)
      batch.set(chars.doc(`old-ok-${i}`), ended('complete', 'u', thisHour - 2 * HOUR + i));
    batch.set(chars.doc('old-bad-0'), ended('failed', 'u', thisHour - 2 * HOUR + 10));
    for (let i = 0; i < 2; i++)
      batch.set(chars.doc(`older-bad-${i}`), ended('failed', 'u', thisHour - 5 * HOUR + i));
    batch.set(chars.doc('ancient'), ended('complete', 'u', thisHour - 13 * HOUR));
    // Active: carol 3 clicks, bob 1.
    for (let i = 0; i < 3; i++) batch.set(chars.doc(`carol-${i}`), clicked('carol'));
    batch.set(chars.doc('bob-0'), clicked('bob'));
    await batch.commit();

    // The timer's count is far away: every change below must come from the listeners.
    const f = (feed = createConsoleFeed({
      db: s.db,
      characters: chars,
      workersCollection: 'showcaseWorkers',
      fleetCollection: 'showcaseFleet',
      presenceTimeoutMs: 30_000,
      rpm: 60,
      dailyCreditBudget: 0,
      readOnly: false,
      log: silent,
      countEveryMs: 600_000,
    }));

    const first = await stateWhere(
      f,
      (st) => st.queue.hourly !== null && st.queue.counts !== null && st.active.length === 4,
    );
    expect(first.queue.counts).toMatchObject({
      'removing-background': 4,
      complete: 4,
      failed: 3,
    });
    const hourly = first.queue.hourly ?? [];
    expect(hourly).toHaveLength(12);
    expect(hourly.map((h) => h.hour)).toEqual(
      Array.from({ length: 12 }, (_, i) => thisHour - (11 - i) * HOUR),
    );
    const bar = (ms: number) => hourly.find((h) => h.hour === ms);
    expect(bar(thisHour - 2 * HOUR)).toEqual({ hour: thisHour - 2 * HOUR, complete: 3, failed: 1 });
    expect(bar(thisHour - 5 * HOUR)).toEqual({ hour: thisHour - 5 * HOUR, complete: 0, failed: 2 });
    expect(hourly.reduce((n, h) => n + h.complete + h.failed, 0)).toBe(6);
    expect(first.queue.users).toEqual([
      { userId: 'carol', waiting: 3, running: 0 },
      { userId: 'bob', waiting: 1, running: 0 },
    ]);

    // One of carol's ends complete now, one of bob's fails now: tiles and this hour's bar follow.
    await chars.doc('carol-0').set(ended('complete', 'carol', Date.now()));
    await chars.doc('bob-0').set(ended('failed', 'bob', Date.now()));
    const after = await stateWhere(
      f,
      (st) =>
        st.queue.counts?.complete === 5 &&
        st.queue.counts.failed === 4 &&
        st.queue.hourly?.at(-1)?.complete === 1 &&
        st.queue.hourly.at(-1)?.failed === 1,
    );
    expect(after.queue.counts?.['removing-background']).toBe(2);
    expect(after.queue.users).toEqual([{ userId: 'carol', waiting: 2, running: 0 }]);
  });
});
