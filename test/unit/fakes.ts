import type { Lease, Log, WorkCache } from '../../src/jobs/ports.js';

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

/** A fresh claim of `characterId` by worker w1, its lease a minute long. */
export function leaseOf(characterId: string): Lease {
  return {
    characterId,
    jobId: `job-${characterId}`,
    owner: 'w1',
    attempt: 1,
    recovered: false,
    statusAtClaim: 'removing-background',
    expiresAt: Date.now() + 60_000,
    requestedAt: Date.now(),
  };
}

/** A work cache that finds nothing and stores nothing (nor keeps what it is given). */
export function emptyWorkCache(): WorkCache {
  return {
    findResult: () => Promise.resolve(undefined),
    saveResult: () => Promise.resolve(),
    findCheckpoint: () => Promise.resolve(undefined),
    saveCheckpoint: () => Promise.resolve(),
    clearCheckpoints: () => Promise.resolve(),
  };
}
