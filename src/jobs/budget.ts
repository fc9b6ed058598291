import { utcDay } from './user-limits.js';

/**
 * The fleet's daily credit budget (CLIPDROP_DAILY_CREDIT_BUDGET) as pure policy: what the
 * budget's document says, whose the credits are, and what one worker's write changes
 * (docs/budget.md). The document is read and written by the `BudgetDoc` port
 * (adapters/firestore/budget-doc.ts); a worker's blocks and its jobs' holds are
 * pipeline/credit-budget.ts's.
 *
 * Every credit of the day is in exactly one place: `spent` (reported used by its holder), or a
 * worker's block (held: free, promised to a job, or used and not yet reported). A block counts
 * in full until its holder reports what it used; a worker that dies never does, so its block
 * stays counted for the day: it covers the jobs it held (taken over with no new hold) and
 * whatever it had in flight. Nothing here can make the fleet spend past the budget.
 */

/** A fresh job's paid calls: remove background, upscale (one credit each). */
export const CREDITS_PER_JOB = 2;

/** `budget.warning` is logged once a day when the day's credits reach this share. */
export const WARN_SHARE = 0.8;

/** The budget's document, `showcaseFleet/budget`, as one day's figures. */
export interface BudgetDoc {
  /** The UTC day (Firestore's clock) the figures count; a new day starts from nothing. */
  day: string;
  /** Credits reported used today. */
  spent: number;
  /** Credits each worker holds now (free, promised to its jobs, or used and not reported). */
  blocks: Record<string, number>;
  /** The operator's budget (`showcase-worker budget set`), which outlives the day; absent: each worker's CLIPDROP_DAILY_CREDIT_BUDGET. */
  limit?: number;
}

/** The document as of `now` (Firestore's time of the read): another day's figures are gone. */
export function parseBudget(data: unknown, now: number): BudgetDoc {
  const d = (data ?? {}) as Record<string, unknown>;
  const day = utcDay(now);
  const limit = wholeOrUndefined(d.limit);
  const base = limit === undefined ? {} : { limit };
  if (d.day !== day) return { day, spent: 0, blocks: {}, ...base };
  const blocks: Record<string, number> = {};
  if (d.blocks && typeof d.blocks === 'object') {
    for (const [id, n] of Object.entries(d.blocks as Record<string, unknown>)) {
      const credits = wholeOrUndefined(n);
      if (credits) blocks[id] = credits;
    }
  }
  return { day, spent: wholeOrUndefined(d.spent) ?? 0, blocks, ...base };
}

/** The budget in force: the operator's, else the worker's setting; 0 = none. */
export function budgetOf(doc: Pick<BudgetDoc, 'limit'>, configured: number): number {
  return doc.limit ?? configured;
}

/** The day's credits that count: reported, and held in blocks. */
export function committedOf(doc: Pick<BudgetDoc, 'spent' | 'blocks'>): number {
  return doc.spent + Object.values(doc.blocks).reduce((a, b) => a + b, 0);
}

/** Credits still free for the fleet today (Infinity with no budget). */
export function availableOf(doc: BudgetDoc, configured: number): number {
  const budget = budgetOf(doc, configured);
  return budget === 0 ? Infinity : Math.max(0, budget - committedOf(doc));
}

/**
 * Credits a worker takes at once: at least one job's, and about what the whole key spends in a
 * second (CLIPDROP_RPM / 60, one credit a call), so the fleet writes the document about once a
 * second at most, whatever the key's quota.
 */
export function blockCredits(rpm: number): number {
  const perSecond = Math.ceil(rpm / 60);
  return Math.max(CREDITS_PER_JOB, Math.ceil(perSecond / CREDITS_PER_JOB) * CREDITS_PER_JOB);
}

/** What one worker's write says about its block. */
export interface BlockChange {
  /** Credits its jobs used since its last write: reported into `spent`. */
  used: number;
  /** Credits of its block it keeps (promised to running jobs, and free ones it keeps). */
  kept: number;
  /** Credits it asks for beyond `kept`. */
  want: number;
  /** Grants come in whole multiples of this (a job's need); 0 with `want` 0. */
  unit: number;
}

/**
 * One worker's write: its used credits move to `spent`, its block becomes `kept` plus what it is
 * granted, up to `want`, from what the budget leaves, in whole `unit`s: a job cannot run on
 * part of its credits, and a credit held for nothing is lost to the others.
 */
export function changeBlock(
  doc: BudgetDoc,
  me: string,
  configured: number,
  change: BlockChange,
): { doc: BudgetDoc; granted: number } {
  const blocks = { ...doc.blocks };
  delete blocks[me];
  const after: BudgetDoc = { ...doc, spent: doc.spent + change.used, blocks };
  if (change.kept > 0) blocks[me] = change.kept;
  const left = availableOf(after, configured);
  const granted =
    change.unit > 0 ? Math.floor(Math.min(change.want, left) / change.unit) * change.unit : 0;
  if (granted > 0) blocks[me] = change.kept + granted;
  return { doc: after, granted };
}

/** Whether the day's committed credits reached the warning share of the budget. */
export function pastWarning(doc: BudgetDoc, configured: number): boolean {
  const budget = budgetOf(doc, configured);
  return budget > 0 && committedOf(doc) >= WARN_SHARE * budget;
}

function wholeOrUndefined(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : undefined;
}

/** The budget's document, read and changed on Firestore (adapters/firestore/budget-doc.ts). */
export interface BudgetStore {
  /** The document as of the read; `at` is the read's time (Firestore's). */
  read(): Promise<{ doc: BudgetDoc; at: number }>;
  /**
   * Reads the document and writes what `change` makes of it, unless the document changed
   * meanwhile (then it reads and asks again); `change` returning undefined writes nothing.
   * Resolves with the document as written (or read) and the `result` of the `change` written.
   */
  update<T>(
    change: (doc: BudgetDoc, at: number) => { doc: BudgetDoc; result: T } | undefined,
  ): Promise<{ doc: BudgetDoc; at: number; result: T | undefined }>;
}
