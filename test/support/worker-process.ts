import { spawn, type ChildProcess } from 'node:child_process';
import { collectLines, type LogLine } from './log-lines.js';
import { clockEnv, type SkewedClock } from './skewed-clock.js';

export type { LogLine } from './log-lines.js';

/** The worker as on a dyno: a separate process running src/main.ts, logging JSON lines. */
export interface WorkerProcess {
  proc: ChildProcess;
  lines: LogLine[];
  /** Resolves with the first log line (past or future) that matches. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): void;
  /** Everything the process wrote to stderr, as received. */
  stderr: string[];
  /** Every stdout line as written, before parsing (what a log drain would store). */
  rawLines: string[];
}

export interface SpawnOptions {
  /** Extra node flags before the script, e.g. ['--import', './test/support/net-spy.ts']. */
  nodeArgs?: string[];
  /** The script and its loader, default ['--import', 'tsx', 'src/main.ts']; e.g. ['dist/main.js']. */
  entry?: string[];
  /** A wrong wall clock for this process only (libfaketime; test/support/skewed-clock.ts). */
  clock?: SkewedClock;
}

export function spawnWorker(env: Record<string, string>, opts: SpawnOptions = {}): WorkerProcess {
  const entry = opts.entry ?? ['--import', 'tsx', 'src/main.ts'];
  const args = [...entry.slice(0, -1), ...(opts.nodeArgs ?? []), ...entry.slice(-1)];
  const proc = spawn(process.execPath, args, {
    env: {
      ...process.env,
      ...env,
      ...(opts.clock ? clockEnv(opts.clock) : {}),
      LOG_FORMAT: 'json',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const collector = collectLines();
  proc.stdout?.on('data', (chunk: Buffer) => collector.feed(chunk));
  const stderr: string[] = [];
  proc.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    proc,
    lines: collector.lines,
    rawLines: collector.rawLines,
    stderr,
    exited,
    kill: (signal) => proc.kill(signal),
    waitForLog: (match, timeoutMs = 30_000) =>
      collector.waitFor(
        match,
        timeoutMs,
        () =>
          new Error(
            `no matching log line within ${timeoutMs} ms; stderr: ${stderr.join('').slice(-2000)}`,
          ),
      ),
  };
}

/** Jobs a worker claimed and has not finished, by its own log. */
export function runningJobs(w: WorkerProcess): string[] {
  const claimed = new Set<string>();
  for (const l of w.lines) {
    if (l.message === 'job.claimed' && l.characterId) claimed.add(l.characterId);
    if (l.message === 'job.finished' && l.characterId) claimed.delete(l.characterId);
  }
  return [...claimed];
}

/** A failed test's evidence: the worker's log lines above debug, on stderr. */
export function printLog(w: WorkerProcess): void {
  const lines = w.lines.filter((l) => l.level !== 'debug').map((l) => JSON.stringify(l));
  process.stderr.write(lines.join('\n') + '\n');
}

/** Ends each process (SIGKILL if still running), printing its log when the test failed. */
export async function endAll(processes: WorkerProcess[], failed: boolean): Promise<void> {
  for (const p of processes.splice(0)) {
    if (p.proc.exitCode === null && p.proc.signalCode === null) p.kill('SIGKILL');
    await p.exited;
    if (failed) printLog(p);
  }
}
