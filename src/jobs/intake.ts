import { CREDITS_PER_JOB } from './budget.js';

/**
 * The intake pause: while it holds, this worker claims nothing new. Clicks stay waiting, with
 * no lease and no download, and none fails; jobs already claimed and takeovers of a dead
 * worker's jobs finish; the sweep goes on. Each pause has a reason: `budget` (the fleet's
 * daily credit budget is spent, pipeline/credit-budget.ts) or `operator` (a flag an operator
 * sets). The job runner asks `Intake.admit` before every claim but a takeover's.
 */

export type PauseReason = 'budget' | 'operator';

export interface IntakePause {
  reason: PauseReason;
  /** When it started (ms epoch, Firestore's time as this worker knows it). */
  since: number;
  /** For people: why, in a few words (e.g. "10 of 10 credits committed today"). */
  detail: string;
}

/** What a job holds of the day's credit budget, from before its claim to its end. */
export interface CreditHold {
  /** Credits promised to the job. */
  readonly credits: number;
  /** A paid call goes out: a call whose job ends before its answer counts as billed. */
  callStarted(): void;
  /** Its answer: `credits` billed (`x-credits-consumed`; 0 when the call failed). */
  callEnded(credits: number): void;
  /**
   * The job ended: the credits it did not use go back. `lost`: another worker finishes it
   * (taken over) on these credits, so they stay counted. Later calls do nothing.
   */
  end(lost: boolean): void;
}

/** A hold for a job outside the budget (no budget in force, or nothing left to pay). */
export const NO_HOLD: CreditHold = {
  credits: 0,
  callStarted: () => undefined,
  callEnded: () => undefined,
  end: () => undefined,
};

/** The credits of the day's budget, as a worker holds them (pipeline/credit-budget.ts). */
export interface CreditReserver {
  /**
   * Resolves once `credits` are held for one job; undefined once closed (shutdown), or once
   * `stillOpen` says another worker took the job meanwhile (asked while it waits).
   */
  reserve(
    credits: number,
    signal: AbortSignal,
    stillOpen?: () => boolean,
  ): Promise<CreditHold | undefined>;
  /**
   * Holds `credits` at once, past the budget if need be, and has the budget's document count
   * them: for a job that must finish (taken over, or already past its first paid call), whose
   * calls may repeat ones its first worker was billed for.
   */
  force(credits: number): CreditHold;
}

/** What the job runner asks before a claim (run-job.ts). */
export interface Intake {
  /**
   * Resolves once a new job may be claimed, with what it holds of the budget; undefined when
   * intake closed meanwhile (shutdown), or another worker took the job while it waited
   * (`stillOpen`): the job is not claimed.
   */
  admit(signal: AbortSignal, stillOpen?: () => boolean): Promise<CreditHold | undefined>;
  /**
   * What a job that must finish holds, whatever the pauses: one taken over from a dead worker,
   * or one past its first paid call (released at shutdown, recovered). Counted, never waited.
   */
  force(credits: number): CreditHold;
  /** The pause in force now, if any (the first set: logs, metrics, heartbeat). */
  paused(): IntakePause | undefined;
}

/** The pauses in force, by reason; a waiter wakes when its reasons are all lifted. */
export interface IntakeSwitch {
  set(reason: PauseReason, pause: Omit<IntakePause, 'reason'> | undefined): void;
  paused(except?: PauseReason): IntakePause | undefined;
  /** Whether the pause of this reason holds. */
  holds(reason: PauseReason): boolean;
  /** Resolves once no pause but `except` holds; rejects with the signal's reason. */
  whenOpen(signal: AbortSignal, except?: PauseReason): Promise<void>;
  /** Called on every change (logs, metrics). */
  onChange(listener: (pause: IntakePause | undefined, reason: PauseReason) => void): void;
}

export function createIntakeSwitch(): IntakeSwitch {
  const pauses = new Map<PauseReason, IntakePause>();
  const waiters = new Set<() => void>();
  const listeners: Array<(pause: IntakePause | undefined, reason: PauseReason) => void> = [];
  const paused = (except?: PauseReason) => {
    for (const [reason, pause] of pauses) if (reason !== except) return pause;
    return undefined;
  };
  return {
    set(reason, pause) {
      const had = pauses.has(reason);
      if (pause) pauses.set(reason, { reason, ...pause });
      else pauses.delete(reason);
      if (had === (pause !== undefined)) return;
      for (const listener of listeners) listener(pauses.get(reason), reason);
      for (const wake of [...waiters]) wake();
    },
    paused,
    holds: (reason) => pauses.has(reason),
    whenOpen(signal, except) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (signal.aborted) {
            waiters.delete(check);
            reject(signal.reason as Error);
          } else if (!paused(except)) {
            waiters.delete(check);
            resolve();
          }
        };
        waiters.add(check);
        signal.addEventListener('abort', check, { once: true });
        check();
      });
    },
    onChange(listener) {
      listeners.push(listener);
    },
  };
}

/**
 * The intake every worker runs: the pauses other than the budget's are waited out first, then
 * the job's credits are held (the reserver sets and lifts the `budget` pause itself). With no
 * reserver, a job holds nothing. A job holds a whole job's calls: one resuming from
 * checkpoints (released at shutdown, recovered) gives back what they saved at its end, since
 * what it resumes from is known only after its claim.
 */
export function createIntake(pauses: IntakeSwitch, reserver: CreditReserver | undefined): Intake {
  return {
    async admit(signal, stillOpen) {
      await pauses.whenOpen(signal, 'budget');
      if (stillOpen?.() === false) return undefined;
      return reserver ? reserver.reserve(CREDITS_PER_JOB, signal, stillOpen) : NO_HOLD;
    },
    force: (credits) => (reserver && credits > 0 ? reserver.force(credits) : NO_HOLD),
    paused: () => pauses.paused(),
  };
}
