/**
 * gRPC UNKNOWN or CANCELLED on a write: its answer was lost, maybe not the write, which may
 * have landed. gRPC's "Stream removed" in production; the emulator answers either to a commit
 * it applied when a listen stream in the same project had just closed or died. Whoever gets
 * one reads the document again to know (test/integration/lost-answers.test.ts).
 */
export function answerLost(code: unknown): boolean {
  return code === 2 || code === 1;
}
