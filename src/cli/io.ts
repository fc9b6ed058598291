/**
 * Everything a command touches outside itself: output, environment, Ctrl-C. `cli.ts` binds it
 * to the process; tests bind it to strings. Only the CLI writes to stdout directly.
 */
export interface CliIo {
  /** Writes a line of results to stdout. */
  out(line: string): void;
  /** Writes a line of diagnostics to stderr. */
  err(line: string): void;
  /** Writes raw text to stdout (progress redraws). */
  write(text: string): void;
  /** Whether stdout is a terminal: progress bars then, plain lines otherwise. */
  isTTY: boolean;
  env: NodeJS.ProcessEnv;
  /** Aborted on Ctrl-C: long commands stop between two writes and print a summary. */
  signal: AbortSignal;
  /** Folder of the config files; default ./config, as for the worker. */
  configDir?: string;
  now?: () => number;
}
