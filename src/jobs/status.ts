/**
 * The states of `visuals.showcaseProcessingStatus` (CONTRACT §1).
 *
 * Glossary: a *request* is the app setting `removing-background`; a *job* is one request
 * being processed; a *stage* is one step of it (remove background, upscale, finalize).
 */
export const IN_PROGRESS = ['removing-background', 'upscaling', 'finalizing'] as const;
export type InProgressStatus = (typeof IN_PROGRESS)[number];
export type TerminalStatus = 'complete' | 'failed';
export type JobStatus = InProgressStatus | TerminalStatus;

export function isInProgress(value: unknown): value is InProgressStatus {
  return typeof value === 'string' && (IN_PROGRESS as readonly string[]).includes(value);
}

const RANK: Record<JobStatus, number> = {
  'removing-background': 0,
  upscaling: 1,
  finalizing: 2,
  complete: 3,
  failed: 3,
};

/** Position in the job's lifecycle; a job's status never moves to a lower rank. */
export function statusRank(status: JobStatus): number {
  return RANK[status];
}
