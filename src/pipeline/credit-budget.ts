import {
  availableOf,
  blockCredits,
  budgetOf,
  changeBlock,
  committedOf,
  CREDITS_PER_JOB,
  pastWarning,
  type BudgetDoc,
  type BudgetStore,
} from '../jobs/budget.js';
import { monotonic, type Monotonic } from '../jobs/clock.js';
import { describe } from '../jobs/errors.js';
import {
  NO_HOLD,
  type CreditHold,
  type CreditReserver,
  type IntakeSwitch,
} from '../jobs/intake.js';
import type { Log } from '../jobs/ports.js';

/**
 * This worker's part of the fleet's daily credit budget (docs/budget.md). Jobs hold their
 * credits from a block the worker takes from the budget's document (`showcaseFleet/budget`),
 * so the document is written once a block, not once a job, and never more than once a
 * `minGapMs`: one write takes credits for every job waiting then. A job gives back what it did
 * not use; free credits go back to the fleet after `idleReturnMs` with no job waiting, and at
 * shutdown. When the budget leaves too little for a waiting job, the `budget` pause is set
 * (nothing new is claimed) and the document is read every `pollMs` until a new UTC day or a
 * raised budget makes room.
 */
export interface CreditBudgetOptions {
  workerId: string;
  /** CLIPDROP_DAILY_CREDIT_BUDGET: credits a UTC day for the key; 0 = none (the operator's, in the document, wins). */
  configured: number;
  /** CLIPDROP_RPM: sets the block size (blockCredits). */
  rpm: number;
  pauses: IntakeSwitch;
  log: Log;
  /** Firestore's time as this worker knows it (the pause's `since`). */
  now: () => number;
  mono?: Monotonic;
  minGapMs?: number;
  pollMs?: number;
  idleReturnMs?: number;
  /** While no budget applies: how often the document is read for an operator's budget. */
  refreshMs?: number;
}

/** The budget as this worker last read it (metrics, heartbeat, logs). */
export interface BudgetView {
  /** Credits a day; 0 = none. */
  budget: number;
  /** Today's credits committed (reported used, and held in blocks) as last read. */
  committed: number;
  /** Credits this worker holds now (free, promised to its jobs, used and not yet reported). */
  held: number;
  day: string;
}

export interface CreditBudget extends CreditReserver {
  /** Reads the document once (before intake starts) and keeps it fresh while no budget applies. */
  start(): Promise<void>;
  /** Waiting jobs get no credits (they are not claimed); later reserves neither. */
  close(): void;
  /** Gives the free credits back and reports what was used (shutdown, after the drain). */
  leave(): Promise<void>;
  view(): BudgetView;
}

interface Waiter {
  credits: number;
  stillOpen: (() => boolean) | undefined;
  resolve: (hold: CreditHold | undefined) => void;
  reject: (err: unknown) => void;
  signal: AbortSignal;
  onAbort: () => void;
}

