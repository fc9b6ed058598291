import { catchError, concatMap, defer, map, of, type Observable } from 'rxjs';
import { describe, isJobError, JobError } from '../jobs/errors.js';
import { dailyLimitMessage } from '../jobs/user-limits.js';
import type {
  Usage,
  DaySettlement,
  JobOutcome,
  JobRequest,
  Lease,
  QuotaTicket,
  UserQuota,
} from '../jobs/ports.js';
import { fromAbortable } from './abortable.js';
import type { ClaimedScope, JobScope, JobTiming } from './job-scope.js';
import { retryTransient } from './retry.js';

/** What a job has done that its owner's day may count. */
export interface Spent {
  /** ClipDrop calls and credits of this attempt. */
  usage: Usage;
  /** Whether it was recovered, and what earlier attempts spent (`creditsBefore`). */
  lease: Lease;
  /** A checkpoint stood in for a paid call. */
  checkpointUsed: boolean;
}

/** Whether the job paid: a call now, a checkpoint, or an earlier attempt (a recovered job). */
function paid({ usage, lease, checkpointUsed }: Spent): boolean {
  return (
    usage.calls.removeBackground + usage.calls.upscale > 0 || checkpointUsed || lease.recovered
  );
}

/** Credits of every attempt: a crashed or released attempt's never reached the owner's day. */
function creditsOf({ usage, lease }: Spent): number {
  return (lease.creditsBefore ?? 0) + usage.credits;
}

/**
 * The per-user limits (docs/fairness.md) as one request meets them, end to end: the owner's
 * running slot before the claim, the daily admission before the first paid call, the
 * settlement its final write carries, and the refund of a counted job that paid nothing.
 */
export interface JobQuota {
  /** Takes a slot of the owner's (USER_MAX_ACTIVE); false: the owner is at the limit. */
  readonly slot$: Observable<boolean>;
  /**
   * After slot$: the character's slot was another taker's, a worker with a request for the
   * same click, which most likely holds the job (so no download before the claim says).
   */
  readonly slotTakenElsewhere: boolean;
  /** Starts the claimed job's admission, alongside its first stage's work. */
  admit(lease: Lease, userId: string, scope: ClaimedScope): void;
  /**
   * Resolves once a paid call may be made, with whether the day's count holds the job; rejects
   * with USER_QUOTA_EXCEEDED.
   */
  beforePaidCall(): Promise<boolean>;
  /** What the job's final write adds to its owner's day. */
  settlement(spent: Spent): Promise<DaySettlement | undefined>;
  /** After the final write: a counted job that made no paid call is refunded. */
  refund$(result: JobOutcome, spent: Spent): Observable<void>;
  /** Gives the slot back where the outcome calls for it: after the refund, before jobFinished. */
  release$(result: JobOutcome): Observable<JobOutcome>;
}

/** Per-user limits for every job; `noQuota` when there are none. */
export type JobQuotas = (request: JobRequest, scope: JobScope) => JobQuota;

export const noQuota: JobQuotas = () => ({
  slot$: of(true),
  slotTakenElsewhere: false,
  admit: () => undefined,
  beforePaidCall: () => Promise.resolve(false),
  settlement: () => Promise.resolve(undefined),
  refund$: () => of(undefined),
  release$: (result) => of(result),
});

export function userQuotas(quota: UserQuota, timing: JobTiming): JobQuotas {
  return (request, scope) => new RequestQuota(quota, timing, request, scope);
}

class RequestQuota implements JobQuota {
  /** The character's slot as this job got it: taken here, or covered by one another worker took. */
  private slot: 'taken' | 'covered' | undefined;
  private ticket: QuotaTicket | undefined;
  /** The claimed job's scope, for the calls and log lines of its admission and refund. */
  private job: ClaimedScope | undefined;
  /** The daily-limit admission, started with the job and awaited before the first paid call. */
  private admission: Promise<boolean> = Promise.resolve(false);
  readonly slot$: Observable<boolean>;

  constructor(
    private readonly quota: UserQuota,
    private readonly timing: JobTiming,
    private readonly request: JobRequest,
    private readonly scope: JobScope,
  ) {
    // USER_MAX_ACTIVE: a slot of the owner's is taken before the claim; an owner at the limit
    // leaves the job unclaimed (deferred: the worker requests it again after a pause).
    const ownerId = request.ownerId;
    const wantsSlot = quota.slotsEnabled && !!ownerId && request.requestedBy !== 'operator';
    this.slot$ =
      wantsSlot && ownerId
        ? fromAbortable(() => quota.acquireSlot(ownerId, request.characterId)).pipe(
            retryTransient(timing.retry, () => undefined, timing.scheduler),
            map((acquired) => {
              if (acquired.kind === 'busy') {
                scope.log.debug('job.deferred', {
                  limit: 'active',
                  maxActive: acquired.limit,
                  ownerId,
                });
                scope.telemetry.userLimitHit?.('active');
                return false;
              }
              this.slot = acquired.holder ? 'taken' : 'covered';
              return true;
            }),
          )
        : of(true);
  }

