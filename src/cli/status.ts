import type { CollectionReference, DocumentData } from 'firebase-admin/firestore';
import { F, isClaimable, viewOf } from '../adapters/firestore/job-fields.js';
import { IN_PROGRESS } from '../jobs/status.js';
import { readIntakeFlag } from '../adapters/firestore/intake-flag.js';
import { formatBudget, readBudget } from './budget.js';
import { formatIntakeFlag } from './intake.js';
import { visualsOf } from './click.js';
import { formatFleet, listFleet } from './fleet.js';
import type { Command } from './command.js';
import { openSession } from './context.js';
import { EXIT, UsageError } from './exit-codes.js';
import { formatTopUsers, topUsersToday } from './usage.js';

const STATUSES = [...IN_PROGRESS, 'complete', 'failed'] as const;

export interface StatusCounts {
  total: number;
  /** Characters whose status is none of the job's (never clicked). */
  notRequested: number;
  byStatus: Record<(typeof STATUSES)[number], number>;
  /** In-progress jobs held by a live lease (running) or waiting for a worker. */
  inProgress: { running: number; waiting: number };
  failedByCode: Record<string, number>;
}

export const status: Command = {
  name: 'status',
  summary: "counts per status, or one character's job in full",
  help: `Usage: showcase-worker status [characterId] [--json]

Without an id: how many characters are in each status, in-progress jobs split into running
(held by a live worker) and waiting (no worker holds them yet), failures by error code,
the live workers (id, since, running jobs, ClipDrop quota share), the daily credit budget
(budget, committed, whether intake is paused at it, ClipDrop's balance), and today's top users by
jobs counted against the daily limit and credits spent.
With an id: that character's job in full (status, stage, attempts, owner, lease, error,
ClipDrop calls and credits).

Options:
  --json   print one JSON object instead of text

Exit codes: 0 shown; 1 no such character; 2 invalid configuration; 3 Firestore failed;
64 more than one id.`,
  options: { json: { type: 'boolean' } },
  async run({ positionals, values }, io) {
    if (positionals.length > 1) throw new UsageError('give at most one character id');
    const session = openSession(io);
    const now = io.now?.() ?? Date.now();
    try {
      const id = positionals[0];
      if (id !== undefined) {
        const snap = await session.characters.doc(id).get();
        if (!snap.exists) {
          io.err(`no character "${id}" in ${session.config.firebase.collection}`);
          return EXIT.PROBLEMS;
        }
        const data = snap.data();
        if (values.json) io.out(JSON.stringify({ id, data: jsonSafe(data) }, null, 2));
        // The lease's time left on Firestore's clock, as the workers judge it.
        else describeCharacter(id, data, snap.readTime.toMillis()).forEach((l) => io.out(l));
        return EXIT.OK;
      }
      const { fleet: fleetConfig } = session.config;
      const [counts, workers, usersToday, budget, intake] = await Promise.all([
        countStatuses(session.characters),
        listFleet(session.db, {
          workersCollection: fleetConfig.workersCollection,
          fleetCollection: fleetConfig.collection,
          timeoutMs: fleetConfig.presenceTimeoutMs,
        }),
        topUsersToday(session.db, now),
        readBudget(session.db, fleetConfig.collection, session.config.clipdrop.dailyCreditBudget),
        readIntakeFlag(session.db, fleetConfig.collection),
      ]);
      if (values.json) {
        io.out(JSON.stringify({ ...counts, workers, usersToday, budget, intake }, null, 2));
      } else {
        formatCounts(counts, session.config.firebase.collection).forEach((l) => io.out(l));
        formatFleet(workers, session.config.clipdrop.rpm).forEach((l) => io.out(l));
        if (intake.paused) io.out(formatIntakeFlag(intake));
        formatBudget(budget, workers).forEach((l) => io.out(l));
        formatTopUsers(usersToday, now).forEach((l) => io.out(l));
      }
      return EXIT.OK;
    } finally {
      await session.close();
    }
  },
};

/** Counts with aggregation queries (cheap at any size), details from the few that need them. */
export async function countStatuses(
  characters: CollectionReference<DocumentData>,
): Promise<StatusCounts> {
  const countOf = async (status: string) =>
    (await characters.where(F.status, '==', status).count().get()).data().count;
  const [total, ...perStatus] = await Promise.all([
    characters
      .count()
      .get()
      .then((s) => s.data().count),
    ...STATUSES.map(countOf),
  ]);
  const byStatus = Object.fromEntries(
    STATUSES.map((s, i) => [s, perStatus[i] ?? 0]),
  ) as StatusCounts['byStatus'];

  const inProgress = { running: 0, waiting: 0 };
  const active = await characters
    .where(F.status, 'in', [...IN_PROGRESS])
    .select(F.status, F.job)
    .get();
  // Waiting or held, judged as the workers judge it: at the read's time.
  const at = active.readTime.toMillis();
  for (const doc of active.docs) {
    if (isClaimable(viewOf(doc.data()), at)) inProgress.waiting++;
    else inProgress.running++;
  }

  const failedByCode: Record<string, number> = {};
  const failed = await characters.where(F.status, '==', 'failed').select(`${F.error}.code`).get();
  for (const doc of failed.docs) {
    const code = visualsOf(doc.data()).showcaseProcessingError?.code;
    const key = typeof code === 'string' ? code : 'UNKNOWN';
    failedByCode[key] = (failedByCode[key] ?? 0) + 1;
  }

  const requested = STATUSES.reduce((sum, s) => sum + byStatus[s], 0);
  return {
    total: total ?? 0,
    notRequested: Math.max(0, (total ?? 0) - requested),
    byStatus,
    inProgress,
    failedByCode,
  };
}

