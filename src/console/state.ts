import { isClaimable, viewOf } from '../adapters/firestore/job-fields.js';
import { isAlive, type PresenceRecord } from '../jobs/fleet.js';
import type { IntakeFlag } from '../jobs/intake-flag.js';
import { IN_PROGRESS } from '../jobs/status.js';

/**
 * What the console shows, as plain data: the feeds (./feeds.ts) build it from Firestore, the
 * server sends it to browsers as JSON (Server-Sent Events) and renders `/metrics` from it.
 * Times are milliseconds on Firestore's clock, as the workers judge them.
 */
export interface WorkerRow {
  id: string;
  since: number;
  running: number;
  demand: number;
  /** ClipDrop requests a minute it may send now (the quota ledger's grant). */
  share: number;
  beatAt: number;
  /** Why it claims nothing new now (`operator`, `budget`), by its heartbeat; null: it claims. */
  intakePaused: string | null;
  /** ClipDrop's balance as its last answered call said; null: not known. */
  balance: number | null;
  /** ClipDrop calls in its current window (in flight included), by its last beat; null: not told. */
  windowUsed: number | null;
  /** Its ClipDrop account gate: null while open (or not told). */
  gate: GatePause | null;
}

/** A worker's paused account gate (src/clipdrop/account-gate.ts), by its heartbeat. */
export interface GatePause {
  /** `no-credits` (402), `unauthorized` (401/403), `outage` (5xx, network). */
  reason: string;
  /** Since when, on Firestore's clock as that worker knew it; null: not told. */
  since: number | null;
}

/** What a heartbeat says beside presence (docs/fleet.md): for people and the console. */
export interface BeatExtras {
  intakePaused: string | null;
  balance: number | null;
  windowUsed: number | null;
  gate: GatePause | null;
}

/** Today's spend (docs/budget.md): the budget's document, the balance, the top users. */
export interface SpendState {
  /** The UTC day counted (Firestore's clock). */
  day: string;
  /** Credits a day; 0 = no budget. */
  budget: number;
  /** The operator's (`budget set`) or CLIPDROP_DAILY_CREDIT_BUDGET as this console reads it. */
  source: 'operator' | 'env';
  spent: number;
  /** Held by workers for their jobs now. */
  held: number;
  committed: number;
  /** Too little left for one job: the budget's pause holds. */
  paused: boolean;
  /** The lowest ClipDrop balance a live worker reports; null: none reported. */
  balance: number | null;
  /** Today's users with the most credits (from `showcaseUsage`), most first. */
  topUsers: Array<{ userId: string; jobs: number; credits: number }>;
  /**
   * The day's totals over every user (one aggregation over `showcaseUsage`): requests counted
   * by USER_DAILY_REQUEST_LIMIT, jobs admitted, credits settled; null until first read.
   */
  today: { day: string; requests: number; jobs: number; credits: number } | null;
}

export interface JobRow {
  id: string;
  name: string;
  userId: string;
  status: string;
  /** The worker holding it, when a live lease does. */
  owner: string | null;
  attempts: number;
  /** No live lease holds it: waiting for a worker. */
  waiting: boolean;
  operator: boolean;
}

export interface FailureRow {
  id: string;
  name: string;
  code: string;
  stage: string;
  message: string;
  at: number;
}

export interface FinishedRow {
  id: string;
  name: string;
  finishedAt: number;
  durationMs: number | null;
  credits: number | null;
}

/** One bar of the Queue's chart: jobs that ended in the hour from `hour`. */
export interface HourBar {
  hour: number;
  complete: number;
  failed: number;
}

/** One owner's jobs among the active ones listed. */
export interface UserQueue {
  userId: string;
  waiting: number;
  running: number;
}

