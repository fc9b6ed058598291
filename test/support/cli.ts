import { spawn } from 'node:child_process';
import { runCli } from '../../src/cli/run.js';

export interface CliRun {
  code: number;
  /** stdout, lines joined with \n (progress redraws included verbatim). */
  out: string;
  err: string;
}

/** Runs the operator CLI in this process, with its output captured. */
export async function runCliCaptured(
  args: string[],
  env: Record<string, string | undefined>,
  opts: { isTTY?: boolean; signal?: AbortSignal } = {},
): Promise<CliRun> {
  const out: string[] = [];
  const err: string[] = [];
  let raw = '';
  const code = await runCli(args, {
    out: (line) => {
      raw += `${line}\n`;
      out.push(line);
    },
    err: (line) => err.push(line),
    write: (text) => {
      raw += text;
    },
    isTTY: opts.isTTY ?? false,
    env,
    signal: opts.signal ?? new AbortController().signal,
  });
  return { code, out: opts.isTTY ? raw : out.join('\n'), err: err.join('\n') };
}

/** Runs the CLI as an operator would: `node src/cli.ts` (through tsx) in a child process. */
export function spawnCli(args: string[], env: Record<string, string | undefined>): Promise<CliRun> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
    env: Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString('utf8')));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({ code: code ?? -1, out: out.trimEnd(), err: err.trimEnd() }),
    );
  });
}
