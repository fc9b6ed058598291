import { describe, expect, it } from 'vitest';
import { JobError } from '../../src/jobs/errors.js';
import {
  LeaseLostError,
  type JobResult,
  type JobStore,
  type Lease,
  type OwnedWrite,
  WriteOutcomeUnknownError,
} from '../../src/jobs/ports.js';
import type { JobStatus } from '../../src/jobs/status.js';
import { createStatusSink } from '../../src/pipeline/status-sink.js';
import { deferred, settle, type Deferred } from './fakes.js';

interface StoreCall {
  op: 'claim' | 'renew' | 'writeStage' | 'complete' | 'fail' | 'release';
  characterId: string;
  /** The lease the store was called with. */
  lease: Lease;
  /** Stage written (writeStage, fail). */
  status?: string;
  write: OwnedWrite;
  /** Settles the write: the test decides when and how. */
  reply: Deferred<unknown>;
}

/** A JobStore whose every write waits until the test settles it. */
function controlledStore() {
  const calls: StoreCall[] = [];
  const pending = <T>(call: Omit<StoreCall, 'reply'>): Promise<T> => {
    const reply = deferred<unknown>();
    calls.push({ ...call, reply });
    return reply.promise as Promise<T>;
  };
  const store: JobStore = {
    claim: () => Promise.reject(new Error('not used')),
    renew: (lease, write) => pending({ op: 'renew', characterId: lease.characterId, lease, write }),
    writeStage: (lease, status, write) =>
      pending({ op: 'writeStage', characterId: lease.characterId, lease, status, write }),
    complete: (lease, _result, write) =>
      pending({ op: 'complete', characterId: lease.characterId, lease, write }),
    fail: (lease, _error, stage, write) =>
      pending({ op: 'fail', characterId: lease.characterId, lease, status: stage, write }),
    release: (lease, write) =>
      pending({ op: 'release', characterId: lease.characterId, lease, write }),
  };
  const describeCalls = () => calls.map((c) => (c.status ? `${c.op}:${c.status}` : c.op));
  return { store, calls, describeCalls };
}

function lease(characterId = 'c1', statusAtClaim: JobStatus = 'removing-background'): Lease {
  return {
    characterId,
    jobId: `job-${characterId}`,
    owner: 'worker-1',
    attempt: 1,
    recovered: false,
    statusAtClaim,
    expiresAt: 1_000,
    requestedAt: 0,
  };
}

const result: JobResult = {
  url: 'https://storage.example/showcase.png',
  path: 'showcase-images/u/c1/showcase_c1.png',
  width: 2,
  height: 2,
  bytes: 10,
};

