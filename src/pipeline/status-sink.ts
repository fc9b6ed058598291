import { randomUUID } from 'node:crypto';
import type { JobError } from '../jobs/errors.js';
import {
  type DaySettlement,
  type JobResult,
  type JobStore,
  type Lease,
  type OwnedWrite,
  type Usage,
  WriteOutcomeUnknownError,
} from '../jobs/ports.js';
import { statusRank, type InProgressStatus } from '../jobs/status.js';
import { mergeNotes, noNotes, type WriteNotes } from '../jobs/job-times.js';

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
  /** The SHA-256 of the source as read: recorded on the job with its next write. */
  bindSource(sha256: string): void;
  /** Stage times for the job's record: the next write made carries them (none of its own). */
  note(notes: WriteNotes): void;
  /** What a complete or failed write adds, asked as it is sent (its round trips). */
  onFinal(notes: () => WriteNotes): void;
  /** True once a terminal write (complete, fail, release) is queued, unless it failed. */
  readonly closed: boolean;
  /**
   * The terminal write that landed. Not always the last one asked for: one that failed but may
   * have landed is sent again before any later write, and a later terminal write then skipped.
   */
  readonly ended: Terminal | undefined;
}

type Terminal = 'complete' | 'failed' | 'released';

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
      let held = initial;
      /** The source's hash once read: every later write's lease carries it (source-binding.ts). */
      let sha256: string | undefined;
      const current = (): Lease =>
        sha256 && held.source && held.source.sha256 !== sha256
          ? { ...held, source: { ...held.source, sha256 } }
          : held;
      /** The highest stage queued (a lower one asked for later is dropped), and written. */
      let queued = statusRank(initial.statusAtClaim);
      let written = queued;
      /** A terminal write is queued (reopened if it fails), and the one that landed. */
      let closing = false;
      let ended: Terminal | undefined;
      const closed = () => closing || ended !== undefined;
      const usage = emptyUsage();
      /** Usage no write has carried yet: the next write made takes it. */
      let unwritten = emptyUsage();
      /** Notes no write has carried yet, like `unwritten`. */
      let unnoted: WriteNotes = {};
      let final: () => WriteNotes = () => ({});
      /**
       * The last write, when it failed in a way that may have landed (its answer lost, then the
       * read-back failed too). It is sent again as it was, same id and usage, before any other
       * write: a new id would make a landed `complete` look like a lost lease, and its usage
       * carried by a new write would be counted twice. Usage recorded after a terminal write
       * is never written; run-job records none (no paid call follows it).
       */
      let unsettled: Attempt | undefined;

      const attempt = (
        send: (write: OwnedWrite) => Promise<Lease | void>,
        landed: () => void = () => undefined,
        last = false,
      ): Attempt => {
        const notes = last ? mergeNotes(unnoted, final()) : unnoted;
        const write: OwnedWrite = {
          id: randomUUID(),
          usage: unwritten,
          ...(noNotes(notes) ? {} : { notes }),
        };
        unwritten = emptyUsage();
        unnoted = {};
        return { write, send: () => send(write), landed };
      };

      const settle = async (sent: Attempt): Promise<void> => {
        try {
          const next = await sent.send();
          if (next) held = next;
        } catch (err) {
          // The store says when a write it sent may have landed; any other error was not written.
          const unknown = err instanceof WriteOutcomeUnknownError;
          unsettled = unknown ? sent : undefined;
          // Surely not written: the next write carries its usage.
          if (!unknown) {
            unwritten = addUsage(unwritten, sent.write.usage);
            // Its stage times only: round trips belong to a final write, which counts afresh.
            const stages = sent.write.notes?.stages;
            unnoted = mergeNotes(stages ? { stages } : {}, unnoted);
          }
          throw err;
        }
        unsettled = undefined;
        sent.landed();
      };

      /**
       * Behind this document's writes: an unsettled write again first, then `make`'s, unless a
       * terminal write has landed (perhaps that unsettled one): nothing is written after it.
       */
      const write = (make: () => Attempt | undefined): Promise<void> =>
        enqueue(held.characterId, async () => {
          if (unsettled) await settle(unsettled);
          const next = ended ? undefined : make();
          if (next) await settle(next);
        });

      // Closing at once, so nothing queues behind a terminal write; reopened if that write
      // fails, so the caller may try it again. A failure or completion asked for while another
      // terminal write is in flight waits for it: if that lands, `ended` says so and nothing
      // more is written. A release (shutdown, which has a deadline) does not wait.
      let inFlight: Promise<void> | undefined;
      const terminal = async (
        kind: Terminal,
        send: (write: OwnedWrite) => Promise<void>,
      ): Promise<void> => {
        while (inFlight && kind !== 'released') await inFlight.catch(() => undefined);
        if (closed()) return;
        closing = true;
        const sent = write(() => attempt(send, () => (ended = kind), kind !== 'released'));
        inFlight = sent;
        try {
          await sent;
        } catch (err) {
          closing = false;
          throw err;
        } finally {
          if (inFlight === sent) inFlight = undefined;
        }
      };

      return {
        get lease() {
          return current();
        },
        get closed() {
          return closed();
        },
        get ended() {
          return ended;
        },
        usage,
        bindSource(hash) {
          sha256 = hash;
        },
        note(notes) {
          unnoted = mergeNotes(unnoted, notes);
        },
        onFinal(notes) {
          final = notes;
        },
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
          const previous = queued;
          const next = statusRank(status);
          if (closed() || (next <= queued && !unsettled)) return;
          queued = Math.max(queued, next);
          try {
            await write(() =>
              next <= written
                ? undefined
                : attempt(
                    (w) => store.writeStage(current(), status, w),
                    () => (written = Math.max(written, next)),
                  ),
            );
          } catch (err) {
            // Not written: let a retry of the same stage through, unless a later one came.
            if (queued === next) queued = previous;
            throw err;
          }
        },
        async renew() {
          if (closed()) return;
          await write(() => attempt((w) => store.renew(current(), w)));
        },
        complete: (result, settlement) =>
          terminal('complete', (w) => store.complete(current(), result, w, settlement)),
        fail: (error, stage, settlement) =>
          terminal('failed', (w) => store.fail(current(), error, stage, w, settlement)),
        release: () => terminal('released', (w) => store.release(current(), w)),
      };
    },
  };
}

interface Attempt {
  readonly write: OwnedWrite;
  send(): Promise<Lease | void>;
  /** Runs once the write is known to have landed. */
  landed(): void;
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
