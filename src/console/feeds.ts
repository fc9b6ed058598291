import {
  AggregateField,
  FieldPath,
  Timestamp,
  type CollectionReference,
  type DocumentData,
  type DocumentSnapshot,
  type Firestore,
  type QuerySnapshot,
} from 'firebase-admin/firestore';
import { flagOf } from '../adapters/firestore/intake-flag.js';
import { recordOf } from '../adapters/firestore/presence.js';
import { USAGE_COLLECTION } from '../adapters/firestore/usage-docs.js';
import { readBudget, type BudgetState } from '../cli/budget.js';
import { INTAKE_FLAG_DOC, type IntakeFlag } from '../jobs/intake-flag.js';
import { utcDay } from '../jobs/user-limits.js';
import { monotonic } from '../jobs/clock.js';
import { fleetMarginMs, type PresenceRecord } from '../jobs/fleet.js';
import type { Log } from '../jobs/ports.js';
import { buildQuery, CONSOLE_QUERIES, type QuerySpec } from './queries.js';
import { createQueueCounts, type Changed } from './queue-counts.js';
import type { ReadMeter } from './read-meter.js';
import {
  beatExtras,
  deepestQueues,
  failureRow,
  failuresByCode,
  finishedRow,
  jobRow,
  liveCounts,
  liveWorkers,
  lowestBalance,
  type BeatExtras,
  type ConsoleState,
  type SpendState,
} from './state.js';

export interface FeedOptions {
  db: Firestore;
  characters: CollectionReference<DocumentData>;
  workersCollection: string;
  fleetCollection: string;
  presenceTimeoutMs: number;
  rpm: number;
  /** CLIPDROP_DAILY_CREDIT_BUDGET as this console reads it (the operator's `budget set` wins). */
  dailyCreditBudget: number;
  readOnly: boolean;
  log: Log;
  /** How often counts and the fleet's documents are read while someone watches. */
  countEveryMs?: number;
  /** How often the state is sent again without a change (last-beat ages, liveness). */
  tickMs?: number;
  /** How long listeners stay open after the last watcher leaves (a reload reuses them). */
  idleStopMs?: number;
  /** How often today's top users are read while someone watches. */
  usageEveryMs?: number;
  /** Counts the reads as billed (./read-meter.ts). */
  reads?: ReadMeter;
}

export interface ConsoleFeed {
  /**
   * The fleet, queue and failures now (for `/metrics`): from the listeners while someone
   * watches, else from one read of each (the active and finished lists are not read then).
   */
  snapshot(): Promise<ConsoleState>;
  /** Calls `onState` with every new state until the returned function is called. */
  subscribe(onState: (state: ConsoleState) => void): () => void;
  close(): void;
}

export const FAILURE_WINDOW_HOURS = 24;
const WORKERS_LIMIT = 100;
const RELISTEN_MS = 5_000;

type Docs = Array<{ id: string; data: DocumentData }>;

/** A query or a document: what a listener is attached to. */
interface Listenable<S> {
  onSnapshot(onNext: (snap: S) => void, onError: (err: Error) => void): () => void;
  get(): Promise<S>;
}

/**
 * The console's view of the fleet, kept live while a browser watches (docs/console.md):
 * listeners on the heartbeats, the operator's intake flag and three bounded lists of characters
 * (active, latest failures, latest completed); count queries and the fleet's documents (quota,
 * sweeper, budget) on a timer, today's top users on a slower one. Nothing is
 * read while nobody watches; the listeners close `idleStopMs` after the last watcher leaves.
 */
