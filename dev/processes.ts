/**
 * Child processes started from source as on a dyno (`node --import tsx …`), for the local
 * fleet (dev-fleet.ts) and the browser tests' stack (test/browser/stack.ts): start one, wait
 * for a line in its output, stop it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('..', import.meta.url));

export interface Proc {
  name: string;
  proc: ChildProcess;
  output: string;
}

/** `echo`: its output also goes to this process's stdout. */
export function startProcess(
  name: string,
  args: string[],
  env: Record<string, string>,
  echo = false,
): Proc {
  const proc = spawn(process.execPath, ['--import', 'tsx', ...args], {
    cwd: REPO,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const p: Proc = { name, proc, output: '' };
  const take = (chunk: Buffer) => {
    // The tail only: enough to say why it did not start.
    p.output = (p.output + chunk.toString('utf8')).slice(-20_000);
    if (echo) process.stdout.write(chunk);
  };
  proc.stdout?.on('data', take);
  proc.stderr?.on('data', take);
  return p;
}

/** The first match of `pattern` in its output (group 1 when there is one); rejects when it exits first. */
export function waitForOutput(p: Proc, pattern: RegExp, timeoutMs = 90_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const m = pattern.exec(p.output);
      if (!m) return;
      cleanup();
      resolve(m[1] ?? m[0]);
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`${p.name} exited (${String(code)}):\n${p.output.slice(-3000)}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${p.name}: no ${pattern} in ${timeoutMs} ms:\n${p.output.slice(-3000)}`));
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      p.proc.stdout?.off('data', check);
      p.proc.stderr?.off('data', check);
      p.proc.off('exit', onExit);
    };
    p.proc.stdout?.on('data', check);
    p.proc.stderr?.on('data', check);
    p.proc.on('exit', onExit);
    check();
  });
}

/** SIGTERM, then SIGKILL after 30 s. */
export async function stopProcess(p: Proc): Promise<void> {
  if (p.proc.exitCode !== null || p.proc.signalCode !== null) return;
  const exited = new Promise((r) => p.proc.once('exit', r));
  p.proc.kill('SIGTERM');
  const timer = setTimeout(() => p.proc.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(timer);
}
