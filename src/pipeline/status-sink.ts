import type { JobError } from '../jobs/errors.js';
import type { DaySettlement, JobResult, JobStore, Lease, Usage } from '../jobs/ports.js';
import { statusRank, type InProgressStatus } from '../jobs/status.js';

/** The writes of one claimed job, in order, each proving ownership of the lease. */
export interface JobWriter {
  readonly lease: Lease;
  /** Writes the stage's status, unless the document is already at or past it. */
  stage(status: InProgressStatus): Promise<void>;
  renew(): Promise<void>;
  /** `settlement`: the owner's day usage, committed with this write (UserQuota.settlement). */
  complete(result: JobResult, settlement?: DaySettlement): Promise<void>;
  fail(error: JobError, stage: InProgressStatus, settlement?: DaySettlement): Promise<void>;
  release(): Promise<void>;
  /** ClipDrop calls and credits of this attempt, added to the job's totals when it ends. */
  readonly usage: Usage;
  recordCall(endpoint: 'remove-background' | 'upscale', credits: number): void;
  /** True once a terminal write (complete, fail, release) is queued, unless it failed. */
  readonly closed: boolean;
}

export interface StatusSink {
  open(lease: Lease): JobWriter;
}

/**
 * Every document write of the pipeline goes through here. Writes to one document are
 * applied one after another in the order they were made (a slow `upscaling` write can never
 * land after `complete`), stage writes never move a status backwards, and nothing is written
 * for a job after its terminal write.
 */
export function createStatusSink(store: JobStore): StatusSink {
  const tails = new Map<string, Promise<unknown>>();

  function enqueue<T>(characterId: string, write: () => Promise<T>): Promise<T> {
    const previous = tails.get(characterId) ?? Promise.resolve();
    const next = previous.then(write, write);
    // The chain keeps order only; each caller gets its own write's result or error.
    const tail = next.then(
      () => undefined,
      () => undefined,
    );
    tails.set(characterId, tail);
    void tail.then(() => {
      if (tails.get(characterId) === tail) tails.delete(characterId);
    });
    return next;
  }

  return {
    open(initial: Lease): JobWriter {
      let lease = initial;
      let rank = statusRank(initial.statusAtClaim);
      let closed = false;
      const usage = emptyUsage();
      /** Usage not yet written: each owned write carries it, and gives it back if it fails. */
      let unwritten = emptyUsage();
      const withUsage = async <T>(write: (delta: Usage) => Promise<T>): Promise<T> => {
        const delta = unwritten;
        unwritten = emptyUsage();
        try {
          return await write(delta);
        } catch (err) {
          unwritten = addUsage(unwritten, delta);
          throw err;
        }
      };

      // Closed at once, so nothing queues behind a terminal write; reopened if that write
      // fails, so the caller may try it again.
      const terminal = async (write: () => Promise<void>): Promise<void> => {
        if (closed) return;
        closed = true;
        try {
          await enqueue(lease.characterId, write);
        } catch (err) {
          closed = false;
          throw err;
        }
      };

      return {
        get lease() {
          return lease;
        },
        get closed() {
          return closed;
        },
        usage,
        recordCall(endpoint, credits) {
          const call: Usage = {
            calls: {
              removeBackground: endpoint === 'remove-background' ? 1 : 0,
              upscale: endpoint === 'upscale' ? 1 : 0,
            },
            credits,
          };
          Object.assign(usage, addUsage(usage, call));
          unwritten = addUsage(unwritten, call);
        },
        async stage(status) {
          const previous = rank;
          const next = statusRank(status);
          if (closed || next <= rank) return;
          rank = next;
          try {
            lease = await enqueue(lease.characterId, () =>
              withUsage((delta) => store.writeStage(lease, status, delta)),
            );
          } catch (err) {
            // Not written: let a retry of the same stage through, unless a later one came.
            if (rank === next) rank = previous;
            throw err;
          }
        },
        async renew() {
          if (closed) return;
          lease = await enqueue(lease.characterId, () =>
            withUsage((delta) => store.renew(lease, delta)),
          );
        },
        complete: (result, settlement) =>
          terminal(() => withUsage((delta) => store.complete(lease, result, delta, settlement))),
        fail: (error, stage, settlement) =>
          terminal(() => withUsage((delta) => store.fail(lease, error, stage, delta, settlement))),
        release: () => terminal(() => withUsage((delta) => store.release(lease, delta))),
      };
    },
  };
}

function emptyUsage(): Usage {
  return { calls: { removeBackground: 0, upscale: 0 }, credits: 0 };
}

function addUsage(a: Usage, b: Usage): Usage {
  return {
    calls: {
      removeBackground: a.calls.removeBackground + b.calls.removeBackground,
      upscale: a.calls.upscale + b.calls.upscale,
    },
    credits: a.credits + b.credits,
  };
}
