import {
  FieldPath,
  type CollectionReference,
  type DocumentData,
  type Query,
} from 'firebase-admin/firestore';
import { F } from '../adapters/firestore/job-fields.js';
import { IN_PROGRESS } from '../jobs/status.js';

/**
 * Every query the console runs on the characters, as data: the feeds build them from here,
 * and test/unit/console-queries.test.ts checks that each one's composite index is declared in
 * firestore.indexes.json (the emulator does not enforce indexes; production refuses a query
 * without its index). Each is bounded: a limit and an order.
 */
export interface QuerySpec {
  name: string;
  /** The collection (group) queried: the characters, unless it says otherwise. */
  collection?: 'characters' | 'showcaseUsage';
  where: ReadonlyArray<{ field: string; op: '==' | 'in' | '>' | '>=' | '<'; value: unknown }>;
  orderBy: ReadonlyArray<{ field: string; direction: 'asc' | 'desc' }>;
  limit: number;
}

/** Firestore's name for ordering by document id. */
export const DOCUMENT_ID = '__name__';

export const ACTIVE_LIMIT = 100;
export const FAILURES_LIMIT = 200;
export const FINISHED_LIMIT = 15;
export const TOP_USERS_LIMIT = 10;
/** The most failures one Retry all of a code clicks (docs/console.md). */
export const RETRY_ALL_LIMIT = 100;

export const CONSOLE_QUERIES = {
  /** Jobs requested or running (a fresh click has no `showcaseJob` yet: ordered by id). */
  active: {
    name: 'active',
    where: [{ field: F.status, op: 'in', value: [...IN_PROGRESS] }],
    orderBy: [{ field: DOCUMENT_ID, direction: 'asc' }],
    limit: ACTIVE_LIMIT,
  },
  /** The latest failures, newest first: by code over 24 h, and the list to retry from. */
  failures: {
    name: 'failures',
    where: [{ field: F.status, op: '==', value: 'failed' }],
    orderBy: [{ field: `${F.error}.at`, direction: 'desc' }],
    limit: FAILURES_LIMIT,
  },
  /** The latest completed jobs, newest first. */
  finished: {
    name: 'finished',
    where: [{ field: F.status, op: '==', value: 'complete' }],
    orderBy: [{ field: `${F.job}.finishedAt`, direction: 'desc' }],
    limit: FINISHED_LIMIT,
  },
  /**
   * Today's users by credits spent, most first (`showcaseUsage/day-{day}-{uid}`; `day` is set
   * per read). A user with jobs counted and no credit yet is not listed.
   */
  topUsers: {
    name: 'topUsers',
    collection: 'showcaseUsage',
    where: [
      { field: 'day', op: '==', value: '' },
      { field: 'credits', op: '>', value: 0 },
    ],
    orderBy: [{ field: 'credits', direction: 'desc' }],
    limit: TOP_USERS_LIMIT,
  },
  /**
   * One code's latest failures, newest first (`code` is set per read): what Retry all of a
   * code clicks, one more than it may so it can tell there are more.
   */
  failuresOfCode: {
    name: 'failuresOfCode',
    where: [
      { field: F.status, op: '==', value: 'failed' },
      { field: `${F.error}.code`, op: '==', value: '' },
    ],
    orderBy: [{ field: `${F.error}.at`, direction: 'desc' }],
    limit: RETRY_ALL_LIMIT + 1,
  },
} as const satisfies Record<string, QuerySpec>;

/** The chart's bars: how many jobs of a status ended in an hour, by count queries. */
export const HOUR_COUNT_LIMIT = 10_000;

/**
 * The count query of one bar: jobs `complete` (by `showcaseJob.finishedAt`) or `failed` (by
 * the error's `at`) in [from, to). Ordered as that status's list is, so the list's index
 * serves it; a count of at most HOUR_COUNT_LIMIT (Firestore bills a read per 1,000 entries).
 */
export function hourCount(status: 'complete' | 'failed', from: unknown, to: unknown): QuerySpec {
  const list = status === 'complete' ? CONSOLE_QUERIES.finished : CONSOLE_QUERIES.failures;
  const field = list.orderBy[0].field;
  return {
    name: `${status}InHour`,
    where: [...list.where, { field, op: '>=', value: from }, { field, op: '<', value: to }],
    orderBy: list.orderBy,
    limit: HOUR_COUNT_LIMIT,
  };
}

export function buildQuery(
  characters: CollectionReference<DocumentData>,
  spec: QuerySpec,
): Query<DocumentData> {
  let query: Query<DocumentData> = characters;
  for (const w of spec.where) query = query.where(w.field, w.op, w.value);
  for (const o of spec.orderBy) {
    query = query.orderBy(o.field === DOCUMENT_ID ? FieldPath.documentId() : o.field, o.direction);
  }
  return query.limit(spec.limit);
}

/** An index as firestore.indexes.json declares one. */
export interface IndexFields {
  fields: Array<{ fieldPath: string; order: 'ASCENDING' | 'DESCENDING' }>;
}

/**
 * The composite index a query needs, or undefined when single-field indexes serve it
 * (Firestore's rule: filters and orders on one field, the document id aside, need none;
 * equality filters then an order on another field need the equality fields, then the order's).
 */
export function compositeIndexOf(spec: QuerySpec): IndexFields | undefined {
  const ordered = spec.orderBy.filter((o) => o.field !== DOCUMENT_ID);
  const filtered = spec.where
    .map((w) => w.field)
    .filter((f) => !ordered.some((o) => o.field === f));
  const fields = new Set([...filtered, ...ordered.map((o) => o.field)]);
  if (fields.size <= 1) return undefined;
  return {
    fields: [
      ...[...new Set(filtered)].map((fieldPath) => ({ fieldPath, order: 'ASCENDING' as const })),
      ...ordered.map((o) => ({
        fieldPath: o.field,
        order: o.direction === 'asc' ? ('ASCENDING' as const) : ('DESCENDING' as const),
      })),
    ],
  };
}
