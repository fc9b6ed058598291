/**
 * The console's Firestore reads, counted as production bills them (docs/console.md, "What an
 * open console costs"), by source: a query or a document get costs one read per document it
 * returns and at least one; a listener one per document in its first snapshot and one per
 * change delivered after (a document that leaves a query's results because it changed
 * included); a count aggregation one per 1,000 index entries counted, at least one. The
 * emulator bills nothing, so this is how the bench and an operator see what a page costs.
 */
export interface ReadMeter {
  /** A query's or a get's result: `docs` documents (a missing document or none: one read). */
  got(source: string, docs: number): void;
  /**
   * A listener's snapshot: its changes (every document in the first, which bills at least one
   * read like any query), or a document's one.
   */
  listened(source: string, snap: object, first?: boolean): void;
  /** A count aggregation that counted `count` entries. */
  counted(source: string, count: number): void;
  /** Reads so far, by source. */
  bySource(): Record<string, number>;
}

interface QueryLike {
  docChanges(): readonly unknown[];
}

export function countReads(): ReadMeter {
  const reads = new Map<string, number>();
  const add = (source: string, n: number) => reads.set(source, (reads.get(source) ?? 0) + n);
  return {
    got: (source, docs) => add(source, Math.max(1, docs)),
    // A query snapshot's first docChanges() lists every document as added: the first
    // snapshot and the later ones bill alike. A document snapshot has none: one read each.
    // A document deleted out of a list is not billed; one that changed out of it is. Both come
    // as "removed", so a deletion is counted too: the meter errs high, never low.
    listened: (source, snap, first = false) =>
      add(
        source,
        'docChanges' in snap ? Math.max(first ? 1 : 0, (snap as QueryLike).docChanges().length) : 1,
      ),
    counted: (source, count) => add(source, Math.max(1, Math.ceil(count / 1000))),
    bySource: () => Object.fromEntries(reads),
  };
}

/** The counter for the console's `/metrics` (Prometheus text). */
export function renderReadMetrics(meter: ReadMeter): string {
  const name = 'showcase_console_firestore_reads_total';
  const lines = [
    `# HELP ${name} Firestore reads of the console's views (listeners, polls; not its actions), as billed (docs/console.md), by source.`,
    `# TYPE ${name} counter`,
    ...Object.entries(meter.bySource())
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([source, n]) => `${name}{source="${source}"} ${n}`),
  ];
  return `${lines.join('\n')}\n`;
}
