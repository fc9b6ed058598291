import { describe, expect, it } from 'vitest';
import { countReads, renderReadMetrics } from '../../src/console/read-meter.js';

const querySnap = (changes: number) => ({
  docChanges: () => Array.from({ length: changes }, (_, i) => ({ type: 'added', i })),
});

describe('the console read meter (as Firestore bills)', () => {
  it('bills a query or get one read per document, and one when it returns none', () => {
    const m = countReads();
    m.got('topUsers', 10);
    m.got('topUsers', 0);
    m.got('intake', 1);
    expect(m.bySource()).toEqual({ topUsers: 11, intake: 1 });
  });

  it('bills a listener its changes (the first snapshot: every document), a document listener one a snapshot', () => {
    const m = countReads();
    m.listened('failures', querySnap(7), true); // the first snapshot: 7 documents, all "added"
    m.listened('failures', querySnap(1)); // one changed
    m.listened('failures', querySnap(0)); // metadata only: nothing billed
    m.listened('active', querySnap(0), true); // a first snapshot of nothing: a query's minimum
    m.listened('job', { exists: true }); // a document snapshot
    m.listened('job', { exists: true });
    expect(m.bySource()).toEqual({ failures: 8, active: 1, job: 2 });
  });

  it('bills a count one read per started 1,000 entries, at least one', () => {
    const m = countReads();
    for (const n of [0, 1, 1000]) m.counted('small', n);
    m.counted('large', 1001);
    m.counted('large', 25_000);
    expect(m.bySource()).toEqual({ small: 3, large: 2 + 25 });
  });

  it('renders a Prometheus counter by source, sorted', () => {
    const m = countReads();
    m.got('workers', 2);
    m.counted('counts', 10);
    const text = renderReadMetrics(m);
    expect(text).toContain('# TYPE showcase_console_firestore_reads_total counter');
    const samples = text.split('\n').filter((l) => l.startsWith('showcase_'));
    expect(samples).toEqual([
      'showcase_console_firestore_reads_total{source="counts"} 1',
      'showcase_console_firestore_reads_total{source="workers"} 2',
    ]);
    expect(text.endsWith('\n')).toBe(true);
  });
});