export interface ConsoleState {
  /** Firestore's time when this state was put together. */
  serverNow: number;
  readOnly: boolean;
  /** The key's ClipDrop requests a minute, shared by the fleet. */
  rpm: number;
  fleet: { workers: WorkerRow[]; leader: string | null };
  /** The operator's intake flag (showcaseFleet/intake); null until first read. */
  intake: IntakeFlag | null;
  /** null until the budget's document is first read. */
  spend: SpendState | null;
  queue: {
    /**
     * Jobs by status (null until the first count): count queries, recounted within seconds of
     * a change the lists see; the in-progress statuses from the active list while it holds
     * them all (`liveCounts`).
     */
    counts: Record<string, number> | null;
    countedAt: number | null;
    /** Jobs completed and failed per hour (UTC hours on Firestore's clock), oldest first. */
    hourly: HourBar[] | null;
    /** The owners with the most active jobs listed, deepest first. */
    users: UserQueue[];
    /** Among the active jobs listed: held by a live worker, or waiting for one. */
    running: number;
    waiting: number;
    /** More active jobs than the list holds. */
    truncated: boolean;
  };
  active: JobRow[];
  finished: FinishedRow[];
  failures: {
    windowHours: number;
    byCode: Array<{ code: string; count: number }>;
    items: FailureRow[];
    /** The list reached its limit: counts are of the latest failures only. */
    truncated: boolean;
  };
}

type Data = Record<string, unknown> | undefined;

const text = (v: unknown, fallback = ''): string => (typeof v === 'string' ? v : fallback);
const num = (v: unknown): number | null => (typeof v === 'number' ? v : null);
const millis = (v: unknown): number | null =>
  v && typeof (v as { toMillis?: unknown }).toMillis === 'function'
    ? (v as { toMillis(): number }).toMillis()
    : null;

function visualsOf(data: Data): Record<string, unknown> {
  const v = data?.visuals;
  return v && typeof v === 'object' ? (v as Record<string, unknown>) : {};
}

function nameOf(id: string, data: Data): string {
  const core = data?.core as { name?: unknown } | undefined;
  return text(core?.name, id);
}

function userOf(data: Data): string {
  return text((data?.meta as { userId?: unknown } | undefined)?.userId);
}

/** Live workers (fresh heartbeats at `now`), oldest first, with their ledger grants. */
export function liveWorkers(
  records: readonly PresenceRecord[],
  grants: Record<string, { limit?: unknown } | undefined>,
  now: number,
  marginMs: number,
  extras: Readonly<Record<string, BeatExtras>> = {},
): WorkerRow[] {
  return records
    .filter((r) => isAlive(r, now, marginMs))
    .map((r) => ({
      id: r.workerId,
      since: r.startedAt,
      running: r.running,
      demand: r.demand,
      share: num(grants[r.workerId]?.limit) ?? 0,
      beatAt: r.beatAt,
      intakePaused: extras[r.workerId]?.intakePaused ?? null,
      balance: extras[r.workerId]?.balance ?? null,
      windowUsed: extras[r.workerId]?.windowUsed ?? null,
      gate: extras[r.workerId]?.gate ?? null,
    }))
    .sort((a, b) => a.since - b.since || a.id.localeCompare(b.id));
}

export function jobRow(id: string, data: Data, now: number): JobRow {
  const view = viewOf(data);
  const waiting = isClaimable(view, now);
  const job = view.job;
  return {
    id,
    name: nameOf(id, data),
    userId: userOf(data),
    status: text(visualsOf(data).showcaseProcessingStatus),
    owner: waiting ? null : (job?.owner ?? null),
    attempts: typeof job?.attempts === 'number' ? job.attempts : 0,
    waiting,
    operator: job?.requestedBy === 'operator' || job?.click === 'operator',
  };
}

export function failureRow(id: string, data: Data): FailureRow {
  const error = (visualsOf(data).showcaseProcessingError ?? {}) as Record<string, unknown>;
  return {
    id,
    name: nameOf(id, data),
    code: text(error.code, 'UNKNOWN'),
    stage: text(error.stage),
    message: text(error.message),
    at: millis(error.at) ?? 0,
  };
}

