import type { JobWriter } from './status-sink.js';

/**
 * A worker's jobs, kept in one place created before everything that reports on them (the
 * heartbeat's load, dealing's free slots, metrics). Each part has one writer: the worker
 * accepts and finishes requests, the job runner tracks the writer of each job it claimed
 * (`track`), and the worker's stop releases the jobs still running.
 */
export interface ActiveJobs {
  /** Requests accepted and not finished: running, or waiting for a slot (the worker's demand). */
  readonly demand: number;
  /** Jobs claimed and running now. */
  readonly size: number;
  /** Whether a job for this character is claimed and running. */
  has(characterId: string): boolean;
  /** The runner's hook: the writer of a job it claimed, or none once the job ended. */
  track(characterId: string, writer: JobWriter | undefined): void;
  /** The writers of the jobs running now. */
  writers(): JobWriter[];
  /** Whether a request for this character was accepted and has not finished. */
  accepted(characterId: string): boolean;
  /** The worker's hooks: a request accepted, and its job (or its skipping) finished. */
  accept(characterId: string): void;
  finish(characterId: string): void;
}

export function createActiveJobs(): ActiveJobs {
  const pending = new Set<string>();
  const running = new Map<string, JobWriter>();
  return {
    get demand() {
      return pending.size;
    },
    get size() {
      return running.size;
    },
    has: (characterId) => running.has(characterId),
    track(characterId, writer) {
      if (writer) running.set(characterId, writer);
      else running.delete(characterId);
    },
    writers: () => [...running.values()],
    accepted: (characterId) => pending.has(characterId),
    accept: (characterId) => void pending.add(characterId),
    finish: (characterId) => void pending.delete(characterId),
  };
}
