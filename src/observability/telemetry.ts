import type { JobOutcome, Log, Telemetry } from '../jobs/ports.js';

/** Fans every telemetry event out to several sinks (metrics, the job log line). */
export function combineTelemetry(...sinks: Telemetry[]): Telemetry {
  return {
    jobClaimed: (pickupMs) => sinks.forEach((s) => s.jobClaimed(pickupMs)),
    stageFinished: (stage, ms) => sinks.forEach((s) => s.stageFinished(stage, ms)),
    jobFinished: (outcome) => sinks.forEach((s) => s.jobFinished(outcome)),
    listenerResubscribed: () => sinks.forEach((s) => s.listenerResubscribed()),
    userLimitHit: (limit) => sinks.forEach((s) => s.userLimitHit?.(limit)),
  };
}

const LEVEL: Record<JobOutcome['kind'], 'info' | 'warn' | 'debug'> = {
  complete: 'info',
  failed: 'warn',
  exhausted: 'warn',
  lost: 'warn',
  released: 'info',
  // Another replica holds it, or the click was already handled: routine.
  skipped: 'debug',
  // Its owner is at USER_MAX_ACTIVE: it waits, unclaimed, and is requested again.
  deferred: 'debug',
};

/**
 * One `job.finished` line per job with the fields log drains index: characterId, outcome,
 * code and durationMs (from the pick-up of the request to its last write), and for a job that
 * was claimed its `roundTrips` (sequential Google requests) and `googleRequests` (all of them).
 */
export function jobLogTelemetry(log: Log): Telemetry {
  return {
    jobClaimed: () => undefined,
    stageFinished: () => undefined,
    jobFinished(outcome) {
      log[LEVEL[outcome.kind]]('job.finished', {
        characterId: outcome.characterId,
        outcome: outcome.kind,
        ...(outcome.code === undefined ? {} : { code: outcome.code }),
        durationMs: Math.round(outcome.durationMs),
        ...(outcome.roundTrips
          ? {
              roundTrips: outcome.roundTrips.sequential,
              googleRequests: outcome.roundTrips.total,
            }
          : {}),
        ...(outcome.firestore
          ? { firestoreReads: outcome.firestore.reads, firestoreWrites: outcome.firestore.writes }
          : {}),
      });
    },
    listenerResubscribed: () => undefined,
  };
}