export function createCreditBudget(store: BudgetStore, opts: CreditBudgetOptions): CreditBudget {
  const mono = opts.mono ?? monotonic;
  const minGapMs = opts.minGapMs ?? 1_000;
  const pollMs = opts.pollMs ?? 2_000;
  const idleReturnMs = opts.idleReturnMs ?? 3_000;
  const refreshMs = opts.refreshMs ?? 60_000;
  const block = blockCredits(opts.rpm);
  const me = opts.workerId;

  let last: BudgetDoc = { day: '', spent: 0, blocks: {} };
  let known = false;
  /** The day this worker's credits below belong to; a new day voids them. */
  let day = '';
  let free = 0;
  let promised = 0;
  /** Used since the last write that reported it. */
  let used = 0;
  /** Bumped when a new day voids the credits: a hold of an earlier epoch ends with no effect. */
  let epoch = 0;
  const waiters: Waiter[] = [];
  let busy = false;
  let closed = false;
  let lastWriteAt = -Infinity;
  let idleSince = mono();
  let timer: NodeJS.Timeout | undefined;
  let warnedDay = '';
  let pausing = false;
  /** The last take found too little for the jobs waiting: paused until they are served. */
  let starved = false;
  let lastReadAt = -Infinity;
  /** A forced hold went past this worker's block: the next write records it. */
  let owed = false;

  const budget = () => budgetOf(last, opts.configured);
  const unlimited = () => known && budget() === 0;

  function learn(doc: BudgetDoc): void {
    last = doc;
    known = true;
    lastReadAt = mono();
    if (doc.day !== day) {
      // The first read only names the day: a hold forced before it (a takeover) stays counted.
      if (day !== '') {
        if (free + promised + used > 0) {
          opts.log.info('budget.new_day', { day: doc.day, voided: free + promised + used });
        }
        free = 0;
        promised = 0;
        used = 0;
        epoch += 1;
      }
      day = doc.day;
    }
    if (warnedDay !== doc.day && pastWarning(doc, opts.configured)) {
      warnedDay = doc.day;
      opts.log.warn('budget.warning', {
        day: doc.day,
        budget: budget(),
        committed: committedOf(doc),
      });
    }
  }

  function holdFor(credits: number): CreditHold {
    const myEpoch = epoch;
    promised += credits;
    let charged = 0;
    let inFlight = 0;
    let ended = false;
    return {
      credits,
      callStarted: () => void (inFlight += 1),
      callEnded: (billed) => {
        inFlight = Math.max(0, inFlight - 1);
        charged += billed;
      },
      end(lost) {
        if (ended) return;
        ended = true;
        if (myEpoch !== epoch) return;
        // A call still in flight may have been billed; a lost job's heir spends the rest.
        const spent = lost ? Math.max(credits, charged + inFlight) : charged + inFlight;
        promised -= credits;
        used += spent;
        free += Math.max(0, credits - spent);
        if (waiters.length === 0) idleSince = mono();
        schedule(0);
      },
    };
  }

  /** Serves waiting jobs from free credits, in order; true when none is left waiting. */
  function serve(): boolean {
    const waited = waiters.length > 0;
    // A job another worker took while it waited here needs no credits: it is not claimed.
    for (const w of waiters.filter((x) => x.stillOpen?.() === false)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.signal.removeEventListener('abort', w.onAbort);
      w.resolve(undefined);
    }
    while (waiters.length > 0) {
      const next = waiters[0] as Waiter;
      if (unlimited()) {
        // No budget in force (any more): nothing to hold.
        waiters.shift();
        next.signal.removeEventListener('abort', next.onAbort);
        next.resolve(NO_HOLD);
        continue;
      }
      if (free < next.credits) break;
      waiters.shift();
      next.signal.removeEventListener('abort', next.onAbort);
      free -= next.credits;
      next.resolve(holdFor(next.credits));
    }
    // Idle from the moment the last waiting job got its credits.
    if (waited && waiters.length === 0) idleSince = mono();
    return waiters.length === 0;
  }

  /** The `budget` pause: jobs wait here for credits the budget does not have. */
  function setPause(): void {
    if (waiters.length === 0 || unlimited()) starved = false;
    const waiting = starved;
    if (waiting === pausing) return;
    pausing = waiting;
    opts.pauses.set(
      'budget',
      waiting
        ? {
            since: opts.now(),
            detail: `${committedOf(last)} of ${budget()} credits committed on ${last.day}`,
          }
        : undefined,
    );
  }

  function schedule(delayMs: number): void {
    clearTimeout(timer);
    if (closed && waiters.length === 0) return;
    timer = setTimeout(() => void pump(), Math.max(0, delayMs));
    timer.unref();
  }

  /**
   * The one place that decides what to do next: serve waiting jobs, take a block for those
   * that remain, give idle credits back, or (no budget in force) read the document now and
   * then for an operator's budget. One read or write at a time; writes `minGapMs` apart.
   */
  async function pump(): Promise<void> {
    if (busy) return;
    serve();
    setPause();
    const short = waiters.reduce((sum, w) => sum + w.credits, 0) - free;
    const returning = short <= 0 && free > 0 && mono() - idleSince >= idleReturnMs;
    const reporting = short <= 0 && !returning && owed;
    const refreshing =
      short <= 0 &&
      !returning &&
      !reporting &&
      (!known || unlimited()) &&
      mono() - lastReadAt >= refreshMs;
    if (short <= 0 && !returning && !reporting && !refreshing) {
      if (free > 0) schedule(idleSince + idleReturnMs - mono());
      else if (!known || unlimited()) schedule(lastReadAt + refreshMs - mono());
      return;
    }
    const wait = refreshing ? 0 : lastWriteAt + minGapMs - mono();
    if (wait > 0) return schedule(wait);
    busy = true;
    try {
      if (refreshing) learn((await store.read()).doc);
      else if (returning) await giveBack();
      else if (reporting) await report();
      else await take(short);
      serve();
    } catch (err) {
      // Tried again after a gap, not at once: Firestore may be down for a while.
      lastWriteAt = lastReadAt = mono();
      opts.log.warn('budget.write_failed', { detail: describe(err) });
    } finally {
      busy = false;
    }
    setPause();
    schedule(waiters.length > 0 ? pollMs : 0);
  }

  /** Takes a block (at least what waiting jobs lack), reporting what was used meanwhile. */
  async function take(short: number): Promise<void> {
    const want = Math.ceil(Math.max(short, block) / CREDITS_PER_JOB) * CREDITS_PER_JOB;
    const { doc, result } = await store.update((doc) => {
      learn(doc);
      if (budgetOf(doc, opts.configured) === 0) return undefined;
      // Nothing to grant: a read only (the pause holds; `used` is reported with the next write).
      if (availableOf(doc, opts.configured) < CREDITS_PER_JOB && !owed) return undefined;
      const change = { used, kept: free + promised, want, unit: CREDITS_PER_JOB };
      const next = changeBlock(doc, me, opts.configured, change);
      return { doc: next.doc, result: { granted: next.granted, reported: used } };
    });
    learn(doc);
    starved = !result?.granted;
    if (result) {
      lastWriteAt = mono();
      owed = false;
      used -= result.reported;
      free += result.granted;
      opts.log.debug('budget.block', { granted: result.granted, committed: committedOf(doc) });
    }
  }

  /** Records the block as it is (a forced hold past it) and reports the used credits. */
  async function report(): Promise<void> {
    const { doc, result } = await store.update((doc) => {
      learn(doc);
      const change = { used, kept: free + promised, want: 0, unit: 0 };
      return { doc: changeBlock(doc, me, opts.configured, change).doc, result: used };
    });
    learn(doc);
    lastWriteAt = mono();
    owed = false;
    if (result !== undefined) used -= result;
  }

  /** Gives back the free credits (kept: what running jobs hold) and reports the used ones. */
  async function giveBack(): Promise<void> {
    const returned = free;
    const mine = epoch;
    free = 0;
    try {
      const { doc, result } = await store.update((doc) => {
        learn(doc);
        if (doc.blocks[me] === undefined && used === 0) return undefined;
        // Credits a job gave back since `free` was emptied stay in the block: they are free here.
        const change = { used, kept: promised + free, want: 0, unit: 0 };
        return { doc: changeBlock(doc, me, opts.configured, change).doc, result: used };
      });
      learn(doc);
      lastWriteAt = mono();
      owed = false;
      if (result !== undefined) used -= result;
    } catch (err) {
      if (mine === epoch) free += returned;
      throw err;
    }
  }

  return {
    async start() {
      try {
        learn((await store.read()).doc);
      } catch (err) {
        opts.log.warn('budget.read_failed', { detail: describe(err) });
      }
      schedule(0);
    },
    reserve(credits, signal, stillOpen) {
      if (closed) return Promise.resolve(undefined);
      if (unlimited()) return Promise.resolve(NO_HOLD);
      if (waiters.length === 0 && free >= credits) {
        free -= credits;
        return Promise.resolve(holdFor(credits));
      }
      return new Promise<CreditHold | undefined>((resolve, reject) => {
        const waiter: Waiter = {
          credits,
          stillOpen,
          resolve,
          reject,
          signal,
          onAbort: () => {
            const i = waiters.indexOf(waiter);
            if (i >= 0) waiters.splice(i, 1);
            setPause();
            reject(signal.reason as Error);
          },
        };
        if (signal.aborted) return reject(signal.reason as Error);
        signal.addEventListener('abort', waiter.onAbort, { once: true });
        waiters.push(waiter);
        schedule(0);
      });
    },
    force(credits) {
      if (unlimited()) return NO_HOLD;
      const taken = Math.min(free, credits);
      free -= taken;
      // Past the block: the budget's document must count it before anyone else takes it.
      if (taken < credits) owed = true;
      const hold = holdFor(credits);
      schedule(0);
      return hold;
    },
    close() {
      closed = true;
      for (const w of waiters.splice(0)) {
        w.signal.removeEventListener('abort', w.onAbort);
        w.resolve(undefined);
      }
      setPause();
    },
    async leave() {
      closed = true;
      clearTimeout(timer);
      while (busy) await new Promise((resolve) => setTimeout(resolve, 50));
      if (free === 0 && used === 0) return;
      try {
        await giveBack();
      } catch (err) {
        // Its block stays counted for the day: never more spent than the budget, some unused.
        opts.log.warn('budget.leave_failed', { detail: describe(err) });
      }
    },
    view: () => ({
      budget: known ? budget() : opts.configured,
      committed: committedOf(last),
      held: free + promised + used,
      day: last.day,
    }),
  };
}