  /**
   * Counts the job against its owner's day, alongside the source fetch and cache look-up (no
   * round trip added to the job's path). A click by the operator does not count. Settled,
   * never rejected unhandled: the paid call rethrows.
   */
  admit(lease: Lease, userId: string, job: ClaimedScope): void {
    if (lease.requestedBy === 'operator') return;
    const ticket: QuotaTicket = {
      userId,
      characterId: lease.characterId,
      jobId: lease.jobId,
      requestedAt: lease.requestedAt,
    };
    this.ticket = ticket;
    this.job = job;
    // Resolves with whether the day's count now holds the job (false: no daily limit applies).
    this.admission = new Promise<boolean>((resolve, reject) => {
      job
        .call('admit', () => this.quota.admit(ticket))
        .subscribe({
          next: (admission) => {
            if (admission.kind === 'admitted') return resolve(admission.counted);
            this.scope.telemetry.userLimitHit?.('daily');
            reject(
              new JobError('USER_QUOTA_EXCEEDED', {
                message: dailyLimitMessage(admission.limit, admission.resetsAt),
                detail: `${ticket.userId}: daily limit ${admission.limit} reached`,
              }),
            );
          },
          error: reject,
        });
    });
    // Awaited before the first paid call; a job that never makes one never awaits it.
    this.admission.catch(() => undefined);
  }

  get slotTakenElsewhere(): boolean {
    return this.slot === 'covered';
  }

  beforePaidCall(): Promise<boolean> {
    return this.admission;
  }

  /** The admission's verdict, once settled: a refund must never overtake the count it undoes. */
  private async admitted(): Promise<{ admitted: boolean; counted: boolean }> {
    try {
      return { admitted: true, counted: await this.admission };
    } catch (err) {
      // Refused: nothing was counted. Failed to decide: as if counted (the commit may have landed).
      const refused = isJobError(err) && err.code === 'USER_QUOTA_EXCEEDED';
      return { admitted: !refused, counted: !refused };
    }
  }

  /**
   * What a job that paid adds to its owner's day, for its final write to carry in the same
   * commit: counted exactly when the job ends, once, whatever a crash or a lost answer does.
   */
  async settlement(spent: Spent): Promise<DaySettlement | undefined> {
    const ticket = this.ticket;
    if (!ticket || !paid(spent)) return undefined;
    const { admitted, counted } = await this.admitted();
    return admitted
      ? this.quota.settlement(ticket, { credits: creditsOf(spent), counted })
      : undefined;
  }

  refund$(result: JobOutcome, spent: Spent): Observable<void> {
    const { ticket, job } = this;
    if (!ticket || !job || result.kind === 'lost' || paid(spent)) return of(undefined);
    return defer(() => this.admitted()).pipe(
      concatMap(({ admitted, counted }) =>
        admitted && counted
          ? job.call('refund-quota', () => this.quota.refund(ticket))
          : of(undefined),
      ),
      catchError((err: unknown) => {
        job.event('job.quota_settle_failed', { detail: describe(err) }, 'warn');
        return of(undefined);
      }),
    );
  }

  /**
   * A slot is one per character, whoever took it: the job that ran here gives it back (it
   * may run under a slot another worker took for the same click), and so does a taker whose
   * claim was skipped, unless the job is held: its runner gives it back when it ends.
   */
  release$(result: JobOutcome): Observable<JobOutcome> {
    const givesBack = ((): boolean => {
      switch (result.kind) {
        case 'deferred':
        case 'lost': // the new owner's, same character
        case 'released': // resumed by another worker, same character
          return false;
        case 'skipped':
          return this.slot === 'taken' && result.code !== 'held';
        default:
          return this.slot !== undefined;
      }
    })();
    const ownerId = this.request.ownerId;
    if (!givesBack || !this.slot || !ownerId) return of(result);
    this.slot = undefined;
    return fromAbortable(() => this.quota.releaseSlot(ownerId, this.request.characterId)).pipe(
      retryTransient(this.timing.retry, () => undefined, this.timing.scheduler),
      catchError((err: unknown) => {
        // It frees itself once the job's lease is gone: logged, never a failure.
        this.scope.log.warn('job.slot_release_failed', { detail: describe(err) });
        return of(undefined);
      }),
      map(() => result),
    );
  }
}
