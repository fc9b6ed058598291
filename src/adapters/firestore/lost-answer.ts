/** The gRPC status codes the Firestore adapters decide on (the SDK's errors carry them as `code`). */
export const GRPC = {
  CANCELLED: 1,
  UNKNOWN: 2,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  FAILED_PRECONDITION: 9,
} as const;

/**
 * gRPC UNKNOWN or CANCELLED on a write: its answer was lost, maybe not the write, which may
 * have landed. gRPC's "Stream removed" in production; the emulator answers either to a commit
 * it applied when a listen stream in the same project had just closed or died. Whoever gets
 * one reads the document again to know (test/integration/lost-answers.test.ts).
 */
export function answerLost(code: unknown): boolean {
  return code === GRPC.UNKNOWN || code === GRPC.CANCELLED;
}

/** A write that had no answer within the worker's own deadline: as good as a lost answer. */
export class NoAnswerError extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = 'NoAnswerError';
  }
}

/**
 * The write's answer, or `NoAnswerError` after `ms`. The SDK's own deadline for a commit is
 * 60 s, as long as a lease: a job whose `complete` hangs that long is stuck on a single
 * worker. The write itself goes on and may still land; the caller's precondition and
 * `writeId` read keep it from landing twice.
 */
export async function answerWithin<T>(write: Promise<T>, ms: number | undefined): Promise<T> {
  if (ms === undefined) return write;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new NoAnswerError(ms)), ms);
  });
  try {
    return await Promise.race([write, deadline]);
  } catch (err) {
    // A late failure of the abandoned write has nobody left to hear it.
    if (err instanceof NoAnswerError) write.catch(() => undefined);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
