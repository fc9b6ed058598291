import { Observable } from 'rxjs';
import type { CallGate, CallTicket } from '../jobs/call-window.js';
import { classify, describe } from '../jobs/errors.js';
import type { ClaimResult, JobOutcome, JobRequest, PaidCallOptions } from '../jobs/ports.js';
import type { JobScope } from './job-scope.js';

/**
 * What a request meets before its claim takes anything (run-job.ts): how its paid calls will
 * queue, its admission to the window, and the outcome of a claim that took nothing.
 */

/** The job's admission to its claim, given up (unsubscribed) at shutdown. */
export function admission(gate: CallGate): Observable<CallTicket> {
  return new Observable<CallTicket>((subscriber) => {
    const controller = new AbortController();
    gate.admitJob(controller.signal).then(
      (ticket) => {
        if (subscriber.closed) return ticket.release();
        subscriber.next(ticket);
        subscriber.complete();
      },
      (err: unknown) => subscriber.error(err),
    );
    return () => controller.abort(new Error('job admission given up'));
  });
}

/** How a job's paid calls queue: a takeover's first, then a new user's first job's. */
export function callsOf(request: JobRequest): PaidCallOptions {
  if (request.takeover === true) return { priority: 'takeover' };
  return request.ownersFirst === true ? { priority: 'new-user' } : {};
}

/** A request given up before its claim took anything: logged, the sweep brings it back. */
export function unclaimed(event: string, err: unknown, scope: JobScope): JobOutcome {
  const error = classify(err);
  scope.log.error(event, { code: error.code, detail: error.detail ?? describe(err) });
  return scope.outcome('skipped', error.code);
}

/** A claim that took nothing: held elsewhere, no longer requested, or out of attempts. */
export function notClaimed(
  claim: Exclude<ClaimResult, { kind: 'claimed' }>,
  request: JobRequest,
  scope: JobScope,
): JobOutcome {
  if (claim.kind === 'skipped') {
    // A takeover that finds the job taken is worth seeing (another survivor won it).
    const level = request.takeover === true ? 'info' : 'debug';
    scope.log[level]('job.skipped', { reason: claim.reason, origin: request.origin });
    return scope.outcome('skipped', claim.reason);
  }
  if (claim.kind === 'refused') {
    // Written failed by the claim itself: nothing downloaded, nothing paid for.
    scope.log.warn('job.failed', {
      code: 'USER_QUOTA_EXCEEDED',
      limit: 'requests',
      dailyRequests: claim.limit,
      ownerId: request.ownerId,
    });
    scope.telemetry.userLimitHit?.('requests');
    return scope.outcome('failed', 'USER_QUOTA_EXCEEDED');
  }
  scope.log.error('job.failed', { code: 'ATTEMPTS_EXHAUSTED', attempts: claim.attempts });
  return scope.outcome('exhausted', 'ATTEMPTS_EXHAUSTED');
}