export function formatCounts(counts: StatusCounts, collection: string): string[] {
  const row = (label: string, n: number, note = '') =>
    `  ${label.padEnd(20)} ${String(n).padStart(6)}${note ? `  ${note}` : ''}`;
  const lines = [`${collection}: ${counts.total} characters`];
  lines.push(row('not requested', counts.notRequested));
  for (const s of IN_PROGRESS) lines.push(row(s, counts.byStatus[s]));
  const { running, waiting } = counts.inProgress;
  lines.push(row('complete', counts.byStatus.complete));
  const codes = Object.entries(counts.failedByCode)
    .sort(([, a], [, b]) => b - a)
    .map(([code, n]) => `${code} ${n}`)
    .join(', ');
  lines.push(row('failed', counts.byStatus.failed, codes));
  lines.push(`in progress: ${running} running, ${waiting} waiting for a worker`);
  return lines;
}

/** One character's job, one fact a line. */
export function describeCharacter(id: string, data: DocumentData | undefined, now: number) {
  const visuals = visualsOf(data);
  const job = visuals.showcaseJob ?? {};
  const error = visuals.showcaseProcessingError;
  const name = (data?.core as { name?: unknown } | undefined)?.name;
  const lines: Array<[string, string]> = [
    ['character', typeof name === 'string' ? `${id} (${name})` : id],
    ['owner (user)', show((data?.meta as { userId?: unknown } | undefined)?.userId)],
    ['status', show(visuals.showcaseProcessingStatus ?? 'not requested')],
    ['image', show(visuals.imageUrl)],
    ['showcase', show(visuals.showcaseImageUrl)],
  ];
  if (error) {
    lines.push([
      'error',
      `${show(error.code)} at ${show(error.stage)}, ${show(error.at)}: ${show(error.message)}`,
    ]);
  }
  if (visuals.showcaseJob) {
    lines.push(
      ['job', `${show(job.jobId)} (${show(job.state)})`],
      ['stage', show(job.stage)],
      ['attempts', show(job.attempts)],
      ['worker', show(job.owner)],
      ['lease', lease(job.leaseExpiresAt, now)],
      ['requested', show(job.requestedAt)],
      ['claimed', show(job.claimedAt)],
      ['finished', show(job.finishedAt)],
      ['duration', typeof job.durationMs === 'number' ? `${job.durationMs} ms` : '—'],
      ['clipdrop calls', show(job.calls)],
      ['credits', show(job.credits)],
    );
    const known = new Set([
      'jobId',
      'state',
      'stage',
      'attempts',
      'owner',
      'leaseExpiresAt',
      'requestedAt',
      'claimedAt',
      'finishedAt',
      'durationMs',
      'calls',
      'credits',
    ]);
    for (const [key, value] of Object.entries(job)) {
      if (!known.has(key)) lines.push([key, show(value)]);
    }
  } else {
    lines.push(['job', 'no worker has taken this character yet']);
  }
  return lines.map(([label, value]) => `${label.padEnd(15)} ${value}`);
}

function lease(value: unknown, now: number): string {
  const at = millisOf(value);
  if (at === undefined) return 'none';
  const delta = Math.round((at - now) / 1000);
  return delta >= 0
    ? `held until ${new Date(at).toISOString()} (${delta}s left)`
    : `expired at ${new Date(at).toISOString()} (${-delta}s ago)`;
}

function millisOf(value: unknown): number | undefined {
  const ts = value as { toMillis?: () => number } | null | undefined;
  return typeof ts?.toMillis === 'function' ? ts.toMillis() : undefined;
}

/** A Firestore value for a human: timestamps as ISO dates, maps as JSON, absent as —. */
function show(value: unknown): string {
  if (value === undefined || value === null || value === '') return '—';
  const ms = millisOf(value);
  if (ms !== undefined) return new Date(ms).toISOString();
  if (typeof value === 'string') return value;
  return JSON.stringify(jsonSafe(value));
}

/** Timestamps as ISO strings, so JSON output is readable. */
function jsonSafe(value: unknown): unknown {
  const ms = millisOf(value);
  if (ms !== undefined) return new Date(ms).toISOString();
  if (Array.isArray(value)) return value.map(jsonSafe);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonSafe(v)]));
  }
  return value;
}
