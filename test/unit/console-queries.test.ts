import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  compositeIndexOf,
  CONSOLE_QUERIES,
  DOCUMENT_ID,
  hourCount,
  type QuerySpec,
} from '../../src/console/queries.js';

interface DeclaredIndex {
  collectionGroup: string;
  queryScope: string;
  fields: Array<{ fieldPath: string; order: string }>;
}

const declared = (
  JSON.parse(readFileSync('firestore.indexes.json', 'utf8')) as { indexes: DeclaredIndex[] }
).indexes;

describe("the console's queries", () => {
  it('are each bounded: a limit and an order', () => {
    for (const spec of Object.values(CONSOLE_QUERIES) as QuerySpec[]) {
      expect(spec.limit, spec.name).toBeGreaterThan(0);
      expect(spec.limit, spec.name).toBeLessThanOrEqual(200);
      expect(spec.orderBy.length, spec.name).toBeGreaterThan(0);
    }
  });

  it('each have their composite index declared in firestore.indexes.json', () => {
    const needed = (Object.values(CONSOLE_QUERIES) as QuerySpec[])
      .map((spec) => ({ spec, index: compositeIndexOf(spec) }))
      .filter((n) => n.index !== undefined);
    // Four of them order by a field they do not filter on: those need an index.
    expect(needed.map((n) => n.spec.name).sort()).toEqual([
      'failures',
      'failuresOfCode',
      'finished',
      'topUsers',
    ]);
    for (const { spec, index } of needed) {
      const match = declared.find(
        (d) =>
          d.collectionGroup === (spec.collection ?? 'characters') &&
          d.queryScope === 'COLLECTION' &&
          JSON.stringify(d.fields) === JSON.stringify(index?.fields),
      );
      expect(match, `${spec.name} needs ${JSON.stringify(index)}`).toBeDefined();
    }
  });

  it("the chart's count queries use their list's index (declared), with a range on its order", () => {
    for (const status of ['complete', 'failed'] as const) {
      const spec = hourCount(status, 1, 2);
      const index = compositeIndexOf(spec);
      expect(index, spec.name).toBeDefined();
      const list = status === 'complete' ? CONSOLE_QUERIES.finished : CONSOLE_QUERIES.failures;
      expect(index).toEqual(compositeIndexOf(list));
      expect(spec.where.filter((w) => w.op === '>=' || w.op === '<').map((w) => w.field)).toEqual([
        list.orderBy[0].field,
        list.orderBy[0].field,
      ]);
    }
  });

  it('declares no index no query needs', () => {
    const used = (Object.values(CONSOLE_QUERIES) as QuerySpec[]).map((s) =>
      JSON.stringify(compositeIndexOf(s)?.fields),
    );
    for (const d of declared) expect(used).toContain(JSON.stringify(d.fields));
  });
});

describe('which queries need a composite index (Firestore’s rule)', () => {
  const q = (where: string[], orderBy: Array<[string, 'asc' | 'desc']>): QuerySpec => ({
    name: 'q',
    where: where.map((field) => ({ field, op: '==', value: 1 })),
    orderBy: orderBy.map(([field, direction]) => ({ field, direction })),
    limit: 10,
  });

  it('none for one field, or one field ordered by document id', () => {
    expect(compositeIndexOf(q(['a'], [['a', 'asc']]))).toBeUndefined();
    expect(compositeIndexOf(q(['a'], [[DOCUMENT_ID, 'asc']]))).toBeUndefined();
    expect(compositeIndexOf(q([], [['b', 'desc']]))).toBeUndefined();
  });

  it('equality fields first, then the order, with its direction', () => {
    expect(compositeIndexOf(q(['a'], [['b', 'desc']]))).toEqual({
      fields: [
        { fieldPath: 'a', order: 'ASCENDING' },
        { fieldPath: 'b', order: 'DESCENDING' },
      ],
    });
  });
});
