/**
 * `npm run bench`: the worker against a polling baseline, on this machine, in one run.
 *
 *   npm run bench                   # the full suite (about 21 minutes); bench/results/<time>.json
 *   npm run bench -- --smoke        # a few jobs per scenario; results in a temp dir
 *   npm run bench -- --out=DIR      # write the results there instead
 *   npm run bench -- --only=pickup,quota,fleet
 *   npm run bench -- --only=window,fairness,slots,dealing   # issue 23's numbers
 *   npm run bench -- --only=fleet-skew   # optional: the fleet with clocks ±30 s off (libfaketime)
 *   npm run bench -- --only=fleet-steady # optional: clicks under the key's rate, one replica killed
 *   npm run bench -- --only=console # optional: write → the console's stream; its reads an hour
 *   npm run bench -- --no-build     # measure dist/ as it is
 *   npm run bench -- --only=throughput --concurrencies=4   # a quicker look at one setting
 *   npm run bench -- --only=throughput --concurrencies=none   # only the short-queue runs
 *   npm run bench -- --only=throughput --concurrencies=none --short-queue=900   # a longer one
 *   BENCH_CPU_PROF=DIR npm run bench ...   # V8 CPU profiles of the workers, in DIR
 *
 * Builds the worker first when dist/main.js is missing or older than anything in src/
 * (tsc), starts the Firestore emulator (or uses FIRESTORE_EMULATOR_HOST) and the ClipDrop and
 * Storage stand-ins, then runs each scenario against `node dist/main.js` as a separate
 * process with a fresh project id. See docs/benchmarks.md.
 */
import { spawnSync, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, tmpdir, totalmem, type } from 'node:os';
import { join, resolve } from 'node:path';
import { LOCAL_BUCKET, startLocalStack } from '../dev/local-stack.js';
import { CHECKPOINT_LIFECYCLE } from '../src/adapters/storage/work-cache.js';
import type { BenchContext } from './lib/context.js';
import { largePicture, smallPicture, variant } from './lib/images.js';
import { pidListeningOn } from './lib/proc.js';
import { FULL, SMOKE } from './plan.js';
import { evaluateTargets, renderMarkdown, type Machine, type Report } from './report.js';
import { consoleScenario } from './scenarios/console.js';
import { dealingScenario } from './scenarios/dealing.js';
import { fairnessScenario } from './scenarios/fairness.js';
import { fleetScenario } from './scenarios/fleet.js';
import { memoryScenario } from './scenarios/memory.js';
import { pickupScenario } from './scenarios/pickup.js';
import { quotaScenario } from './scenarios/quota.js';
import { slotsScenario } from './scenarios/slots.js';
import { throughputScenario } from './scenarios/throughput.js';
import { windowScenario } from './scenarios/window.js';

const SCENARIOS = [
  'pickup',
  'throughput',
  'quota',
  'memory',
  'slots',
  'window',
  'fairness',
  'fleet',
  'dealing',
] as const;
/** Run only when named in --only. */
const OPTIONAL = ['fleet-skew', 'fleet-steady', 'console'] as const;
type ScenarioName = (typeof SCENARIOS)[number] | (typeof OPTIONAL)[number];
const KNOWN: readonly string[] = [...SCENARIOS, ...OPTIONAL];

