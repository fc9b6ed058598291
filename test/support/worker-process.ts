import { spawn, type ChildProcess } from 'node:child_process';

export interface LogLine {
  level: string;
  message: string;
  characterId?: string;
  [field: string]: unknown;
}

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
}

export function spawnWorker(env: Record<string, string>, opts: SpawnOptions = {}): WorkerProcess {
  const entry = opts.entry ?? ['--import', 'tsx', 'src/main.ts'];
  const args = [...entry.slice(0, -1), ...(opts.nodeArgs ?? []), ...entry.slice(-1)];
  const proc = spawn(process.execPath, args, {
    env: { ...process.env, ...env, LOG_FORMAT: 'json' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: LogLine[] = [];
  const rawLines: string[] = [];
  const waiters = new Set<{ match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }>();
  let buffered = '';
  proc.stdout?.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    for (const text of parts) {
      if (!text.trim()) continue;
      rawLines.push(text);
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        line = { level: 'raw', message: text };
      }
      lines.push(line);
      for (const w of waiters) {
        if (w.match(line)) {
          waiters.delete(w);
          w.resolve(line);
        }
      }
    }
  });
  const stderr: string[] = [];
  proc.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    proc,
    lines,
    rawLines,
    stderr,
    exited,
    kill: (signal) => proc.kill(signal),
    waitForLog(match, timeoutMs = 30_000) {
      const seen = lines.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const waiter = {
          match,
          resolve: (l: LogLine) => {
            clearTimeout(timer);
            resolve(l);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(
            new Error(
              `no matching log line within ${timeoutMs} ms; stderr: ${stderr.join('').slice(-2000)}`,
            ),
          );
        }, timeoutMs);
        waiters.add(waiter);
      });
    },
  };
}
