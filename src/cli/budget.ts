import type { Firestore } from 'firebase-admin/firestore';
import { createBudgetDoc, setBudgetLimit } from '../adapters/firestore/budget-doc.js';
import { budgetOf, committedOf, CREDITS_PER_JOB } from '../jobs/budget.js';
import type { Command } from './command.js';
import { configOf, openSession } from './context.js';
import { EXIT, UsageError } from './exit-codes.js';
import type { FleetMember } from './fleet.js';

/** The fleet's daily credit budget as `status` and `budget` show it. */
export interface BudgetState {
  /** Credits a UTC day; 0 = none. */
  budget: number;
  /** Where it comes from: the operator's (`budget set`) or CLIPDROP_DAILY_CREDIT_BUDGET. */
  source: 'operator' | 'env';
  day: string;
  /** Credits reported used today. */
  spent: number;
  /** Credits held by workers now (free, promised to jobs, used and not yet reported). */
  held: Record<string, number>;
  /** Spent and held: what counts against the budget. */
  committed: number;
  /** Too little left for a job: nothing new is claimed until a new day or a raised budget. */
  paused: boolean;
}

export async function readBudget(
  db: Firestore,
  fleetCollection: string,
  configured: number,
): Promise<BudgetState> {
  const { doc } = await createBudgetDoc(db, { collection: fleetCollection }).read();
  const budget = budgetOf(doc, configured);
  const committed = committedOf(doc);
  return {
    budget,
    source: doc.limit === undefined ? 'env' : 'operator',
    day: doc.day,
    spent: doc.spent,
    held: doc.blocks,
    committed,
    paused: budget > 0 && budget - committed < CREDITS_PER_JOB,
  };
}

export function formatBudget(state: BudgetState, workers: readonly FleetMember[]): string[] {
  const from = state.source === 'operator' ? 'set by `budget set`' : 'CLIPDROP_DAILY_CREDIT_BUDGET';
  const heldTotal = state.committed - state.spent;
  const lines =
    state.budget === 0
      ? [`credit budget: none (${from}); today ${state.committed} credits counted`]
      : [
          `credit budget: ${state.budget} credits a day (${from}); ${state.day} UTC: ${state.committed} committed (${state.spent} spent, ${heldTotal} held by workers)`,
        ];
  if (state.paused) {
    lines.push(
      '  intake paused: budget reached, no new job is claimed until the next UTC day or a raised budget',
    );
  }
  const balances = workers.filter((w) => w.clipdropBalance !== undefined);
  if (balances.length > 0) {
    const lowest = Math.min(...balances.map((w) => w.clipdropBalance ?? Infinity));
    lines.push(`  ClipDrop balance: ${lowest} credits (lowest reported by a live worker)`);
  }
  return lines;
}

export const budget: Command = {
  name: 'budget',
  summary: "show or change the fleet's daily ClipDrop credit budget",
  help: `Usage: showcase-worker budget [set N | clear] [--json]

Without arguments: the budget in force today, the credits committed (spent, and held by
workers for their jobs), and whether intake is paused at the budget.
  set N   the fleet's budget is N credits a UTC day (0 = no budget) from now on, for every
          worker, without a restart: it replaces CLIPDROP_DAILY_CREDIT_BUDGET until cleared.
          Waiting jobs start within seconds of a raised budget.
  clear   back to each worker's CLIPDROP_DAILY_CREDIT_BUDGET.

Options:
  --json   print one JSON object instead of text

Exit codes: 0 shown or set; 2 invalid configuration; 3 Firestore failed; 64 usage error.`,
  options: { json: { type: 'boolean' } },
  async run({ positionals, values }, io) {
    const [action, value, ...rest] = positionals;
    if (rest.length > 0) throw new UsageError('too many arguments');
    let limit: number | undefined | 'keep' = 'keep';
    if (action === 'set') {
      if (value === undefined || !/^\d+$/.test(value)) {
        throw new UsageError(
          `set takes a whole number of credits (0 = no budget), not "${value ?? ''}"`,
        );
      }
      limit = Number(value);
    } else if (action === 'clear') {
      if (value !== undefined) throw new UsageError('clear takes no value');
      limit = undefined;
    } else if (action !== undefined) {
      throw new UsageError(`unknown action "${action}": set N, or clear`);
    }
    const config = configOf(io);
    const session = openSession(io, config);
    try {
      const fleet = config.fleet.collection;
      if (limit !== 'keep') await setBudgetLimit(session.db, fleet, limit);
      const state = await readBudget(session.db, fleet, config.clipdrop.dailyCreditBudget);
      if (values.json) io.out(JSON.stringify(state, null, 2));
      else formatBudget(state, []).forEach((line) => io.out(line));
      return EXIT.OK;
    } finally {
      await session.close();
    }
  },
};