describe('createStatusSink', () => {
  it('applies writes for one character in call order, even when an earlier write is slow', async () => {
    const { store, calls, describeCalls } = controlledStore();
    const writer = createStatusSink(store).open(lease());
    const done: string[] = [];
    const upscaling = writer.stage('upscaling').then(() => done.push('upscaling'));
    const finalizing = writer.stage('finalizing').then(() => done.push('finalizing'));
    const complete = writer.complete(result).then(() => done.push('complete'));
    await settle();
    // Only the first write has reached the store; the others wait for it.
    expect(describeCalls()).toEqual(['writeStage:upscaling']);

    calls[0]!.reply.resolve({ ...lease(), expiresAt: 2_000 });
    await settle();
    expect(describeCalls()).toEqual(['writeStage:upscaling', 'writeStage:finalizing']);
    expect(done).toEqual(['upscaling']);

    calls[1]!.reply.resolve({ ...lease(), expiresAt: 3_000 });
    await settle();
    expect(describeCalls()).toEqual(['writeStage:upscaling', 'writeStage:finalizing', 'complete']);
    calls[2]!.reply.resolve(undefined);
    await Promise.all([upscaling, finalizing, complete]);
    expect(done).toEqual(['upscaling', 'finalizing', 'complete']);
  });

  it('threads the lease each write returns into the next write', async () => {
    const { store, calls } = controlledStore();
    const writer = createStatusSink(store).open(lease());
    const stage = writer.stage('upscaling');
    const renew = writer.renew();
    const complete = writer.complete(result);
    await settle();
    calls[0]!.reply.resolve({ ...lease(), expiresAt: 2_000 });
    await settle();
    calls[1]!.reply.resolve({ ...lease(), expiresAt: 3_000 });
    await settle();
    calls[2]!.reply.resolve(undefined);
    await Promise.all([stage, renew, complete]);
    expect(calls.map((c) => c.lease.expiresAt)).toEqual([1_000, 2_000, 3_000]);
    expect(writer.lease.expiresAt).toBe(3_000);
  });

  it('carries the source hash bound mid-write on every later write, even past a lease the store returns without it', async () => {
    const { store, calls } = controlledStore();
    const bound = { ...lease(), source: { url: 'gs://b/raw-uploads/u/a.png' } };
    const writer = createStatusSink(store).open(bound);
    const renew = writer.renew();
    await settle();
    // Read while the renewal is in flight; the store answers with the lease it was given.
    writer.bindSource('ab12');
    calls[0]!.reply.resolve({ ...bound, expiresAt: 2_000 });
    await renew;
    const stage = writer.stage('upscaling');
    await settle();
    calls[1]!.reply.resolve({ ...bound, expiresAt: 3_000 });
    await stage;
    expect(calls[0]!.lease.source).toEqual({ url: 'gs://b/raw-uploads/u/a.png' });
    expect(calls[1]!.lease.source).toEqual({ url: 'gs://b/raw-uploads/u/a.png', sha256: 'ab12' });
    expect(writer.lease.source?.sha256).toBe('ab12');
    expect(writer.lease.expiresAt).toBe(3_000);
  });

  it('skips a stage at or below the status at claim', async () => {
    const { store, describeCalls } = controlledStore();
    const writer = createStatusSink(store).open(lease('c1', 'upscaling'));
    await writer.stage('removing-background');
    await writer.stage('upscaling');
    await settle();
    expect(describeCalls()).toEqual([]);
    void writer.stage('finalizing');
    await settle();
    expect(describeCalls()).toEqual(['writeStage:finalizing']);
  });

  it('skips the stage a fresh click already shows (removing-background)', async () => {
    const { store, describeCalls } = controlledStore();
    const writer = createStatusSink(store).open(lease('c1', 'removing-background'));
    await writer.stage('removing-background');
    await settle();
    expect(describeCalls()).toEqual([]);
  });

  it('skips a stage at or below the last stage written, even before that write lands', async () => {
    const { store, calls, describeCalls } = controlledStore();
    const writer = createStatusSink(store).open(lease());
    const finalizing = writer.stage('finalizing');
    await writer.stage('upscaling');
    await writer.stage('finalizing');
    await settle();
    expect(describeCalls()).toEqual(['writeStage:finalizing']);
    calls[0]!.reply.resolve(lease());
    await finalizing;
  });

  it.each(['complete', 'fail', 'release'] as const)('writes nothing after %s', async (terminal) => {
    const { store, calls, describeCalls } = controlledStore();
    const writer = createStatusSink(store).open(lease());
    const end =
      terminal === 'complete'
        ? writer.complete(result)
        : terminal === 'fail'
          ? writer.fail(new JobError('CLIPDROP_REJECTED'), 'removing-background')
          : writer.release();
    expect(writer.closed).toBe(true);
    await settle();
    calls[0]!.reply.resolve(undefined);
    await end;

    await writer.stage('upscaling');
    await writer.stage('finalizing');
    await writer.renew();
    await writer.complete(result);
    await writer.fail(new JobError('NETWORK'), 'finalizing');
    await writer.release();
    await settle();
    expect(describeCalls()).toHaveLength(1);
    expect(calls[0]!.op).toBe(terminal);
  });

  it('still applies writes queued before the terminal write, then the terminal one', async () => {
    const { store, calls, describeCalls } = controlledStore();
    const writer = createStatusSink(store).open(lease());
    const stage = writer.stage('upscaling');
    const fail = writer.fail(new JobError('CLIPDROP_REJECTED'), 'upscaling');
    const late = writer.stage('finalizing');
    await settle();
    calls[0]!.reply.resolve(lease());
    await settle();
    calls[1]!.reply.resolve(undefined);
    await Promise.all([stage, fail, late]);
    expect(describeCalls()).toEqual(['writeStage:upscaling', 'fail:upscaling']);
  });

  it('does not serialize writes for different characters behind each other', async () => {
    const { store, calls, describeCalls } = controlledStore();
    const sink = createStatusSink(store);
    const a = sink.open(lease('a'));
    const b = sink.open(lease('b'));
    const slowA = a.stage('upscaling');
    const bDone = b.stage('upscaling');
    await settle();
    expect(describeCalls()).toEqual(['writeStage:upscaling', 'writeStage:upscaling']);
    expect(calls.map((c) => c.characterId)).toEqual(['a', 'b']);
    // b completes while a is still pending.
    calls[1]!.reply.resolve(lease('b'));
    await bDone;
    calls[0]!.reply.resolve(lease('a'));
    await slowA;
  });

  it('orders writes of a new job on the same character after the old job’s writes', async () => {
    const { store, calls, describeCalls } = controlledStore();
    const sink = createStatusSink(store);
    const first = sink.open(lease('c1'));
    const oldComplete = first.complete(result);
    const second = sink.open({ ...lease('c1'), jobId: 'job-2' });
    const newStage = second.stage('upscaling');
    await settle();
    expect(describeCalls()).toEqual(['complete']);
    calls[0]!.reply.resolve(undefined);
    await settle();
    expect(describeCalls()).toEqual(['complete', 'writeStage:upscaling']);
    expect(calls[1]!.lease.jobId).toBe('job-2');
    calls[1]!.reply.resolve(lease('c1'));
    await Promise.all([oldComplete, newStage]);
  });

  it('rejects only the caller of a write that surely failed, and the next write still runs', async () => {
    const { store, calls, describeCalls } = controlledStore();
    const writer = createStatusSink(store).open(lease());
    // Not transient (no gRPC code): not written, so not sent again.
    const failure = new Error('INVALID_ARGUMENT');
    writer.recordCall('remove-background', 1);
    const stage = writer.stage('upscaling');
    const renew = writer.renew();
    await settle();
    calls[0]!.reply.reject(failure);
    await expect(stage).rejects.toBe(failure);
    await settle();
    expect(describeCalls()).toEqual(['writeStage:upscaling', 'renew']);
    // ...and carries the usage the failed one did not write.
    expect(calls[1]!.write.id).not.toBe(calls[0]!.write.id);
    expect(calls[1]!.write.usage.credits).toBe(1);
    calls[1]!.reply.resolve({ ...lease(), expiresAt: 9_000 });
    await expect(renew).resolves.toBeUndefined();
    expect(writer.lease.expiresAt).toBe(9_000);

    // A write made after the failure is not blocked either.
    const complete = writer.complete(result);
    await settle();
    expect(describeCalls()).toEqual(['writeStage:upscaling', 'renew', 'complete']);
    calls[2]!.reply.resolve(undefined);
    await expect(complete).resolves.toBeUndefined();
  });

  it('keeps the previous lease when a write fails', async () => {
    const { store, calls } = controlledStore();
    const writer = createStatusSink(store).open(lease());
    const renew = writer.renew();
    await settle();
    calls[0]!.reply.reject(new Error('lost'));
    await expect(renew).rejects.toThrow('lost');
    expect(writer.lease).toEqual(lease());
  });

  /** The store's word that the write may have landed (its answer lost, the read-back failed). */
  const unavailable = () =>
    new WriteOutcomeUnknownError('c1', Object.assign(new Error('14 UNAVAILABLE'), { code: 14 }));

  it('sends a write that may have landed again as it was (same id, same usage) when retried', async () => {
    const { store, calls, describeCalls } = controlledStore();
    const writer = createStatusSink(store).open(lease());
    writer.recordCall('upscale', 1);
    const first = writer.complete(result);
    await settle();
    calls[0]!.reply.reject(unavailable());
    await expect(first).rejects.toMatchObject({ code: 14 });
    expect(writer.closed).toBe(false);

    writer.recordCall('upscale', 1); // nothing may join a write already made
    const retry = writer.complete(result);
    await settle();
    expect(describeCalls()).toEqual(['complete', 'complete']);
    expect(calls[1]!.write).toEqual(calls[0]!.write);
    expect(calls[1]!.write.usage.credits).toBe(1);
    calls[1]!.reply.resolve(undefined);
    await retry;
    expect(writer.closed).toBe(true);
  });

  it('sends a write that may have landed again before any other write, then that one', async () => {
    const { store, calls, describeCalls } = controlledStore();
    const writer = createStatusSink(store).open(lease());
    writer.recordCall('remove-background', 1);
    const upscaling = writer.stage('upscaling');
    await settle();
    calls[0]!.reply.reject(unavailable());
    await expect(upscaling).rejects.toMatchObject({ code: 14 });

    writer.recordCall('upscale', 1);
    const finalizing = writer.stage('finalizing');
    await settle();
    expect(describeCalls()).toEqual(['writeStage:upscaling', 'writeStage:upscaling']);
    expect(calls[1]!.write).toEqual(calls[0]!.write);
    calls[1]!.reply.resolve(lease());
    await settle();
    expect(describeCalls()).toEqual([
      'writeStage:upscaling',
      'writeStage:upscaling',
      'writeStage:finalizing',
    ]);
    // The new write has its own id and only the usage since.
    expect(calls[2]!.write.id).not.toBe(calls[0]!.write.id);
    expect(calls[2]!.write.usage).toEqual({
      calls: { removeBackground: 0, upscale: 1 },
      credits: 1,
    });
    calls[2]!.reply.resolve(lease());
    await finalizing;
  });

  it('a retried stage write that lands as resent is not written a second time', async () => {
    const { store, calls, describeCalls } = controlledStore();
    const writer = createStatusSink(store).open(lease());
    const first = writer.stage('upscaling');
    await settle();
    calls[0]!.reply.reject(unavailable());
    await expect(first).rejects.toMatchObject({ code: 14 });
    const retry = writer.stage('upscaling');
    await settle();
    calls[1]!.reply.resolve(lease());
    await retry;
    await settle();
    expect(describeCalls()).toEqual(['writeStage:upscaling', 'writeStage:upscaling']);
  });

  it('a completion that lands when resent ends the job: a failure written after it is skipped', async () => {
    const { store, calls, describeCalls } = controlledStore();
    const writer = createStatusSink(store).open(lease());
    const first = writer.complete(result);
    await settle();
    calls[0]!.reply.reject(unavailable());
    await expect(first).rejects.toMatchObject({ code: 14 });
    // run-job gave up on `complete` and writes the failure: the completion goes first.
    const fail = writer.fail(new JobError('FIRESTORE_UNAVAILABLE'), 'finalizing');
    await settle();
    calls[1]!.reply.resolve(undefined);
    await fail;
    await settle();
    expect(describeCalls()).toEqual(['complete', 'complete']);
    expect(writer.closed).toBe(true);
    expect(writer.ended).toBe('complete');
  });

  it('a lost lease is not sent again: the next write is new and carries the usage', async () => {
    const { store, calls, describeCalls } = controlledStore();
    const writer = createStatusSink(store).open(lease());
    writer.recordCall('remove-background', 1);
    const stage = writer.stage('upscaling');
    await settle();
    calls[0]!.reply.reject(new LeaseLostError('c1'));
    await expect(stage).rejects.toBeInstanceOf(LeaseLostError);
    const release = writer.release();
    await settle();
    expect(describeCalls()).toEqual(['writeStage:upscaling', 'release']);
    expect(calls[1]!.write.id).not.toBe(calls[0]!.write.id);
    expect(calls[1]!.write.usage.credits).toBe(1);
    calls[1]!.reply.resolve(undefined);
    await release;
  });

  it('a failure asked for while the completion is in flight waits for it, and is skipped if it lands', async () => {
    const { store, calls, describeCalls } = controlledStore();
    const writer = createStatusSink(store).open(lease());
    const complete = writer.complete(result);
    // The lease renewals gave up meanwhile: run-job writes the failure.
    let failed = false;
    const fail = writer
      .fail(new JobError('FIRESTORE_UNAVAILABLE'), 'finalizing')
      .then(() => (failed = true));
    await settle();
    expect(failed).toBe(false);
    calls[0]!.reply.resolve(undefined);
    await Promise.all([complete, fail]);
    expect(describeCalls()).toEqual(['complete']);
    expect(writer.ended).toBe('complete');
  });

  it('a failure asked for while the completion is in flight is written if the completion surely failed', async () => {
    const { store, calls, describeCalls } = controlledStore();
    const writer = createStatusSink(store).open(lease());
    const complete = writer.complete(result);
    const fail = writer.fail(new JobError('FIRESTORE_UNAVAILABLE'), 'finalizing');
    await settle();
    calls[0]!.reply.reject(new Error('INVALID_ARGUMENT'));
    await expect(complete).rejects.toThrow('INVALID_ARGUMENT');
    await settle();
    expect(describeCalls()).toEqual(['complete', 'fail:finalizing']);
    calls[1]!.reply.resolve(undefined);
    await fail;
    expect(writer.ended).toBe('failed');
  });
});
