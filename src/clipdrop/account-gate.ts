import { monotonic } from '../jobs/clock.js';

/** What `enter` grants: whether this call is the probe, and how many pauses came before it. */
export interface Entry {
  probe: boolean;
  pauses: number;
}

export type PauseReason = 'no-credits' | 'unauthorized' | 'outage';

export interface GateEvents {
  paused(reason: PauseReason, detail: string): void;
  resumed(reason: PauseReason, pausedMs: number): void;
  /** The next probe is due in `delayMs` (for logs): after a refusal, or a transient failure. */
  probeScheduled?(delayMs: number, after: 'pause' | 'refused' | 'transient'): void;
}

/** One timer at a time is all the gate needs; injected so tests drive the clock. */
export interface GateTimers {
  /** Calls `fn` once after `ms`; returns a function that cancels it. */
  after(ms: number, fn: () => void): () => void;
  now(): number;
}

export interface AccountGateOptions {
  /** Wait before the first probe of a pause; doubles after each refused probe. */
  firstProbeMs: number;
  /** The longest wait between two probes (CLIPDROP_PROBE_MS). */
  maxProbeMs: number;
  /**
   * Wait before probing again after a probe met a transient failure (5xx, reset, timeout)
   * during an account pause: the normal retry backoff, `retry` counting from 1.
   */
  transientRetryMs(retry: number): number;
  /** Consecutive transient failures (5xx, network) that pause everything. */
  outageThreshold: number;
  events: GateEvents;
  timers?: GateTimers;
}

const realTimers: GateTimers = {
  after(ms, fn) {
    const timer = setTimeout(fn, ms);
    // A pause must not keep a stopping process alive.
    timer.unref();
    return () => clearTimeout(timer);
  },
  now: monotonic,
};

/**
 * Account-wide trouble (no credits, a revoked key, an outage) is not any job's fault, so it
 * must not fail jobs. The gate closes on it: callers wait (jobs stay claimed, nothing is
 * paid), and one waiting call at a time goes through as a probe. A 402 or 401 costs no
 * credit, so the probe is simply the next real call: when it succeeds the gate opens and
 * everyone resumes.
 *
 * Probe schedule: the first probe comes `firstProbeMs` after the pause; each refused probe
 * doubles the wait, up to `maxProbeMs`, so a short outage costs seconds and a long one costs
 * a request every `maxProbeMs`. A probe that meets a transient failure during an account
 * pause learnt nothing about the account: it is tried again on the normal retry backoff,
 * without a whole probe interval. Only the probe's own answer, or the pause itself, sets
 * the timer: answers of calls already in flight when the gate closed never push it back.
 */
export class AccountGate {
  private reason: PauseReason | undefined;
  private pausedAt = 0;
  /** Pauses so far: a call sent before the current pause proves nothing about it. */
  private pauses = 0;
  private failures = 0;
  private probing = false;
  private cancelProbe: (() => void) | undefined;
  private probeDue = false;
  /** The wait after the next refused probe (doubles). */
  private intervalMs = 0;
  /** Consecutive transient failures of probes in this pause. */
  private transientProbes = 0;
  private readonly waiters: Array<() => void> = [];
  private readonly timers: GateTimers;

  constructor(private readonly opts: AccountGateOptions) {
    this.timers = opts.timers ?? realTimers;
  }

  get paused(): PauseReason | undefined {
    return this.reason;
  }

