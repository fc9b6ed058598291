/**
 * `npm run dev`: the local stack (emulator + stand-ins) with a worker and the operator console,
 * seeded with sample characters (dev/seed.ts), until Ctrl-C. Prints the console's address and
 * its token (generated for this run). Click Process on more characters with the operator CLI
 * (`npm run cli -- click ID` with the printed settings) or the emulator's REST API.
 */
import { startDevFleet } from './dev-fleet.js';
import { outcomeText } from './seed.js';

const say = (line: string) => process.stdout.write(`[dev] ${line}\n`);
say('starting the Firestore emulator, the ClipDrop and Storage stand-ins, a worker, the console…');
const fleet = await startDevFleet({ echo: true });
let stopping = false;
const stop = async (code: number) => {
  if (stopping) return;
  stopping = true;
  say('stopping…');
  await fleet.stop();
  process.exit(code);
};
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));
void fleet.exited.then((why) => {
  say(why);
  void stop(1);
});

try {
  const samples = await fleet.seed(say);
  say(`seeded ${samples.length} sample characters`);
  for (const s of samples) say(`  ${s.id.padEnd(18)} ${outcomeText(s)}`);
} catch (err) {
  say(`seeding failed: ${err instanceof Error ? err.message : String(err)}`);
}

const rule = '─'.repeat(72);
process.stdout.write(
  [
    '',
    rule,
    `  Operator console:  ${fleet.consoleUrl}`,
    `  Token (sign in):   ${fleet.token}`,
    '',
    '  The stack and the worker:',
    ...Object.entries(fleet.stack.env).map(([k, v]) => `    ${k}=${v}`),
    '',
    '  The two jobs in progress wait for ClipDrop calls that never answer: the worker',
    '  times them out (60 s, 120 s) and retries them, and they complete.',
    '  Ctrl-C stops everything (the emulator keeps nothing).',
    rule,
    '',
  ].join('\n'),
);
