/**
 * A child process with a wrong wall clock, by libfaketime (Debian's `faketime` package, which
 * .ci/run installs): LD_PRELOAD on the child's environment only. Date.now() (and every
 * wall-clock read) is shifted; the monotonic clock (performance.now, libuv's timers) stays
 * honest, as on a machine whose NTP is off or that stepped its clock.
 */
import { existsSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * `offset`: a fixed offset from the start, libfaketime's syntax ('+30s', '-30s', '+5m').
 * `file`: the offset is read from this file (same syntax) while the process runs, so a test
 * can step the clock; write it with `setClockFile`.
 */
export type SkewedClock = { offset: string } | { file: string };

const LIBRARY = 'libfaketimeMT.so.1';

/** Debian's multiarch directory for this process's architecture. */
const MULTIARCH: Partial<Record<NodeJS.Architecture, string>> = {
  x64: 'x86_64-linux-gnu',
  arm64: 'aarch64-linux-gnu',
  arm: 'arm-linux-gnueabihf',
  ia32: 'i386-linux-gnu',
  ppc64: 'powerpc64le-linux-gnu',
  s390x: 's390x-linux-gnu',
  riscv64: 'riscv64-linux-gnu',
};

/**
 * The path of libfaketime's multithreaded library, or undefined when it is not installed.
 * `FAKETIME_LIB` overrides; otherwise Debian's multiarch path for this architecture, then any
 * multiarch directory, then the non-Debian install prefixes.
 */
export function faketimeLibrary(): string | undefined {
  const fromEnv = process.env.FAKETIME_LIB;
  if (fromEnv) return existsSync(fromEnv) ? fromEnv : undefined;
  const arch = MULTIARCH[process.arch];
  const candidates = arch ? [join('/usr/lib', arch, 'faketime', LIBRARY)] : [];
  try {
    for (const dir of readdirSync('/usr/lib')) {
      if (dir.includes('-linux-gnu')) {
        candidates.push(join('/usr/lib', dir, 'faketime', LIBRARY));
      }
    }
  } catch {
    // No /usr/lib (not Linux): the prefixes below are all that is left.
  }
  candidates.push(`/usr/lib/faketime/${LIBRARY}`, `/usr/local/lib/faketime/${LIBRARY}`);
  return candidates.find((path) => existsSync(path));
}

/**
 * Why clock-skew tests cannot run here, or undefined when they can. In CI (`CI` set) a
 * missing library is an error, never a skip: .ci/run installs it.
 */
export function faketimeMissing(): string | undefined {
  if (faketimeLibrary()) return undefined;
  const why =
    'libfaketime is not installed (Debian: apt-get install faketime; or set FAKETIME_LIB to libfaketimeMT.so.1)';
  if (process.env.CI) throw new Error(`clock-skew tests need it in CI: ${why}`);
  return why;
}

/** The environment that gives a child process this clock. */
export function clockEnv(clock: SkewedClock): Record<string, string> {
  const library = faketimeLibrary();
  if (!library) throw new Error('libfaketime is not installed (apt-get install faketime)');
  const shift: Record<string, string> =
    'offset' in clock
      ? { FAKETIME: clock.offset }
      : // Re-read the file at most once a second (FAKETIME_NO_CACHE would read it on every
        // clock read, thousands of times a second in a busy worker).
        { FAKETIME_TIMESTAMP_FILE: clock.file, FAKETIME_CACHE_DURATION: '1' };
  return {
    LD_PRELOAD: [library, process.env.LD_PRELOAD].filter(Boolean).join(':'),
    FAKETIME_DONT_FAKE_MONOTONIC: '1',
    ...shift,
  };
}

/** Sets a clock file's offset ('+0', '+300s'), atomically: a reader never sees half a line. */
export function setClockFile(file: string, offset: string): void {
  const next = `${file}.${process.pid}.tmp`;
  writeFileSync(next, `${offset}\n`);
  renameSync(next, file);
}

/**
 * How far a log line's `timestamp` (the writer's wall clock) is ahead of this process's clock
 * now, in ms (negative: behind). Read as the line arrives, it is low by its delivery time.
 */
export function aheadBy(line: Record<string, unknown>): number {
  const at = typeof line.timestamp === 'string' ? Date.parse(line.timestamp) : Number.NaN;
  if (Number.isNaN(at)) throw new Error(`a log line with no timestamp: ${JSON.stringify(line)}`);
  return at - Date.now();
}

/**
 * How far the wall clock of the HTTP server at `url` is ahead of this process's, in ms, by
 * the `Date` header of its answer (Node sends one; whole seconds, so ±1 s).
 */
export async function httpClockAhead(url: string): Promise<number> {
  const res = await fetch(url);
  await res.arrayBuffer();
  const received = Date.now();
  const date = res.headers.get('date');
  if (!date) throw new Error(`no Date header from ${url}`);
  return Date.parse(date) - received;
}

/** Polls `httpClockAhead(url)` until `ok` holds for it; resolves with that offset. */
export async function untilHttpClock(
  url: string,
  ok: (aheadMs: number) => boolean,
  timeoutMs: number,
  what: string,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last: number | undefined;
  for (;;) {
    last = await httpClockAhead(url);
    if (ok(last)) return last;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}: the clock was last ${last} ms ahead`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A fixed offset in libfaketime's syntax ('+30s', '-5m', '+0') in ms. */
export function offsetMs(offset: string): number {
  const m = /^([+-]?\d+(?:\.\d+)?)([smhdy]?)$/.exec(offset.trim());
  if (!m) throw new Error(`not a libfaketime offset: ${offset}`);
  const unit = { '': 1, s: 1, m: 60, h: 3_600, d: 86_400, y: 31_536_000 }[m[2] ?? ''] ?? 1;
  return Number(m[1]) * unit * 1_000;
}
