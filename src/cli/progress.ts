import type { CliIo } from './io.js';

const WIDTH = 24;

export interface Progress {
  /** One item done: `label` says which and how it went. */
  tick(label: string): void;
  /** Ends the bar (a newline on a terminal). */
  done(): void;
}

/**
 * A progress bar on a terminal (`[#######.......] 12/40  30%  eta 1m20s  last-item`, redrawn
 * in place), and one plain line per item otherwise (logs, pipes, CI).
 */
export function createProgress(
  io: CliIo,
  total: number,
  opts: { intervalMs: number; verb: string },
): Progress {
  let count = 0;
  return {
    tick(label) {
      count++;
      if (!io.isTTY) {
        io.out(`${opts.verb} ${count}/${total} ${label}`);
        return;
      }
      const filled = total === 0 ? WIDTH : Math.round((count / total) * WIDTH);
      const percent = total === 0 ? 100 : Math.floor((count / total) * 100);
      const eta = formatDuration((total - count) * opts.intervalMs);
      io.write(
        `\r\x1b[2K[${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ${count}/${total} ` +
          `${String(percent).padStart(3)}%  eta ${eta}  ${label}`,
      );
    },
    done() {
      if (io.isTTY && count > 0) io.write('\n');
    },
  };
}

/** 950 ms → "1s", 80 s → "1m20s", 2 h → "2h0m". */
export function formatDuration(ms: number): string {
  const s = Math.ceil(Math.max(0, ms) / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}
