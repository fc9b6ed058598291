import type { Options, Parsed } from './args.js';
import type { CliIo } from './io.js';

/** One sub-command of `showcase-worker`. */
export interface Command {
  name: string;
  /** One line, for the list of commands. */
  summary: string;
  /** The whole `--help` text: usage, options, exit codes. */
  help: string;
  options: Options;
  run(parsed: Parsed, io: CliIo): Promise<number>;
}
