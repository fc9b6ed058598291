export type PauseReason = 'no-credits' | 'unauthorized' | 'outage';

export interface GateEvents {
  paused(reason: PauseReason, detail: string): void;
  resumed(reason: PauseReason, pausedMs: number): void;
}

export interface AccountGateOptions {
  /** How long to wait between probes while paused. */
  probeMs: number;
  /** Consecutive transient failures (5xx, network) that pause everything. */
  outageThreshold: number;
  events: GateEvents;
  now?: () => number;
}

/**
 * Account-wide trouble (no credits, a revoked key, an outage) is not any job's fault, so it
 * must not fail jobs. The gate closes on it: callers wait (jobs stay claimed, nothing is
 * paid), and every `probeMs` one waiting call goes through as a probe. A 402 or 401 costs no
 * credit, so the probe is simply the next real call: when it succeeds the gate opens and
 * everyone resumes.
 */
export class AccountGate {
  private reason: PauseReason | undefined;
  private pausedAt = 0;
  private failures = 0;
  private probing = false;
  private probeTimer: NodeJS.Timeout | undefined;
  private probeDue = false;
  private readonly waiters: Array<() => void> = [];
  private readonly now: () => number;

  constructor(private readonly opts: AccountGateOptions) {
    this.now = opts.now ?? Date.now;
  }

  get paused(): PauseReason | undefined {
    return this.reason;
  }

  /**
   * Resolves when the caller may send: at once when open; while paused, when its turn to
   * probe comes or the gate reopens. Returns whether this call is the probe.
   */
  enter(signal?: AbortSignal): Promise<{ probe: boolean }> {
    if (!this.reason) return Promise.resolve({ probe: false });
    if (this.probeDue && !this.probing) {
      this.probeDue = false;
      this.probing = true;
      return Promise.resolve({ probe: true });
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

  /** The call got a usable answer (success, or a 4xx about the image): the account is fine. */
  succeeded(wasProbe: boolean): void {
    this.failures = 0;
    if (wasProbe) this.probing = false;
    if (!this.reason) return;
    const reason = this.reason;
    this.reason = undefined;
    clearTimeout(this.probeTimer);
    this.opts.events.resumed(reason, this.now() - this.pausedAt);
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** Any answer but a 200 or a 5xx: the service is up; a probe proves nothing else. */
  reachable(wasProbe: boolean): void {
    this.failures = 0;
    this.abandoned(wasProbe);
  }

  /** 402 / 401 / 403: pause now. Returns true: the caller should wait and send again. */
  accountRefused(reason: 'no-credits' | 'unauthorized', detail: string, wasProbe: boolean): true {
    if (wasProbe) this.probing = false;
    this.pause(reason, detail);
    return true;
  }

  /**
   * A transient failure (5xx, network, timeout). Returns true when the gate is (now) paused,
   * so the caller should wait and send again instead of failing its job.
   */
  transientFailure(detail: string, wasProbe: boolean): boolean {
    if (wasProbe) this.probing = false;
    this.failures += 1;
    if (this.reason || this.failures >= this.opts.outageThreshold) {
      this.pause(this.reason ?? 'outage', detail);
      return true;
    }
    return false;
  }

  /** A probe that ended without an answer (aborted at shutdown): let another call probe. */
  abandoned(wasProbe: boolean): void {
    if (!wasProbe) return;
    this.probing = false;
    if (this.reason) {
      const next = this.waiters.shift();
      if (next) next();
      else this.probeDue = true;
    }
  }

  /** Stops the probe timer (shutdown). */
  close(): void {
    clearTimeout(this.probeTimer);
  }

  private enterSync(): { probe: boolean } {
    if (!this.reason) return { probe: false };
    // Woken for a probe.
    this.probing = true;
    return { probe: true };
  }

  private pause(reason: PauseReason, detail: string): void {
    if (!this.reason) {
      this.reason = reason;
      this.pausedAt = this.now();
      this.opts.events.paused(reason, detail);
    } else {
      this.reason = reason;
    }
    this.scheduleProbe();
  }

  private scheduleProbe(): void {
    clearTimeout(this.probeTimer);
    this.probeDue = false;
    this.probeTimer = setTimeout(() => {
      if (!this.reason || this.probing) return;
      const next = this.waiters.shift();
      if (next) next();
      else this.probeDue = true; // the next caller probes
    }, this.opts.probeMs);
    this.probeTimer.unref();
  }
}
