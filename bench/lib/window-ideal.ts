/**
 * The shortest time a key's rolling window allows for N jobs of two calls each (remove the
 * background, then upscale), counting only the API's latency: what a worker that spends the
 * window in full and never makes a call wait on its own work would achieve.
 *
 * The window: at most `rpm` calls started in any 60 s, so call k + rpm may start as call k
 * leaves it (60 s after call k started). `slots` calls are in flight at most (every
 * replica's WORKER_CONCURRENCY together); a job's upscale goes before a new job's first call,
 * so the calls that wait for the window are upscales that end the run soonest.
 */
export interface IdealSpec {
  clicks: number;
  rpm: number;
  latencyMs: { removeBackground: number; upscale: number };
  slots: number;
  windowMs?: number;
}

export function idealMakespanMs(spec: IdealSpec): number {
  const windowMs = spec.windowMs ?? 60_000;
  const starts: number[] = [];
  /** Each slot: when it is free, and whether its job's upscale comes next. */
  const slots = Array.from({ length: Math.max(1, spec.slots) }, () => ({
    freeAt: 0,
    upscaleNext: false,
  }));
  let jobsLeft = spec.clicks;
  let end = 0;
  for (;;) {
    // The slot free soonest that has a call to make (an upscale first on a tie).
    const ready = slots
      .filter((s) => s.upscaleNext || jobsLeft > 0)
      .sort((a, b) => a.freeAt - b.freeAt || Number(b.upscaleNext) - Number(a.upscaleNext))[0];
    if (!ready) return end;
    const k = starts.length;
    const allowedAt = k < spec.rpm ? 0 : starts[k - spec.rpm]! + windowMs;
    const start = Math.max(ready.freeAt, allowedAt);
    starts.push(start);
    if (ready.upscaleNext) {
      ready.freeAt = start + spec.latencyMs.upscale;
      ready.upscaleNext = false;
      end = Math.max(end, ready.freeAt);
    } else {
      jobsLeft -= 1;
      ready.freeAt = start + spec.latencyMs.removeBackground;
      ready.upscaleNext = true;
    }
  }
}
