import type { InProgressStatus } from './status.js';

/**
 * What a job's record tells people and the console about how it went (docs/console.md,
 * `visuals.showcaseJob.stages` and `.roundTrips`). Carried by the writes a job makes anyway:
 * never a write of its own.
 */

/** One stage of the job's current attempt. */
export interface StageTime {
  /** When it began: Firestore's time as the worker knew it then (src/jobs/clock.ts), ms epoch. */
  startedAt?: number;
  /** How long it took: this process's monotonic clock, ms (the stage's status write included). */
  ms?: number;
}

export type StageTimes = Partial<Record<InProgressStatus, StageTime>>;

/** The fields a write carries beside its own. */
export interface WriteNotes {
  stages?: StageTimes;
  /**
   * The final write's (complete or failed): the Google requests of this attempt as that write
   * is sent, itself included (jobs/round-trips.ts: sequential, and all).
   */
  roundTrips?: { sequential: number; total: number };
}

/** `b` after `a`: stage by stage, field by field, the later value wins. */
export function mergeNotes(a: WriteNotes, b: WriteNotes): WriteNotes {
  const stages: StageTimes = { ...a.stages };
  for (const [stage, time] of Object.entries(b.stages ?? {}) as Array<
    [InProgressStatus, StageTime]
  >) {
    stages[stage] = { ...stages[stage], ...time };
  }
  const roundTrips = b.roundTrips ?? a.roundTrips;
  return {
    ...(Object.keys(stages).length > 0 ? { stages } : {}),
    ...(roundTrips ? { roundTrips } : {}),
  };
}

/** Whether the notes say nothing (a write then carries no field for them). */
export function noNotes(notes: WriteNotes | undefined): boolean {
  return (
    notes === undefined ||
    (notes.roundTrips === undefined && Object.keys(notes.stages ?? {}).length === 0)
  );
}
