import type { Log } from '../../src/jobs/ports.js';

/** One recorded log call: level, event name, fields. */
export interface LogEntry {
  level: 'error' | 'warn' | 'info' | 'debug';
  message: string;
  fields: Record<string, unknown> | undefined;
}

/** A `Log` that records every call; `child` returns the same logger (its fields are dropped). */
export interface RecordingLog extends Log {
  readonly entries: LogEntry[];
  messages(level?: LogEntry['level']): string[];
}

export function recordingLog(): RecordingLog {
  const entries: LogEntry[] = [];
  const at =
    (level: LogEntry['level']) =>
    (message: string, fields?: Record<string, unknown>): void => {
      entries.push({ level, message, fields });
    };
  const log: RecordingLog = {
    entries,
    error: at('error'),
    warn: at('warn'),
    info: at('info'),
    debug: at('debug'),
    child: () => log,
    messages: (level) =>
      entries.filter((e) => level === undefined || e.level === level).map((e) => e.message),
  };
  return log;
}

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(reason: unknown): void;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Resolves once every pending microtask (promise callback) has run: not a timed wait. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
