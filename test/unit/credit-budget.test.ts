import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  blockCredits,
  changeBlock,
  committedOf,
  parseBudget,
  type BudgetDoc,
  type BudgetStore,
} from '../../src/jobs/budget.js';
import { createIntake, createIntakeSwitch, type CreditHold } from '../../src/jobs/intake.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createCreditBudget, type CreditBudget } from '../../src/pipeline/credit-budget.js';
import { recordingLog, settle, type RecordingLog } from './fakes.js';

/**
 * The fleet's daily credit budget on a manual clock: the fake timers move `Date.now()`, which
 * is both the workers' monotonic clock and Firestore's (the in-memory document's read time).
 */

/** One document shared by the workers of a test, as Firestore would hold it. */
function memoryStore() {
  let data: Record<string, unknown> | undefined;
  const counts = { reads: 0, writes: 0 };
  /** Holds the next update's read until released (its round trip in the air). */
  let gate: Promise<void> | undefined;
  const store: BudgetStore = {
    read() {
      counts.reads += 1;
      const at = Date.now();
      return Promise.resolve({ doc: parseBudget(data, at), at });
    },
    async update(change) {
      const held = gate;
      gate = undefined;
      if (held) await held;
      counts.reads += 1;
      const at = Date.now();
      const doc = parseBudget(data, at);
      const next = change(doc, at);
      if (!next) return { doc, at, result: undefined };
      counts.writes += 1;
      data = { ...next.doc };
      return { doc: next.doc, at, result: next.result };
    },
  };
  return {
    store,
    counts,
    holdNextUpdate(): () => void {
      let release = () => undefined as void;
      gate = new Promise<void>((resolve) => (release = resolve));
      return () => release();
    },
    doc: () => parseBudget(data, Date.now()),
    setLimit: (limit: number) => (data = { ...(data ?? {}), limit }),
  };
}

type Memory = ReturnType<typeof memoryStore>;

function worker(memory: Memory, id: string, configured: number, log: RecordingLog) {
  const pauses = createIntakeSwitch();
  const budget = createCreditBudget(memory.store, {
    workerId: id,
    configured,
    rpm: 60,
    pauses,
    log,
    now: () => Date.now(),
    mono: () => Date.now(),
  });
  return { budget, pauses, intake: createIntake(pauses, budget) };
}

const signal = () => new AbortController().signal;

/** A job's admission, and whether it came yet (it must not before the budget has room). */
function admit(budget: CreditBudget) {
  const got: { hold?: CreditHold | undefined; done: boolean } = { done: false };
  const promise = budget.reserve(2, signal()).then((hold) => {
    got.hold = hold;
    got.done = true;
    return hold;
  });
  return Object.assign(got, { promise });
}

/** A job that made both its calls. */
function paidTwice(hold: CreditHold | undefined): void {
  for (let i = 0; i < 2; i++) {
    hold?.callStarted();
    hold?.callEnded(1);
  }
  hold?.end(false);
}

async function advance(ms: number): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms);
  await settle();
}

describe('the budget rule', () => {
  it('grants whole jobs from what the budget leaves, never past it', () => {
    const doc: BudgetDoc = { day: '2026-12-07', spent: 3, blocks: { other: 4 } };
    // 10 - 3 - 4 = 3 left: one job's 2, not 3 (a credit held for nothing is lost to others).
    const one = changeBlock(doc, 'me', 10, { used: 0, kept: 0, want: 6, unit: 2 });
    expect(one.granted).toBe(2);
    expect(one.doc.blocks).toEqual({ other: 4, me: 2 });
    // Used credits move to spent; the block becomes what is kept plus the grant.
    const two = changeBlock(one.doc, 'me', 10, { used: 2, kept: 0, want: 2, unit: 2 });
    expect(two.doc.spent).toBe(5);
    expect(two.granted).toBe(0);
    expect(committedOf(two.doc)).toBe(9);
  });

  it('starts a new UTC day from nothing, keeping the operator’s budget', () => {
    const data = { day: '2026-12-07', spent: 9, blocks: { w: 1 }, limit: 12 };
    expect(parseBudget(data, Date.parse('2026-12-07T23:59:59Z'))).toEqual(data);
    expect(parseBudget(data, Date.parse('2026-12-08T00:00:00Z'))).toEqual({
      day: '2026-12-08',
      spent: 0,
      blocks: {},
      limit: 12,
    });
  });

  it('takes about a second of the key’s calls at once: the fleet writes about once a second', () => {
    expect(blockCredits(60)).toBe(2);
    expect(blockCredits(600)).toBe(10);
    expect(blockCredits(3_000)).toBe(50);
  });
});

