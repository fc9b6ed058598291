import type { FirestoreOps } from '../jobs/ports.js';

/**
 * Firestore documents read and written on behalf of each job, for its `job.finished` line:
 * the job store counts them as they happen, the job's outcome takes them when it ends.
 */
export function createJobOpsCounter(onOps: (reads: number, writes: number) => void): {
  count(characterId: string, reads: number, writes: number): void;
  take(characterId: string): FirestoreOps;
} {
  const ops = new Map<string, FirestoreOps>();
  return {
    count(characterId, reads, writes) {
      const sofar = ops.get(characterId) ?? { reads: 0, writes: 0 };
      ops.set(characterId, { reads: sofar.reads + reads, writes: sofar.writes + writes });
      onOps(reads, writes);
    },
    take(characterId) {
      const taken = ops.get(characterId) ?? { reads: 0, writes: 0 };
      ops.delete(characterId);
      return taken;
    },
  };
}