export function finishedRow(id: string, data: Data): FinishedRow {
  const job = (visualsOf(data).showcaseJob ?? {}) as Record<string, unknown>;
  return {
    id,
    name: nameOf(id, data),
    finishedAt: millis(job.finishedAt) ?? 0,
    durationMs: num(job.durationMs),
    credits: num(job.credits),
  };
}

/**
 * Counts with the in-progress statuses taken from the active list when it is whole (not
 * truncated): the list is live, the count queries run on a timer.
 */
export function liveCounts(
  counts: Readonly<Record<string, number>> | null,
  active: readonly JobRow[],
  truncated: boolean,
): Record<string, number> | null {
  if (counts === null || truncated) return counts;
  const live: Record<string, number> = { ...counts };
  for (const s of IN_PROGRESS) live[s] = active.filter((j) => j.status === s).length;
  return live;
}

/** The `limit` owners with the most active jobs (waiting + running), then most waiting. */
export function deepestQueues(active: readonly JobRow[], limit = 5): UserQueue[] {
  const by = new Map<string, UserQueue>();
  for (const j of active) {
    const q = by.get(j.userId) ?? { userId: j.userId, waiting: 0, running: 0 };
    if (j.waiting) q.waiting += 1;
    else q.running += 1;
    by.set(j.userId, q);
  }
  return [...by.values()]
    .sort(
      (a, b) =>
        b.waiting + b.running - (a.waiting + a.running) ||
        b.waiting - a.waiting ||
        a.userId.localeCompare(b.userId),
    )
    .slice(0, limit);
}

/** Failures newer than `windowHours`, by code, most first. */
export function failuresByCode(
  items: readonly FailureRow[],
  now: number,
  windowHours: number,
): Array<{ code: string; count: number }> {
  const since = now - windowHours * 3_600_000;
  const counts = new Map<string, number>();
  for (const f of items) if (f.at >= since) counts.set(f.code, (counts.get(f.code) ?? 0) + 1);
  return [...counts]
    .map(([code, count]) => ({ code, count }))
    .sort((a, b) => b.count - a.count || a.code.localeCompare(b.code));
}

export function beatExtras(data: Data): BeatExtras {
  const paused = typeof data?.intakePaused === 'number' && data.intakePaused > 0;
  const by = text(data?.intakePausedBy, 'paused');
  const balance = num(data?.clipdropBalance);
  const used = num(data?.clipdropWindowUsed);
  const gatePaused = typeof data?.clipdropPaused === 'number' && data.clipdropPaused > 0;
  const since = num(data?.clipdropPausedSince);
  return {
    intakePaused: paused ? by : null,
    balance: balance !== null && Number.isFinite(balance) ? balance : null,
    windowUsed: used !== null && Number.isFinite(used) && used >= 0 ? used : null,
    gate: gatePaused
      ? {
          reason: text(data?.clipdropPausedBy, 'paused'),
          since: since !== null && Number.isFinite(since) ? since : null,
        }
      : null,
  };
}

/**
 * The key's use of its window: the calls the live workers report in theirs, summed (each
 * worker's window is its own, so this is the most the key's could hold; docs/console.md).
 * null when no live worker reports it.
 */
export function keyWindowUse(workers: readonly WorkerRow[]): number | null {
  const known = workers.map((w) => w.windowUsed).filter((n): n is number => n !== null);
  return known.length === 0 ? null : known.reduce((a, b) => a + b, 0);
}

/** The lowest balance the live workers report (each saw it on its own last call). */
export function lowestBalance(workers: readonly WorkerRow[]): number | null {
  const known = workers.map((w) => w.balance).filter((b): b is number => b !== null);
  return known.length === 0 ? null : Math.min(...known);
}

