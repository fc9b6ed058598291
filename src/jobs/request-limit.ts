import type { JobRequest } from './ports.js';

/**
 * USER_DAILY_REQUEST_LIMIT as pure policy (issue 24, "no unlimited free work"): the requests
 * a user's clicks start per UTC day, paid or not (cache hits and refusals included), counted
 * in the claim's own commit (adapters/firestore/job-store.ts, request-counts.ts). Over the
 * limit the claim itself ends the job `failed` with USER_QUOTA_EXCEEDED: nothing is
 * downloaded, nothing is paid for.
 */

/** What a claim knows of its request: a recovery or the operator's click is never counted. */
export interface CountedClaim {
  recovered: boolean;
  requestedBy?: 'operator' | 'user';
}

/** Whether a claim counts a request: a new click by a user, with a limit set (0 = none). */
export function countsRequest(claim: CountedClaim, limit: number): boolean {
  return limit > 0 && !claim.recovered && claim.requestedBy !== 'operator';
}

/** Whether one more request fits in a day that has `counted` already. */
export function withinRequestLimit(counted: number, limit: number): boolean {
  return limit === 0 || counted < limit;
}

/**
 * Whether a fresh click's source download may start alongside its claim (one round trip
 * less) rather than after it: not when the claim would refuse it. `known` is the owner's count
 * for the day as this worker last committed or read it (undefined: not known yet), `inFlight`
 * the owner's claims here not yet answered (this one not yet among them). With the count
 * unknown, only a claim with none other in flight starts early (the common case: a user's first click on a fresh
 * worker); it is the one download a worker that has not yet seen an owner's count may make
 * for a request it then refuses.
 */
export function startsEarly(known: number | undefined, inFlight: number, limit: number): boolean {
  if (limit === 0) return true;
  if (known === undefined) return inFlight === 0;
  return known + inFlight < limit;
}

/** What the app may show a user refused by the request limit: which limit, and when it resets. */
export function requestLimitMessage(limit: number, resetsAt: number): string {
  const at = new Date(resetsAt).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const requests = limit === 1 ? '1 showcase request' : `${limit} showcase requests`;
  return (
    `You have reached your limit of ${requests} per day (every Process click counts, ` +
    `whether or not it is processed). It resets at ${at} (midnight UTC).`
  );
}

/** What the job runner asks the job store before a claim (adapters/firestore/job-store.ts). */
export interface EarlyDownloads {
  /**
   * The source a listener's click will be bound to by its claim (source-binding.ts), when its
   * download may start alongside the claim; undefined: not before the claim answers (over
   * the request limit, or not known to be under it, or no document seen).
   */
  earlySource(request: JobRequest): string | undefined;
}
