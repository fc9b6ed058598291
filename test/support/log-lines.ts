/**
 * JSON log lines of a child process (the worker, the baseline), as they arrive: parsed,
 * kept, and awaited. Shared by the tests' worker process and the bench's children.
 */
export interface LogLine {
  level: string;
  message: string;
  characterId?: string;
  [field: string]: unknown;
}

export interface LineCollector {
  /** Every line, parsed (a line that is not JSON becomes `{ level: 'raw', message }`). */
  lines: LogLine[];
  /** Every line as written, before parsing (what a log drain would store). */
  rawLines: string[];
  /** Feeds a chunk of stdout. */
  feed(chunk: Buffer): void;
  /**
   * Resolves with the first line (past or future) that matches; rejects with `onTimeout()`
   * after `timeoutMs`, or with the error given to `failAll`.
   */
  waitFor(
    match: (line: LogLine) => boolean,
    timeoutMs: number,
    onTimeout: () => Error,
  ): Promise<LogLine>;
  /** Rejects every pending wait (the process exited). */
  failAll(error: () => Error): void;
}

export function collectLines(opts: { echo?: (text: string) => void } = {}): LineCollector {
  const lines: LogLine[] = [];
  const rawLines: string[] = [];
  const waiters = new Set<{
    match: (l: LogLine) => boolean;
    resolve: (l: LogLine) => void;
    reject: (e: Error) => void;
  }>();
  let buffered = '';
  return {
    lines,
    rawLines,
    feed(chunk) {
      buffered += chunk.toString('utf8');
      const parts = buffered.split('\n');
      buffered = parts.pop() ?? '';
      for (const text of parts) {
        if (!text.trim()) continue;
        opts.echo?.(text);
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
    },
    waitFor(match, timeoutMs, onTimeout) {
      const seen = lines.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(onTimeout());
        }, timeoutMs);
        const waiter = {
          match,
          resolve: (l: LogLine) => {
            clearTimeout(timer);
            resolve(l);
          },
          reject: (e: Error) => {
            clearTimeout(timer);
            reject(e);
          },
        };
        waiters.add(waiter);
      });
    },
    failAll(error) {
      for (const w of waiters) w.reject(error());
      waiters.clear();
    },
  };
}