/** One job in full, for its own page. */
export interface JobDetail {
  id: string;
  /** Firestore's time of the read that gave this (a listener's snapshot). */
  readAt: number;
  exists: boolean;
  name: string;
  userId: string;
  status: string;
  /** Where the source is (the scheme and host, never the whole URL: it may carry a token). */
  source: string;
  hasResult: boolean;
  job: {
    jobId: string;
    state: string;
    owner: string | null;
    attempts: number;
    requestedBy: string;
    requestedAt: number | null;
    claimedAt: number | null;
    finishedAt: number | null;
    stage: string;
    durationMs: number | null;
    credits: number | null;
    calls: { removeBackground: number; upscale: number } | null;
    /** This attempt's stages as its writes told them, in the job's order (docs/console.md). */
    stages: StageRow[];
    /** The final write's: Google requests of the attempt that ended the job, that write included. */
    roundTrips: { sequential: number; total: number } | null;
  } | null;
  error: { code: string; message: string; stage: string; at: number | null } | null;
}

/** A stage of the job: `startedAt` on Firestore's clock (ms), `ms` its duration. */
export interface StageRow {
  stage: string;
  startedAt: number | null;
  ms: number | null;
}

/** `showcaseJob.stages`, in the job's order; stages it has not reached are left out. */
export function stagesOf(value: unknown): StageRow[] {
  const stages = value && typeof value === 'object' ? (value as Record<string, unknown>) : {};
  return IN_PROGRESS.flatMap((stage) => {
    const s = stages[stage] as { startedAt?: unknown; ms?: unknown } | undefined;
    if (!s || typeof s !== 'object') return [];
    const row = { stage, startedAt: millis(s.startedAt), ms: num(s.ms) };
    return row.startedAt === null && row.ms === null ? [] : [row];
  });
}

function roundTripsOf(value: unknown): { sequential: number; total: number } | null {
  const r = value as { sequential?: unknown; total?: unknown } | undefined;
  const sequential = num(r?.sequential);
  const total = num(r?.total);
  return sequential === null || total === null ? null : { sequential, total };
}

export function jobDetail(id: string, data: Data, readAt: number): JobDetail {
  const visuals = visualsOf(data);
  const job = visuals.showcaseJob as Record<string, unknown> | undefined;
  const error = visuals.showcaseProcessingError as Record<string, unknown> | undefined;
  const calls = job?.calls as { removeBackground?: unknown; upscale?: unknown } | undefined;
  let source: string;
  try {
    const url = new URL(text(visuals.imageUrl));
    source = `${url.protocol}//${url.host}`;
  } catch {
    source = '';
  }
  return {
    id,
    readAt,
    exists: data !== undefined,
    name: nameOf(id, data),
    userId: userOf(data),
    status: text(visuals.showcaseProcessingStatus),
    source,
    hasResult: visuals.showcaseProcessingStatus === 'complete',
    job:
      job && typeof job === 'object'
        ? {
            jobId: text(job.jobId),
            state: text(job.state),
            owner: text(job.owner) || null,
            attempts: num(job.attempts) ?? 0,
            requestedBy: text(job.requestedBy, job.click === 'operator' ? 'operator' : 'user'),
            requestedAt: millis(job.requestedAt),
            claimedAt: millis(job.claimedAt),
            finishedAt: millis(job.finishedAt),
            stage: text(job.stage),
            durationMs: num(job.durationMs),
            credits: num(job.credits),
            calls: calls
              ? {
                  removeBackground: num(calls.removeBackground) ?? 0,
                  upscale: num(calls.upscale) ?? 0,
                }
              : null,
            stages: stagesOf(job.stages),
            roundTrips: roundTripsOf(job.roundTrips),
          }
        : null,
    error:
      error && typeof error === 'object'
        ? {
            code: text(error.code, 'UNKNOWN'),
            message: text(error.message),
            stage: text(error.stage),
            at: millis(error.at),
          }
        : null,
  };
}