export function createConsoleFeed(opts: FeedOptions): ConsoleFeed {
  const countEveryMs = opts.countEveryMs ?? 30_000;
  const tickMs = opts.tickMs ?? 5_000;
  const idleStopMs = opts.idleStopMs ?? 30_000;
  const usageEveryMs = opts.usageEveryMs ?? 120_000;
  const margin = fleetMarginMs(opts.presenceTimeoutMs);
  const watchers = new Set<(state: ConsoleState) => void>();

  let workers: PresenceRecord[] = [];
  let extras: Record<string, BeatExtras> = {};
  let intake: IntakeFlag | null = null;
  let budget: BudgetState | null = null;
  let topUsers: SpendState['topUsers'] = [];
  let today: SpendState['today'] = null;
  let active: Docs = [];
  /** The active list's listener is open and has answered: its rows are live. */
  let activeLive = false;
  let failures: Docs = [];
  let finished: Docs = [];
  let grants: Record<string, { limit?: unknown } | undefined> = {};
  let leader: string | null = null;
  // Firestore's time as last heard, and when (monotonic): "now" on Firestore's clock.
  let readAt = 0;
  let readAtMono = monotonic();

  let stops: Array<() => void> = [];
  let idleTimer: NodeJS.Timeout | undefined;
  let emitTimer: NodeJS.Timeout | undefined;
  let closed = false;

  const serverNow = () => (readAt === 0 ? Date.now() : readAt + (monotonic() - readAtMono));
  const observe = (t: Timestamp) => {
    if (t.toMillis() >= readAt) {
      readAt = t.toMillis();
      readAtMono = monotonic();
    }
  };

  const queue = createQueueCounts({
    characters: opts.characters,
    reads: opts.reads,
    now: serverNow,
    observe,
    onChange: () => emitSoon(),
    log: opts.log,
  });

  function state(): ConsoleState {
    const now = serverNow();
    const activeRows = active.map((d) => jobRow(d.id, d.data, now));
    const truncated = active.length >= CONSOLE_QUERIES.active.limit;
    const failureRows = failures.map((d) => failureRow(d.id, d.data));
    const live = liveWorkers(workers, grants, now, margin, extras);
    return {
      serverNow: now,
      readOnly: opts.readOnly,
      rpm: opts.rpm,
      fleet: { workers: live, leader },
      intake,
      spend: budget && {
        day: budget.day,
        budget: budget.budget,
        source: budget.source,
        spent: budget.spent,
        held: budget.committed - budget.spent,
        committed: budget.committed,
        paused: budget.paused,
        balance: lowestBalance(live),
        topUsers,
        today: today?.day === budget.day ? today : null,
      },
      queue: {
        counts: activeLive ? liveCounts(queue.counts(), activeRows, truncated) : queue.counts(),
        countedAt: queue.countedAt(),
        hourly: queue.hourly(),
        users: deepestQueues(activeRows),
        running: activeRows.filter((r) => !r.waiting).length,
        waiting: activeRows.filter((r) => r.waiting).length,
        truncated,
      },
      active: activeRows,
      finished: finished.map((d) => finishedRow(d.id, d.data)),
      failures: {
        windowHours: FAILURE_WINDOW_HOURS,
        byCode: failuresByCode(failureRows, now, FAILURE_WINDOW_HOURS),
        items: failureRows,
        truncated: failures.length >= CONSOLE_QUERIES.failures.limit,
      },
    };
  }

  /** Coalesces a burst of changes into one push. */
  function emitSoon(): void {
    if (emitTimer || watchers.size === 0) return;
    emitTimer = setTimeout(() => {
      emitTimer = undefined;
      const s = state();
      for (const w of watchers) w(s);
    }, 100);
  }

  function listen<S extends { readTime: Timestamp }>(
    what: string,
    query: Listenable<S>,
    onDocs: (s: S, first: boolean) => void,
  ) {
    let unsubscribe = () => {};
    let retry: NodeJS.Timeout | undefined;
    const start = () => {
      let first = true;
      unsubscribe = query.onSnapshot(
        (snap) => {
          opts.reads?.listened(what, snap, first);
          observe(snap.readTime);
          onDocs(snap, first);
          first = false;
          emitSoon();
        },
        (err) => {
          opts.log.warn('console.listener.failed', { what, detail: String(err) });
          // Its rows are stale until it answers again: the counts then come from the queries.
          if (what === 'active') activeLive = false;
          retry = setTimeout(start, RELISTEN_MS);
        },
      );
    };
    start();
    stops.push(() => {
      clearTimeout(retry);
      unsubscribe();
    });
  }

  const docsOf = (snap: QuerySnapshot): Docs =>
    snap.docs.map((d) => ({ id: d.id, data: d.data() }));

  /** The fleet's documents, then the Queue's counts (./queue-counts.ts). */
  async function poll(chart = true): Promise<void> {
    const fleetCol = opts.db.collection(opts.fleetCollection);
    const [quota, sweeper, spend] = await Promise.all([
      fleetCol.doc('quota').get(),
      fleetCol.doc('sweeper').get(),
      readBudget(opts.db, opts.fleetCollection, opts.dailyCreditBudget),
      // The counts fail apart: the fleet's documents above are still taken.
      queue
        .countAll(chart)
        .catch((err: unknown) =>
          opts.log.warn('console.poll.failed', { what: 'counts', detail: String(err) }),
        ),
    ]);
    opts.reads?.got('fleetDocs', 3); // quota, sweeper, budget
    observe(quota.readTime);
    budget = spend;
    grants = (quota.data()?.grants ?? {}) as typeof grants;
    const lease = sweeper.data();
    const expiresAt = lease?.expiresAt instanceof Timestamp ? lease.expiresAt.toMillis() : 0;
    leader =
      typeof lease?.holder === 'string' && sweeper.readTime.toMillis() <= expiresAt + margin
        ? lease.holder
        : null;
    emitSoon();
  }

  let usageReadAt = -Infinity;
  /** Top users are read on a timer, and when a page opens on a list older than 10 s. */
  const runUsage = () => {
    usageReadAt = monotonic();
    return readTopUsers().catch((err: unknown) =>
      opts.log.warn('console.poll.failed', { what: 'topUsers', detail: String(err) }),
    );
  };

  /** Today's top users by credits: a bounded query (its index is declared). */
  async function readTopUsers(): Promise<void> {
    const day = utcDay(serverNow());
    const spec: QuerySpec = {
      ...CONSOLE_QUERIES.topUsers,
      where: CONSOLE_QUERIES.topUsers.where.map((w) =>
        w.field === 'day' ? { ...w, value: day } : w,
      ),
    };
    const usage = opts.db.collection(USAGE_COLLECTION);
    // The day's totals over every user, one sum each: an aggregation with a sum leaves out
    // the documents without its field, so sums of fields that live in different documents
    // (requests in the request counts', jobs and credits in the days') are asked apart.
    const sumOf = async (field: 'requests' | 'jobs' | 'credits') => {
      const agg = await usage
        .where('day', '==', day)
        .aggregate({ entries: AggregateField.count(), total: AggregateField.sum(field) })
        .get();
      opts.reads?.counted('spendTotals', agg.data().entries);
      return agg.data().total;
    };
    const [snap, requests, jobs, credits] = await Promise.all([
      buildQuery(usage, spec).get(),
      sumOf('requests'),
      sumOf('jobs'),
      sumOf('credits'),
    ]);
    opts.reads?.got('topUsers', snap.size);
    observe(snap.readTime);
    today = { day, requests, jobs, credits };
    topUsers = snap.docs.map((d) => {
      const data = d.data();
      return {
        userId: typeof data.userId === 'string' ? data.userId : d.id,
        jobs: typeof data.jobs === 'number' ? data.jobs : 0,
        credits: typeof data.credits === 'number' ? data.credits : 0,
      };
    });
    emitSoon();
  }

  const q = CONSOLE_QUERIES;
  const flagRef = opts.db.collection(opts.fleetCollection).doc(INTAKE_FLAG_DOC);
  /** A list's change after its first snapshot moves the counts of the statuses it lists. */
  const recount = (what: Changed, first: boolean) => {
    if (!first) queue.changed(what);
  };
  type OnDocs = (s: QuerySnapshot, first: boolean) => void;
  const sources: Array<[string, Listenable<QuerySnapshot>, OnDocs]> = [
    [
      'workers',
      opts.db
        .collection(opts.workersCollection)
        .orderBy(FieldPath.documentId())
        .limit(WORKERS_LIMIT),
      (snap) => {
        workers = snap.docs.map(recordOf);
        extras = Object.fromEntries(snap.docs.map((d) => [d.id, beatExtras(d.data())]));
      },
    ],
    [
      'failures',
      buildQuery(opts.characters, q.failures),
      (s, first) => {
        failures = docsOf(s);
        recount('failed', first);
      },
    ],
    [
      'active',
      buildQuery(opts.characters, q.active),
      (s, first) => {
        active = docsOf(s);
        activeLive = true;
        // Whole, the list gives the in-progress counts itself (state.ts, liveCounts).
        if (active.length >= q.active.limit) recount('active', first);
      },
    ],
    [
      'finished',
      buildQuery(opts.characters, q.finished),
      (s, first) => {
        finished = docsOf(s);
        recount('complete', first);
      },
    ],
  ];

  function open(): void {
    if (stops.length > 0 || closed) return;
    for (const [what, query, onDocs] of sources) listen(what, query, onDocs);
    // The operator's flag: live, so a Pause shows on every open page within a second.
    listen('intake', flagRef, (snap: DocumentSnapshot) => (intake = flagOf(snap)));
    const runPoll = () =>
      poll().catch((err: unknown) => opts.log.warn('console.poll.failed', { detail: String(err) }));
    void runPoll();
    void runUsage();
    const counter = setInterval(() => void runPoll(), countEveryMs);
    const usage = setInterval(() => void runUsage(), usageEveryMs);
    const ticker = setInterval(emitSoon, tickMs);
    stops.push(() => {
      clearInterval(counter);
      clearInterval(usage);
      clearInterval(ticker);
    });
  }

  function shut(): void {
    queue.stop();
    activeLive = false;
    for (const stop of stops) stop();
    stops = [];
    clearTimeout(emitTimer);
    emitTimer = undefined;
  }

  return {
    async snapshot() {
      if (stops.length === 0) {
        await Promise.all([
          // `/metrics` shows no chart: its hours are not counted for a scrape.
          poll(false),
          // The day's totals, at most once a minute for scrapes.
          monotonic() - usageReadAt > 60_000 ? runUsage() : undefined,
          flagRef.get().then((snap) => {
            opts.reads?.got('intake', 1);
            intake = flagOf(snap);
          }),
          ...sources.slice(0, 2).map(async ([what, query, onDocs]) => {
            const snap = await query.get();
            opts.reads?.got(what, snap.size);
            observe(snap.readTime);
            onDocs(snap, true);
          }),
        ]);
      }
      return state();
    },
    subscribe(onState) {
      clearTimeout(idleTimer);
      watchers.add(onState);
      const fresh = stops.length === 0;
      open();
      if (!fresh && monotonic() - usageReadAt > 10_000) void runUsage();
      onState(state());
      return () => {
        watchers.delete(onState);
        if (watchers.size === 0) {
          clearTimeout(idleTimer);
          idleTimer = setTimeout(shut, idleStopMs);
        }
      };
    },
    close() {
      closed = true;
      clearTimeout(idleTimer);
      watchers.clear();
      shut();
    },
  };
}
