/**
 * `npm run dev`: the worker from source against the local stack (emulator + stand-ins),
 * until Ctrl-C. Click Process by writing to the emulator, e.g. with the operator CLI or
 * the Firestore emulator's REST API.
 */
import { spawn } from 'node:child_process';
import { startLocalStack } from './local-stack.js';

const stack = await startLocalStack();
process.stdout.write(
  `local stack up:\n${Object.entries(stack.env)
    .map(([k, v]) => `  ${k}=${v}`)
    .join('\n')}\n`,
);
const worker = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
  env: { ...process.env, ...stack.env, NODE_ENV: 'development' },
  stdio: 'inherit',
});
const forward = (signal: NodeJS.Signals) => worker.kill(signal);
process.on('SIGINT', forward);
process.on('SIGTERM', forward);
const code = await new Promise<number | null>((r) => worker.on('exit', r));
await stack.stop();
process.exit(code ?? 0);