function parseArgs(argv: string[]) {
  const smoke = argv.includes('--smoke');
  const out = argv.find((a) => a.startsWith('--out='))?.slice('--out='.length);
  const onlyArg = argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
  const only = onlyArg ? onlyArg.split(',').map((s) => s.trim()) : [...SCENARIOS];
  for (const name of only) {
    if (!KNOWN.includes(name)) {
      throw new Error(`unknown scenario ${name}; one of ${KNOWN.join(', ')}`);
    }
  }
  const concurrencyArg = argv
    .find((a) => a.startsWith('--concurrencies='))
    ?.slice('--concurrencies='.length);
  // `--concurrencies=none`: only the short-queue runs of the throughput scenario.
  const concurrencies = concurrencyArg === 'none' ? [] : concurrencyArg?.split(',').map(Number);
  // `--short-queue=N`: N clicks in the short-queue runs, for a steadier "warm" figure (the JIT
  // and the connections settle over the first few hundred jobs).
  const shortQueueArg = argv.find((a) => a.startsWith('--short-queue='));
  const shortQueueClicks = shortQueueArg
    ? Number(shortQueueArg.slice('--short-queue='.length))
    : undefined;
  if (
    shortQueueClicks !== undefined &&
    !(Number.isInteger(shortQueueClicks) && shortQueueClicks > 0)
  ) {
    throw new Error(`--short-queue takes a number of clicks, not ${shortQueueArg}`);
  }
  return {
    smoke,
    out,
    only: only as ScenarioName[],
    build: !argv.includes('--no-build'),
    ...(concurrencies ? { concurrencies } : {}),
    ...(shortQueueClicks ? { shortQueueClicks } : {}),
  };
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** Rebuilds dist/ when it is missing or older than src/ (or the build config). */
function ensureBuilt(say: (l: string) => void): 'rebuilt' | 'up to date' {
  let built = 0;
  try {
    built = statSync('dist/main.js').mtimeMs;
  } catch {
    // missing
  }
  const sources = Math.max(
    newestMtime('src'),
    statSync('tsconfig.json').mtimeMs,
    statSync('tsconfig.build.json').mtimeMs,
  );
  if (built > sources) return 'up to date';
  say(built ? 'dist/ is older than src/: npm run build' : 'no dist/main.js: npm run build');
  const result = spawnSync('npm', ['run', 'build'], { stdio: ['ignore', 2, 2] });
  if (result.status !== 0) {
    throw new Error(
      `npm run build failed (exit ${String(result.status)}); the bench needs a build`,
    );
  }
  return 'rebuilt';
}

function machine(): Machine {
  let freeH: string;
  try {
    freeH = execFileSync('free', ['-h'], { encoding: 'utf8' }).trim();
  } catch {
    freeH = 'n/a';
  }
  return {
    nproc: availableParallelism(),
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    memTotalGb: Math.round((totalmem() / 1e9) * 10) / 10,
    freeH,
    node: process.version,
    os: `${type()} ${release()}`,
    loadAverageAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const base = args.smoke ? SMOKE : FULL;
  const shortQueue = base.throughput.shortQueue && {
    ...base.throughput.shortQueue,
    ...(args.shortQueueClicks
      ? {
          clicks: args.shortQueueClicks,
          // The same pace as the default run allows: 300 clicks in 90 s.
          windowS: Math.max(
            base.throughput.shortQueue.windowS,
            Math.ceil(args.shortQueueClicks * 0.3),
          ),
        }
      : {}),
  };
  const plan = {
    ...base,
    throughput: {
      ...base.throughput,
      ...(args.concurrencies ? { concurrencies: args.concurrencies } : {}),
      ...(shortQueue ? { shortQueue } : {}),
    },
  };
  const started = Date.now();
  const say = (line: string) =>
    process.stderr.write(`[bench +${((Date.now() - started) / 1000).toFixed(1)}s] ${line}\n`);

  const build = args.build ? ensureBuilt(say) : 'not checked (--no-build)';
  say('starting the Firestore emulator and the stand-ins');
  // No rate limit on the shared stand-in: only the quota scenario is about the quota, and it
  // brings its own stand-in with the real 60 a minute.
  const stack = await startLocalStack({ clipdrop: { rpm: 1_000_000_000 } });
  // The bucket as docs/performance.md asks production to set it up: a lifecycle rule removes
  // checkpoints, so completed jobs leave them to it (without: two DELETE requests a job more).
  stack.storage.lifecycles.set(LOCAL_BUCKET, CHECKPOINT_LIFECYCLE);
  const small = await smallPicture();
  const large = await largePicture(plan.memory.width, plan.memory.height);
  const sources: BenchContext['sources'] = {
    small: { data: small, contentType: 'image/png' },
    large: { data: large, contentType: 'image/jpeg' },
  };
  const ctx: BenchContext = {
    stack,
    sources,
    upload(kind, owner, name) {
      const { data, contentType } = sources[kind];
      const path = `raw-uploads/${owner}/${name}.${contentType === 'image/png' ? 'png' : 'jpg'}`;
      stack.storage.putObject(LOCAL_BUCKET, path, variant(data, `${owner}/${name}`), contentType);
      return `gs://${LOCAL_BUCKET}/${path}`;
    },
    smoke: args.smoke,
    emulatorPid: pidListeningOn(Number(stack.firestoreHost.split(':').pop())),
    say,
  };
  if (ctx.emulatorPid === undefined)
    say('the emulator process is not visible: no CPU figure for it');

  const report: Report = {
    kind: 'showcase-worker-bench',
    mode: args.smoke ? 'smoke' : 'full',
    startedAt: new Date(started).toISOString(),
    finishedAt: '',
    durationS: 0,
    build,
    machine: machine(),
    plan,
    scenarios: {},
    scenarioSeconds: {},
    errors: [],
    targets: [],
  };

  try {
    for (const name of args.only) {
      const t0 = Date.now();
      try {
        if (name === 'pickup') report.scenarios.pickup = await pickupScenario(ctx, plan.pickup);
        if (name === 'throughput') {
          report.scenarios.throughput = await throughputScenario(ctx, plan.throughput);
        }
        if (name === 'quota') report.scenarios.quota = await quotaScenario(ctx, plan.quota);
        if (name === 'fleet') report.scenarios.fleet = await fleetScenario(ctx, plan.fleet);
        if (name === 'fleet-skew') {
          report.scenarios.fleetSkew = await fleetScenario(ctx, plan.fleetSkew);
        }
        if (name === 'fleet-steady') {
          report.scenarios.fleetSteady = await fleetScenario(ctx, plan.fleetSteady);
        }
        if (name === 'memory') {
          report.scenarios.memory = await memoryScenario(ctx, plan.memory, large.length);
        }
        if (name === 'slots') report.scenarios.slots = await slotsScenario(ctx, plan.slots);
        if (name === 'window') report.scenarios.window = await windowScenario(ctx, plan.window);
        if (name === 'fairness') {
          report.scenarios.fairness = await fairnessScenario(ctx, plan.fairness);
        }
        if (name === 'dealing') report.scenarios.dealing = await dealingScenario(ctx, plan.dealing);
        if (name === 'console') report.scenarios.console = await consoleScenario(ctx, plan.console);
        say(`${name}: done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      } catch (err) {
        const error = err instanceof Error ? err.message : String(err);
        say(`${name}: FAILED: ${error}`);
        report.errors.push({ scenario: name, error });
      }
      report.scenarioSeconds[name] = Math.round((Date.now() - t0) / 100) / 10;
    }
  } finally {
    await stack.stop();
  }

  report.finishedAt = new Date().toISOString();
  report.durationS = Math.round((Date.now() - started) / 100) / 10;
  report.machine.loadAverageAtEnd = loadavg().map((l) => Math.round(l * 100) / 100);
  report.targets = evaluateTargets(report);
  const markdown = renderMarkdown(report);

  const dir = args.out
    ? resolve(args.out)
    : args.smoke
      ? mkdtempSync(join(tmpdir(), 'showcase-bench-'))
      : resolve('bench/results');
  mkdirSync(dir, { recursive: true });
  // An ISO 8601 time with the colons a file name cannot always hold replaced by dashes.
  const stamp = report.startedAt.replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
  const jsonPath = join(dir, `${stamp}.json`);
  writeFileSync(jsonPath, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(dir, `${stamp}.md`), markdown);
  process.stdout.write(`\n${markdown}\nResults: ${jsonPath}\n`);
  return report.errors.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(
      `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  },
);
