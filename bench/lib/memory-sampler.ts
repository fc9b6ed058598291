/**
 * Where the worker's memory is, from its own /metrics (prom-client's default process
 * metrics): sampled twice a second, the sample with the largest resident set is kept, split
 * into the V8 heap, Buffers and other external memory, and the rest (native: libvips, the
 * allocator, code). Nothing is reported when the worker has no /metrics.
 */
export interface MemorySplit {
  rssMb: number;
  heapUsedMb: number;
  externalMb: number;
  /** RSS − heap used − external: libvips pixel buffers, malloc arenas, code, stacks. */
  otherMb: number;
  samples: number;
}

const metric = (text: string, name: string): number | undefined => {
  const match = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)`, 'm').exec(text);
  return match ? Number(match[1]) : undefined;
};

export function sampleMemory(port: number, everyMs = 500): { stop(): MemorySplit | undefined } {
  let peak: MemorySplit | undefined;
  let samples = 0;
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2_000) })
      .then((r) => (r.ok ? r.text() : ''))
      .then((text) => {
        const rss = metric(text, 'process_resident_memory_bytes');
        const heap = metric(text, 'nodejs_heap_size_used_bytes');
        const external = metric(text, 'nodejs_external_memory_bytes');
        if (rss === undefined || heap === undefined || external === undefined) return;
        samples++;
        if (!peak || rss / 1e6 > peak.rssMb) {
          const mb = (v: number) => Math.round(v / 1e5) / 10;
          peak = {
            rssMb: mb(rss),
            heapUsedMb: mb(heap),
            externalMb: mb(external),
            otherMb: mb(rss - heap - external),
            samples: 0,
          };
        }
      })
      .catch(() => undefined)
      .finally(() => (busy = false));
  }, everyMs);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      return peak ? { ...peak, samples } : undefined;
    },
  };
}
