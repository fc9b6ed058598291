import { ConfigError } from '../config/load.js';
import { parse } from './args.js';
import { backfill } from './backfill.js';
import { budget } from './budget.js';
import type { Command } from './command.js';
import { consoleCommand } from './console.js';
import { doctor } from './doctor.js';
import { enqueue } from './enqueue.js';
import { EXIT, UsageError } from './exit-codes.js';
import type { CliIo } from './io.js';
import { intake } from './intake.js';
import { limit } from './limit.js';
import { retryFailed } from './retry-failed.js';
import { status } from './status.js';

export const COMMANDS: readonly Command[] = [
  enqueue,
  status,
  retryFailed,
  backfill,
  doctor,
  limit,
  budget,
  intake,
  consoleCommand,
];

const BIN = 'showcase-worker';

export function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `Usage: ${BIN} <command> [options]

The showcase worker's operator tool. It reads the same configuration as the worker (the
environment, then config/<NODE_ENV>.json), so run it where the worker runs:
  heroku run npx ${BIN} status        render: the service's Shell tab
  docker run --env-file .env IMAGE node dist/cli.js doctor

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Run "${BIN} <command> --help" for a command's options.

Exit codes: 0 ok; 1 done, but something needs attention (see each command); 2 invalid
configuration; 3 Firestore or Storage failed; 64 usage error; 130 interrupted (Ctrl-C).`;
}

/** Runs one command line; returns the exit code (cli.ts exits with it). */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' ? COMMANDS.find((c) => c.name === rest[0]) : undefined;
    if (topic) {
      io.out(topic.help);
      return EXIT.OK;
    }
    if (name === undefined) {
      io.err(mainHelp());
      return EXIT.USAGE;
    }
    io.out(mainHelp());
    return EXIT.OK;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    io.err(
      `${BIN}: unknown command "${name}". Commands: ${COMMANDS.map((c) => c.name).join(', ')}`,
    );
    return EXIT.USAGE;
  }
  try {
    const parsed = parse(rest, command.options);
    if (parsed.values.help) {
      io.out(command.help);
      return EXIT.OK;
    }
    return await command.run(parsed, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`${BIN} ${command.name}: ${err.message}`);
      io.err(`Run "${BIN} ${command.name} --help" for usage.`);
      return EXIT.USAGE;
    }
    if (err instanceof ConfigError) {
      io.err(err.message);
      io.err(`Run "${BIN} doctor" to check the whole setup.`);
      return EXIT.CONFIG;
    }
    const message = err instanceof Error ? err.message : String(err);
    io.err(`${BIN} ${command.name}: failed: ${message.split('\n')[0] ?? message}`);
    return EXIT.UNAVAILABLE;
  }
}