  /**
   * Resolves when the caller may send: at once when open; while paused, when its turn to
   * probe comes or the gate reopens. Returns whether this call is the probe.
   */
  enter(signal?: AbortSignal): Promise<Entry> {
    if (!this.reason) return Promise.resolve({ probe: false, pauses: this.pauses });
    if (this.probeDue && !this.probing) {
      this.probeDue = false;
      this.probing = true;
      return Promise.resolve({ probe: true, pauses: this.pauses });
    }
    return new Promise((resolve, reject) => {
      const wake = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve(this.enterSync());
      };
      const onAbort = () => {
        const i = this.waiters.indexOf(wake);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal?.reason as Error);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(wake);
    });
  }

  /**
   * The call got a 200: the account is fine, unless the call was sent before the current pause
   * began (it was counted before the 402 or 401 that closed the gate, so it says nothing about
   * now; reopening on it would only meet the refusal again).
   */
  succeeded(wasProbe: boolean, sentDuringPauses?: number): void {
    this.failures = 0;
    if (wasProbe) this.probing = false;
    if (!this.reason) return;
    if (!wasProbe && sentDuringPauses !== undefined && sentDuringPauses < this.pauses) return;
    const reason = this.reason;
    this.reason = undefined;
    this.cancelProbe?.();
    this.cancelProbe = undefined;
    this.probeDue = false;
    this.opts.events.resumed(reason, this.timers.now() - this.pausedAt);
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** Any answer but a 200 or a 5xx: the service is up; a probe proves nothing else. */
  reachable(wasProbe: boolean): void {
    this.failures = 0;
    this.abandoned(wasProbe);
  }

  /** 402 / 401 / 403: pause now. Returns true: the caller should wait and send again. */
  accountRefused(reason: 'no-credits' | 'unauthorized', detail: string, wasProbe: boolean): true {
    this.pause(reason, detail);
    if (wasProbe) this.probeRefused();
    return true;
  }

  /**
   * A transient failure (5xx, network, timeout). Returns true when the gate is (now) paused,
   * so the caller should wait and send again instead of failing its job.
   */
  transientFailure(detail: string, wasProbe: boolean): boolean {
    this.failures += 1;
    if (!this.reason && this.failures < this.opts.outageThreshold) return false;
    this.pause(this.reason ?? 'outage', detail);
    if (!wasProbe) return true;
    if (this.reason === 'outage') {
      // During an outage a failed probe is the outage answering: back off like a refusal.
      this.probeRefused();
    } else {
      this.probing = false;
      this.transientProbes += 1;
      this.scheduleProbe(this.opts.transientRetryMs(this.transientProbes), 'transient');
    }
    return true;
  }

  /** A probe that ended without an answer (aborted at shutdown): let another call probe. */
  abandoned(wasProbe: boolean): void {
    if (!wasProbe) return;
    this.probing = false;
    if (this.reason) this.releaseProbe();
  }

  /** Stops the probe timer (shutdown). */
  close(): void {
    this.cancelProbe?.();
    this.cancelProbe = undefined;
  }

  private enterSync(): Entry {
    if (!this.reason) return { probe: false, pauses: this.pauses };
    // Woken for a probe.
    this.probing = true;
    return { probe: true, pauses: this.pauses };
  }

  /** Closes the gate, or updates the reason of a closed one (its probe timer is left alone). */
  private pause(reason: PauseReason, detail: string): void {
    if (this.reason) {
      this.reason = reason;
      return;
    }
    this.reason = reason;
    this.pauses += 1;
    this.pausedAt = this.timers.now();
    this.transientProbes = 0;
    this.intervalMs = Math.min(this.opts.firstProbeMs, this.opts.maxProbeMs);
    this.opts.events.paused(reason, detail);
    this.scheduleProbe(this.intervalMs, 'pause');
  }

  private probeRefused(): void {
    this.probing = false;
    this.transientProbes = 0;
    this.intervalMs = Math.min(this.intervalMs * 2, this.opts.maxProbeMs);
    this.scheduleProbe(this.intervalMs, 'refused');
  }

  private scheduleProbe(delayMs: number, after: 'pause' | 'refused' | 'transient'): void {
    this.cancelProbe?.();
    this.probeDue = false;
    this.opts.events.probeScheduled?.(delayMs, after);
    this.cancelProbe = this.timers.after(delayMs, () => {
      this.cancelProbe = undefined;
      if (this.reason && !this.probing) this.releaseProbe();
    });
  }

  /** The first waiter probes; with none waiting, the next caller does. */
  private releaseProbe(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.probeDue = true;
  }
}
