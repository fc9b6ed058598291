#!/usr/bin/env node
/**
 * `showcase-worker`, the operator CLI (package.json `bin`): enqueue, status, retry-failed,
 * backfill, doctor, limit, console. The commands live in ./cli/, one a file; exit codes in ./cli/exit-codes.ts.
 * Like main.ts, this entry point is the only place that touches the process.
 */
import { runCli } from './cli/run.js';

const interrupt = new AbortController();
process.once('SIGINT', () => {
  // A second Ctrl-C kills at once (the default handler is back).
  process.stderr.write('\nstopping after the current step (Ctrl-C again to kill)\n');
  interrupt.abort();
});
// The platform's stop (a web dyno running `console`): the same clean stop as Ctrl-C.
process.once('SIGTERM', () => interrupt.abort());

const code = await runCli(process.argv.slice(2), {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  write: (text) => process.stdout.write(text),
  isTTY: Boolean(process.stdout.isTTY),
  env: process.env,
  signal: interrupt.signal,
});
// Piped output is written asynchronously: let it drain before exiting (SDK handles may linger).
await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
await new Promise<void>((resolve) => process.stderr.write('', () => resolve()));
process.exit(code);