describe('a worker’s credits', () => {
  let log: RecordingLog;
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    vi.setSystemTime(Date.parse('2026-12-07T12:00:00Z'));
    log = recordingLog();
  });
  afterEach(() => vi.useRealTimers());

  it('jobs waiting together are served by one write, and writes are at least a second apart', async () => {
    const memory = memoryStore();
    const w = worker(memory, 'w1', 100, log);
    const jobs = [admit(w.budget), admit(w.budget), admit(w.budget)];
    await advance(0);
    expect(jobs.every((j) => j.done)).toBe(true);
    expect(memory.counts.writes).toBe(1);
    expect(memory.doc().blocks).toEqual({ w1: 6 });

    // More jobs at once: the next write waits for the gap.
    const more = [admit(w.budget), admit(w.budget)];
    await advance(500);
    expect(more.some((j) => j.done)).toBe(false);
    expect(memory.counts.writes).toBe(1);
    await advance(600);
    expect(more.every((j) => j.done)).toBe(true);
    expect(memory.counts.writes).toBe(2);
    expect(memory.doc().blocks).toEqual({ w1: 10 });
  });

  it('at the budget nothing more is held: the pause is set until credits come back', async () => {
    const memory = memoryStore();
    const a = worker(memory, 'a', 4, log);
    const b = worker(memory, 'b', 4, log);
    const [j1, j2] = [admit(a.budget), admit(a.budget)];
    await advance(0);
    expect(j1.done && j2.done).toBe(true);

    const waiting = admit(b.budget);
    await advance(10_000);
    expect(waiting.done).toBe(false);
    expect(b.pauses.holds('budget')).toBe(true);
    expect(b.intake.paused()?.reason).toBe('budget');
    // While paused b only reads: it never writes a block it could not use.
    expect(memory.doc().blocks).toEqual({ a: 4 });

    // j1 pays both calls; j2 finds its result cached and gives its 2 credits back.
    paidTwice(j1.hold);
    j2.hold?.end(false);
    // a gives its free credits back once idle (3 s), b's next poll (2 s) takes them.
    await advance(6_000);
    expect(waiting.done).toBe(true);
    expect(waiting.hold?.credits).toBe(2);
    expect(b.pauses.holds('budget')).toBe(false);
    expect(memory.doc()).toMatchObject({ spent: 2, blocks: { b: 2 } });
  });

  it('credits a job gives back while a give-back is in the air stay counted in the block', async () => {
    const memory = memoryStore();
    const a = worker(memory, 'a', 4, log);
    const [j1, j2] = [admit(a.budget), admit(a.budget)];
    await advance(0);
    expect(memory.doc().blocks).toEqual({ a: 4 });
    j2.hold?.end(false); // a cached result: its 2 credits are free on a
    const release = memory.holdNextUpdate();
    await advance(3_500); // idle 3 s: the give-back starts, its round trip held
    j1.hold?.end(false); // meanwhile j1 ends having paid nothing: 2 more free on a
    release();
    await advance(0);
    // a may still hand j1's 2 credits to its next job: the document must count them.
    expect(memory.doc().blocks.a ?? 0).toBeGreaterThanOrEqual(2);
  });

  it('a job that must finish is held at once past the budget, and the document counts it', async () => {
    const memory = memoryStore();
    const a = worker(memory, 'a', 4, log);
    const b = worker(memory, 'b', 4, log);
    const [j1, j2] = [admit(a.budget), admit(a.budget)];
    await advance(0);
    expect(memory.doc().blocks).toEqual({ a: 4 });
    // A takeover on b at the budget: held at once, and recorded beyond the budget.
    const forced = b.intake.force(2);
    expect(forced.credits).toBe(2);
    await advance(1_000);
    expect(memory.doc().blocks).toEqual({ a: 4, b: 2 });
    // Nothing else is held meanwhile: the fleet stops short of spending more.
    const waiting = admit(b.budget);
    await advance(5_000);
    expect(waiting.done).toBe(false);
    paidTwice(j1.hold);
    paidTwice(j2.hold);
    paidTwice(forced);
    await advance(10_000);
    // Spent 6 against a budget of 4, all of it counted: nothing more is held.
    expect(committedOf(memory.doc())).toBe(6);
    expect(waiting.done).toBe(false);
  });

  it('a raised budget (the operator’s, in the document) lets waiting jobs run within seconds', async () => {
    const memory = memoryStore();
    const w = worker(memory, 'w', 2, log);
    const first = admit(w.budget);
    const second = admit(w.budget);
    await advance(10_000);
    expect(first.done).toBe(true);
    expect(second.done).toBe(false);
    expect(log.messages('warn')).toContain('budget.warning');

    memory.setLimit(4);
    await advance(2_500);
    expect(second.done).toBe(true);
    expect(w.intake.paused()).toBeUndefined();
  });

  it('a new UTC day makes room; a hold of the day before gives nothing back to the new one', async () => {
    vi.setSystemTime(Date.parse('2026-12-07T23:59:50Z'));
    const memory = memoryStore();
    const w = worker(memory, 'w', 2, log);
    const yesterday = admit(w.budget);
    const waiting = admit(w.budget);
    await advance(5_000);
    expect(yesterday.done).toBe(true);
    expect(waiting.done).toBe(false);

    await advance(10_000); // past midnight, Firestore's clock
    expect(waiting.done).toBe(true);
    expect(memory.doc()).toMatchObject({ day: '2026-12-08', blocks: { w: 2 } });
    // Yesterday's job ends unpaid: its credits were yesterday's, today's block is unchanged.
    yesterday.hold?.end(false);
    await advance(0);
    expect(w.budget.view()).toMatchObject({ held: 2, day: '2026-12-08' });
  });

  it('warns once a day at 80 % of the budget', async () => {
    const memory = memoryStore();
    const w = worker(memory, 'w', 10, log);
    const warnings = () => log.messages('warn').filter((m) => m === 'budget.warning').length;
    for (let i = 0; i < 3; i++) admit(w.budget);
    await advance(0);
    expect(warnings()).toBe(0); // 6 of 10
    admit(w.budget);
    await advance(1_500);
    expect(warnings()).toBe(1); // 8 of 10
    admit(w.budget);
    await advance(1_500);
    expect(warnings()).toBe(1); // 10 of 10: still the one warning
    expect(committedOf(memory.doc())).toBe(10);
  });

  it('a job lost to another worker keeps its credits counted; its calls in flight count as billed', async () => {
    const memory = memoryStore();
    const w = worker(memory, 'w', 10, log);
    const lost = admit(w.budget);
    const aborted = admit(w.budget);
    await advance(0);
    lost.hold?.callStarted();
    lost.hold?.end(true);
    aborted.hold?.callStarted(); // torn down mid-call (shutdown)
    aborted.hold?.end(false);
    await advance(4_000); // idle: the free credit goes back
    expect(memory.doc()).toMatchObject({ spent: 3, blocks: {} });
  });

  it('a waiting job another worker took is dropped: no credits, and the pause ends with it', async () => {
    const memory = memoryStore();
    const w = worker(memory, 'w', 2, log);
    const held = admit(w.budget);
    let open = true;
    const taken = w.budget.reserve(2, signal(), () => open);
    await advance(3_000);
    expect(held.done).toBe(true);
    expect(w.pauses.holds('budget')).toBe(true);
    open = false;
    await advance(2_500);
    await expect(taken).resolves.toBeUndefined();
    expect(w.pauses.holds('budget')).toBe(false);
    expect(memory.doc().blocks).toEqual({ w: 2 });
  });

  it('at shutdown waiting jobs get nothing, and the free credits go back', async () => {
    const memory = memoryStore();
    const w = worker(memory, 'w', 2, log);
    const held = admit(w.budget);
    const waiting = admit(w.budget);
    await advance(0);
    w.budget.close();
    await advance(0);
    expect(waiting.done).toBe(true);
    expect(waiting.hold).toBeUndefined();
    held.hold?.end(false);
    await w.budget.leave();
    expect(memory.doc()).toMatchObject({ spent: 0, blocks: {} });
  });

  it('with no budget nothing is held and the document is only read now and then', async () => {
    const memory = memoryStore();
    const w = worker(memory, 'w', 0, log);
    await w.budget.start();
    const job = admit(w.budget);
    await advance(0);
    expect(job.done).toBe(true);
    expect(job.hold?.credits).toBe(0);
    await advance(120_000);
    expect(memory.counts).toEqual({ reads: 3, writes: 0 });
  });
});

describe('the budget on /metrics', () => {
  it('shows the budget, the committed credits and the pause by reason', async () => {
    const metrics = createMetrics({ jobsInFlight: () => 0, processMetrics: false });
    const pauses = createIntakeSwitch();
    metrics.observeBudget({
      budget: () => 10,
      committed: () => 8,
      paused: (reason) => pauses.holds(reason),
    });
    pauses.set('budget', { since: 0, detail: '10 of 10' });
    const { body } = await metrics.render();
    expect(body).toMatch(/^showcase_budget_credits 10$/m);
    expect(body).toMatch(/^showcase_budget_committed_credits 8$/m);
    expect(body).toMatch(/^showcase_intake_paused\{reason="budget"\} 1$/m);
    expect(body).toMatch(/^showcase_intake_paused\{reason="operator"\} 0$/m);
  });
});
