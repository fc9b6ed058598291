/**
 * A process under test (the built worker, or the baseline poller): spawned with its own
 * environment, its JSON log lines collected, its resources read from /proc, stopped with
 * SIGTERM as a platform would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { collectLines, type LogLine } from '../../test/support/log-lines.js';
import { cpuMsOf, peakRssMbOf, rssMbOf } from './proc.js';

export type { LogLine } from '../../test/support/log-lines.js';

export interface Child {
  readonly pid: number;
  readonly lines: LogLine[];
  /** Resolves with the first log line (past or future) that matches. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs: number, what: string): Promise<LogLine>;
  /** Writes one line to the child's stdin. */
  send(line: string): void;
  cpuMs(): number | undefined;
  peakRssMb(): number | undefined;
  /** Highest VmRSS seen by the sampler (every 100 ms), in MB. */
  sampledPeakRssMb(): number | undefined;
  /** CPU time (ms) at local time `at`, interpolated from the sampler's readings. */
  cpuMsAt(at: number): number | undefined;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with how it exited. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderrTail(): string;
}

/** Children still running, killed if the bench itself is interrupted. */
const live = new Set<ChildProcess>();
let hooked = false;

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
  // Interrupted (Ctrl-C): take the children down too; the 'exit' hooks stop the emulator.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      for (const child of live) child.kill('SIGKILL');
      process.exit(130);
    });
  }
}

export function spawnChild(
  name: string,
  args: string[],
  env: Record<string, string>,
  opts: { echo?: boolean } = {},
): Child {
  const proc = spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  if (proc.pid === undefined) throw new Error(`could not start ${name}`);
  const pid = proc.pid;
  live.add(proc);
  hookExit();

  const collector = collectLines(
    opts.echo ? { echo: (text) => process.stderr.write(`  [${name}] ${text}\n`) } : {},
  );
  proc.stdout.on('data', (chunk: Buffer) => collector.feed(chunk));
  let stderr = '';
  proc.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-8_000);
    if (opts.echo) process.stderr.write(`  [${name} stderr] ${chunk.toString('utf8')}`);
  });
  // A child that exits early must not take the bench down with EPIPE.
  proc.stdin.on('error', () => undefined);

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => {
      live.delete(proc);
      collector.failAll(
        () =>
          new Error(
            `${name} exited (code ${String(code)}, signal ${String(signal)}); stderr: ${stderr}`,
          ),
      );
      resolve({ code, signal });
    }),
  );

  let sampledPeak: number | undefined;
  const cpuSeries: { at: number; cpu: number }[] = [];
  const sample = () => {
    const rss = rssMbOf(pid);
    if (rss !== undefined) sampledPeak = Math.max(sampledPeak ?? 0, rss);
    const cpu = cpuMsOf(pid);
    if (cpu !== undefined) cpuSeries.push({ at: Date.now(), cpu });
  };
  const sampler = setInterval(sample, 100);
  sampler.unref();
  void exited.then(() => clearInterval(sampler));

  return {
    pid,
    lines: collector.lines,
    waitForLog(match, timeoutMs, what) {
      const waiting = collector.waitFor(
        match,
        timeoutMs,
        () => new Error(`${name}: no ${what} within ${timeoutMs} ms; stderr: ${stderr}`),
      );
      // Already gone: nothing more will come.
      if (proc.exitCode !== null || proc.signalCode !== null) {
        collector.failAll(() => new Error(`${name} exited before ${what}; stderr: ${stderr}`));
      }
      return waiting;
    },
    send(line) {
      proc.stdin.write(`${line}\n`);
    },
    cpuMs: () => cpuMsOf(pid),
    peakRssMb: () => peakRssMbOf(pid),
    sampledPeakRssMb: () => sampledPeak,
    cpuMsAt(at) {
      sample();
      const after = cpuSeries.findIndex((s) => s.at >= at);
      if (after <= 0) return after === 0 ? cpuSeries[0]?.cpu : undefined;
      const a = cpuSeries[after - 1]!;
      const b = cpuSeries[after]!;
      return b.at === a.at ? b.cpu : a.cpu + ((b.cpu - a.cpu) * (at - a.at)) / (b.at - a.at);
    },
    async stop(graceMs = 30_000) {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
    stderrTail: () => stderr,
  };
}
