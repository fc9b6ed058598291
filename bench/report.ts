/** The report: one JSON document per run, and the markdown tables printed at the end. */
import type { RunResult } from './lib/run-target.js';
import type { Distribution } from './lib/stats.js';
import type { Plan } from './plan.js';
import { renderConsole, type ConsoleResult } from './scenarios/console.js';
import { renderDealing, type DealingResult } from './scenarios/dealing.js';
import { renderFairness, type FairnessResult } from './scenarios/fairness.js';
import { renderFleet, TAKEOVER_GOAL_MS, type FleetResult } from './scenarios/fleet.js';
import type { MemoryResult } from './scenarios/memory.js';
import type { PickupResult } from './scenarios/pickup.js';
import type { QuotaResult } from './scenarios/quota.js';
import { renderSlots, type SlotsResult } from './scenarios/slots.js';
import type { ThroughputResult } from './scenarios/throughput.js';
import { renderWindow, type WindowResult } from './scenarios/window.js';

export interface Machine {
  nproc: number;
  cpuModel: string;
  memTotalGb: number;
  freeH: string;
  node: string;
  os: string;
  /** 1, 5 and 15 minute load averages: how busy the (shared) machine was. */
  loadAverageAtStart: number[];
  loadAverageAtEnd?: number[];
}

export interface Report {
  kind: 'showcase-worker-bench';
  mode: 'full' | 'smoke';
  startedAt: string;
  finishedAt: string;
  durationS: number;
  build: 'rebuilt' | 'up to date' | 'not checked (--no-build)';
  machine: Machine;
  plan: Plan;
  scenarios: {
    pickup?: PickupResult;
    throughput?: ThroughputResult;
    quota?: QuotaResult;
    fleet?: FleetResult;
    /** Optional (`--only=fleet-skew`): the fleet with replicas' clocks ±30 s off. */
    fleetSkew?: FleetResult;
    /** Optional (`--only=fleet-steady`): clicks under the key's rate, one replica killed. */
    fleetSteady?: FleetResult;
    memory?: MemoryResult;
    /** Issue 23. */
    window?: WindowResult;
    fairness?: FairnessResult;
    slots?: SlotsResult;
    dealing?: DealingResult;
    /** Optional (`--only=console`), issue 25. */
    console?: ConsoleResult;
  };
  /** How long each scenario took, s (wall clock, start-up included). */
  scenarioSeconds: Record<string, number>;
  errors: { scenario: string; error: string }[];
  targets: Target[];
}

export interface Target {
  name: string;
  goal: string;
  value: string;
  met: boolean | undefined;
}

const fmt = (v: number | undefined, digits = 0): string =>
  v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(digits);
const ms = (v: number | undefined): string =>
  v === undefined ? 'n/a' : `${fmt(v, v < 100 ? 1 : 0)} ms`;
const s = (v: number | undefined): string => (v === undefined ? 'n/a' : `${fmt(v / 1000, 1)} s`);
const human = (v: number | undefined): string => (v !== undefined && v >= 10_000 ? s(v) : ms(v));
const ratio = (a: number | undefined, b: number | undefined): string =>
  a === undefined || b === undefined || b === 0 ? 'n/a' : `${fmt(a / b, a / b >= 10 ? 0 : 1)}×`;
const done = (r: RunResult): string =>
  `${r.completed}/${r.clicked}` +
  (r.failed
    ? `, ${r.failed} failed (${Object.entries(r.errorCodes)
        .map(([c, n]) => `${c} ${n}`)
        .join(', ')})`
    : '') +
  (r.unfinished ? `, ${r.unfinished} unfinished` : '');

function distRows(label: string, w?: Distribution, b?: Distribution): string[] {
  return (['p50', 'p95', 'p99', 'max'] as const).map(
    (p) => `| ${label} ${p} | ${human(w?.[p])} | ${human(b?.[p])} | ${ratio(b?.[p], w?.[p])} |`,
  );
}

export function evaluateTargets(report: Report): Target[] {
  const { pickup, throughput, quota, memory } = report.scenarios;
  const skew = report.scenarios.fleetSkew?.runs[0];
  const p = pickup?.worker.pickupMs;
  const c16 = throughput?.runs.find((r) => r.settings.WORKER_CONCURRENCY === '16');
  const c4 = throughput?.runs.find((r) => r.settings.WORKER_CONCURRENCY === '4');
  const nb = throughput?.baseline;
  const sq = throughput?.shortQueue;
  const pc = pickup?.worker.completeMs;
  const q = quota?.worker;
  const m = memory?.worker;
  const check = (v: number | undefined, ok: (v: number) => boolean) =>
    v === undefined ? undefined : ok(v);
  return [
    { name: 'pickup p50', goal: '≤ 50 ms', value: ms(p?.p50), met: check(p?.p50, (v) => v <= 50) },
    {
      name: 'pickup p99',
      goal: '≤ 250 ms',
      value: ms(p?.p99),
      met: check(p?.p99, (v) => v <= 250),
    },
    {
      name: 'worker CPU per job at concurrency 16',
      goal: '≤ 5 ms',
      value: ms(c16?.cpuMsPerJob),
      met: check(c16?.cpuMsPerJob, (v) => v <= 5),
    },
    {
      name: 'quota use',
      goal: '≥ 95 % of 30 jobs/min, zero 429s',
      value:
        q === undefined
          ? 'n/a'
          : `${fmt(q.quotaUse, 1)} % (${fmt(q.jobsPerMinute, 1)} jobs/min), ${q.clipdrop.r429} × 429`,
      met:
        q?.quotaUse === undefined
          ? undefined
          : q.quotaUse >= 95 && q.clipdrop.r429 === 0 && q.failed === 0,
    },
    {
      name: `peak RSS, ${report.plan.memory.clicks} × ${memory?.source.width ?? report.plan.memory.width}x${memory?.source.height ?? report.plan.memory.height} at once, default settings (scenario 4)`,
      goal: '≤ 300 MB',
      value: m?.peakRssMb === undefined ? 'n/a' : `${fmt(m.peakRssMb)} MB`,
      met: check(m?.peakRssMb, (v) => v <= 300),
    },
    {
      name: `peak RSS, ${report.plan.memory.small.clicks} small pictures at once, default settings (scenario 4)`,
      goal: '≤ 200 MB',
      value: memory?.small?.peakRssMb === undefined ? 'n/a' : `${fmt(memory.small.peakRssMb)} MB`,
      met: check(memory?.small?.peakRssMb, (v) => v <= 200),
    },
    // The lean issue's (docs/performance.md).
    {
      name: 'sequential Google round trips per fresh job (max over jobs, scenario 1)',
      goal: '≤ 6',
      value: fmt(pickup?.worker.roundTrips?.max),
      met: check(pickup?.worker.roundTrips?.max, (v) => v <= 6),
    },
    {
      name: 'worker CPU per job at concurrency 4',
      goal: '≤ 50 ms',
      value: ms(c4?.cpuMsPerJob),
      met: check(c4?.cpuMsPerJob, (v) => v <= 50),
    },
    {
      name: 'throughput at concurrency 4 ÷ notebook port, same run',
      goal: '≥ 2×',
      value: ratio(c4?.jobsPerSecond, nb?.jobsPerSecond),
      met:
        c4?.jobsPerSecond === undefined || !nb?.jobsPerSecond
          ? undefined
          : c4.jobsPerSecond / nb.jobsPerSecond >= 2,
    },
    {
      name: 'worker CPU per job at concurrency 4, short queue, warm (scenario 2b)',
      goal: '≤ 50 ms',
      value: ms(sq?.worker.warmCpuMsPerJob),
      met: check(sq?.worker.warmCpuMsPerJob, (v) => v <= 50),
    },
    {
      name: 'throughput at concurrency 4 ÷ notebook port, short queue (scenario 2b)',
      goal: '≥ 2×',
      value: ratio(sq?.worker.jobsPerSecond, sq?.baseline.jobsPerSecond),
      met:
        sq?.worker.jobsPerSecond === undefined || !sq.baseline.jobsPerSecond
          ? undefined
          : sq.worker.jobsPerSecond / sq.baseline.jobsPerSecond >= 2,
    },
    {
      name: 'busy worker: pickup p95',
      goal: '≤ 60 ms',
      value: ms(p?.p95),
      met: check(p?.p95, (v) => v <= 60),
    },
    {
      name: 'busy worker: click → complete p50 / p95',
      goal: '≤ 150 ms / ≤ 400 ms',
      value: `${ms(pc?.p50)} / ${ms(pc?.p95)}`,
      met:
        pc === undefined ? undefined : (pc.p50 ?? Infinity) <= 150 && (pc.p95 ?? Infinity) <= 400,
    },
    ...issue23Targets(report),
    // Only when the optional clock-skew fleet ran (issue 22).
    ...(skew
      ? [
          {
            name: 'fleet, clocks ±30 s off: killed worker’s jobs complete after the kill',
            goal: '≤ 25 s, no claim from a live worker, zero 429s',
            value: `${s(skew.takeover?.completeMs)}, ${skew.claimsFromLive ?? 'n/a'} claims from a live worker, ${skew.responses429} × 429`,
            met:
              skew.takeover?.completeMs === undefined
                ? undefined
                : skew.takeover.completeMs <= 25_000 &&
                  skew.claimsFromLive === 0 &&
                  skew.responses429 === 0,
          },
        ]
      : []),
  ];
}

/** Issue 23's "done when" numbers, each beside its goal. */
function issue23Targets(report: Report): Target[] {
  const { window, fairness, slots, dealing, fleet } = report.scenarios;
  const plan = report.plan;
  const targets: Target[] = [];
  for (const r of window?.runs ?? []) {
    if (r.goalS === undefined) continue;
    const goalS = r.goalS;
    targets.push({
      name: `window: ${r.clicks} clicks, ${r.replicas} replica${r.replicas > 1 ? 's' : ''} on one key: all complete after (ideal ${r.idealS} s)`,
      goal: `≤ ${goalS} s, zero 429s`,
      value: `${r.spanS === undefined ? 'n/a' : `${r.spanS} s`}${r.completed < r.clicks ? ` (${r.completed}/${r.clicks} complete)` : ''}, ${r.responses429} × 429`,
      met:
        r.spanS === undefined
          ? undefined
          : r.completed === r.clicks && r.spanS <= goalS && r.responses429 === 0,
    });
  }
  if (fairness) {
    const goalMs = plan.fairness.goalS * 1000;
    targets.push({
      name: `fairness: user B's ${plan.fairness.bClicks} clicks behind user A's ${plan.fairness.aClicks}, click → complete`,
      goal: `≤ ${plan.fairness.goalS} s each`,
      value: fairness.bCompleteMs.map((v) => (v === undefined ? 'not done' : s(v))).join(', '),
      met: fairness.bCompleteMs.every((v) => v !== undefined && v <= goalMs),
    });
  }
  for (const r of fleet?.runs ?? []) {
    if (!r.takeover) continue;
    const t = r.takeover;
    targets.push({
      name: `fleet, ${r.replicas} replicas: a SIGKILLed worker's ${t.held} jobs complete after the kill`,
      goal: `≤ ${TAKEOVER_GOAL_MS / 1000} s`,
      value: `${s(t.completeMs)} (claimed again after ${s(t.claimedMs)})`,
      met: t.completeMs === undefined ? undefined : t.completeMs <= TAKEOVER_GOAL_MS,
    });
  }
  if (slots) {
    const l = plan.slots.latencyMs;
    targets.push({
      name: `slots: ${plan.slots.clicks} clicks, no quota, jobs/s ÷ (WORKER_CONCURRENCY ${slots.concurrency} / ${(l.removeBackground + l.upscale) / 1000} s)`,
      goal: `≥ ${plan.slots.goalShare}`,
      value: `${fmt(slots.shareOfBound, 2)} (${fmt(slots.worker.jobsPerSecond, 2)} of ${fmt(slots.boundJobsPerSecond, 2)} jobs/s; notebook port ${fmt(slots.baseline.jobsPerSecond, 2)})`,
      met:
        slots.shareOfBound === undefined ? undefined : slots.shareOfBound >= plan.slots.goalShare,
    });
  }
  for (const r of dealing?.runs ?? []) {
    targets.push({
      name: `dealing, ${r.replicas} replica${r.replicas > 1 ? 's' : ''}: source downloads and claim attempts per click (mean / max)`,
      goal: '1 and 1',
      value: `${r.downloads.mean} / ${r.downloads.max} downloads, ${r.claimAttempts.mean} / ${r.claimAttempts.max} claim attempts`,
      met:
        r.completed === 0
          ? undefined
          : [r.downloads, r.claimAttempts].every((p) => p.mean === 1 && p.max === 1),
    });
  }
  return targets;
}

export function renderMarkdown(report: Report): string {
  const out: string[] = [];
  const { pickup, throughput, quota, memory } = report.scenarios;
  const plan = report.plan;
  const m = report.machine;
  out.push(
    `## Benchmark ${report.mode === 'smoke' ? '(smoke: a few jobs, numbers mean nothing)' : ''} ${report.startedAt}`,
    '',
    `Machine: ${m.nproc} CPUs (${m.cpuModel}), ${m.memTotalGb} GB RAM, node ${m.node}, ${m.os}; ` +
      `load average ${m.loadAverageAtStart.join(' ')} at the start, ${m.loadAverageAtEnd?.join(' ') ?? 'n/a'} at the end. ` +
      `Bench took ${fmt(report.durationS)} s` +
      (Object.keys(report.scenarioSeconds).length > 0
        ? ` (${Object.entries(report.scenarioSeconds)
            .map(([name, t]) => `${name} ${fmt(t)} s`)
            .join(', ')}).`
        : '.'),
    '',
  );

  if (pickup) {
    const w = pickup.worker;
    const b = pickup.baseline;
    out.push(
      `### 1. Pickup latency: ${plan.pickup.clicks} clicks ${plan.pickup.spacingMs} ms apart, ClipDrop latency 0`,
      '',
      `| | worker (concurrency ${plan.pickup.concurrency}) | baseline (POLL_SECONDS=${plan.pickup.pollSeconds}) | baseline ÷ worker |`,
      '| --- | --- | --- | --- |',
      ...distRows('click → first write', w.pickupMs, b.pickupMs),
      ...distRows('click → complete', w.completeMs, b.completeMs),
      `| jobs done | ${done(w)} | ${done(b)} | |`,
      `| CPU per job | ${ms(w.cpuMsPerJob)} | ${ms(b.cpuMsPerJob)} | ${ratio(b.cpuMsPerJob, w.cpuMsPerJob)} |`,
      `| peak RSS | ${fmt(w.peakRssMb)} MB | ${fmt(b.peakRssMb)} MB | |`,
      '',
      ...(w.idle
        ? [
            `The same worker, first ${w.idle.clicks} clicks one at a time on an idle worker (nothing queued): ` +
              `click → first write p50 ${ms(w.idle.pickupMs?.p50)} / max ${ms(w.idle.pickupMs?.max)}, ` +
              `click → complete p50 ${ms(w.idle.completeMs?.p50)} / max ${ms(w.idle.completeMs?.max)}.`,
            '',
          ]
        : []),
      `Google round trips per job, from the worker's \`job.finished\` lines: sequential p50 ${fmt(w.roundTrips?.p50)} / max ${fmt(w.roundTrips?.max)}, ` +
        `all requests p50 ${fmt(w.googleRequests?.p50)} / max ${fmt(w.googleRequests?.max)}.`,
      '',
      `Cross-checks: first write as the app's listener saw it, p50 ${ms(w.appSeenPickupMs?.p50)} / p99 ${ms(w.appSeenPickupMs?.p99)}; ` +
        `the worker's own \`job.claimed\` pickupMs p50 ${ms(w.workerReportedPickupMs?.p50)} / p99 ${ms(w.workerReportedPickupMs?.p99)}.`,
      '',
    );
  }

  if (throughput && throughput.runs.length > 0) {
    out.push(
      `### 2. Throughput: ${plan.throughput.clicks} clicks at once, ClipDrop latency 0 (each run stopped after ${plan.throughput.windowS} s if not done)`,
      '',
      '| concurrency | jobs/s | worker CPU per job | click → first write p50 / p99 | click → complete p50 / p99 | peak RSS | ClipDrop max in flight | Storage requests per job | round trips p50 / max (all requests p50) | CPU: worker / emulator / bench + stand-ins | jobs done |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
      ...[...throughput.runs, ...(throughput.baseline ? [throughput.baseline] : [])].map(
        (r) =>
          `| ${r.target === 'baseline' ? 'notebook port (1 at a time, POLL_SECONDS=1)' : r.settings.WORKER_CONCURRENCY} | ${fmt(r.jobsPerSecond, 1)} | ${ms(r.cpuMsPerJob)}${r.cpuMethod === 'steady state' ? ' (steady state)' : ''} | ` +
          `${human(r.pickupMs?.p50)} / ${human(r.pickupMs?.p99)} | ` +
          `${human(r.completeMs?.p50)} / ${human(r.completeMs?.p99)} | ${fmt(r.peakRssMb)} MB | ${r.clipdrop.maxInFlight} | ` +
          `${r.completed ? fmt(r.storageRequests / r.completed, 1) : 'n/a'} | ` +
          `${r.roundTrips ? `${fmt(r.roundTrips.p50)} / ${fmt(r.roundTrips.max)} (${fmt(r.googleRequests?.p50)})` : 'n/a'} | ` +
          `${s(r.machineCpuMs?.underTest)} / ${s(r.machineCpuMs?.emulator)} / ${s(r.machineCpuMs?.benchProcess)} | ${done(r)} |`,
      ),
      '',
      ...(throughput.baseline
        ? [
            `Worker ÷ notebook port, jobs/s: ${throughput.runs
              .map(
                (r) =>
                  `concurrency ${r.settings.WORKER_CONCURRENCY} ${ratio(r.jobsPerSecond, throughput.baseline?.jobsPerSecond)}`,
              )
              .join(', ')}.`,
            '',
          ]
        : []),
    );
  }

  const short = throughput?.shortQueue;
  const sq = plan.throughput.shortQueue;
  if (short && sq) {
    const row = (name: string, r: RunResult) =>
      `| ${name} | ${fmt(r.jobsPerSecond, 1)} | ${ms(r.cpuMsPerJob)}${r.cpuMethod === 'steady state' ? ' (steady state)' : ''} | ${ms(r.warmCpuMsPerJob)} | ` +
      `${human(r.completeMs?.p50)} / ${human(r.completeMs?.p99)} | ${fmt(r.peakRssMb)} MB | ` +
      `${s(r.machineCpuMs?.underTest)} / ${s(r.machineCpuMs?.emulator)} / ${s(r.machineCpuMs?.benchProcess)} | ${done(r)} |`;
    out.push(
      `### 2b. A short queue: ${sq.clicks} clicks, at most ${sq.outstanding} unfinished at a time, ClipDrop latency 0 (stopped after ${sq.windowS} s if not done)`,
      '',
      'The same work per job as scenario 2, without its 500 clicks waiting: the emulator sends a listener its whole result again on every write to the collection, which production Firestore does not (docs/performance.md).',
      '',
      '| | jobs/s | CPU per job | CPU per job, warm (after the first third) | click → complete p50 / p99 | peak RSS | CPU: process / emulator / bench + stand-ins | jobs done |',
      '| --- | --- | --- | --- | --- | --- | --- | --- |',
      row('worker, concurrency 4', short.worker),
      row('notebook port (1 at a time, POLL_SECONDS=1)', short.baseline),
      '',
      `Worker ÷ notebook port, jobs/s: ${ratio(short.worker.jobsPerSecond, short.baseline.jobsPerSecond)}.`,
      '',
    );
  }

  if (quota) {
    const w = quota.worker;
    const b = quota.baseline;
    const l = plan.quota.latencyMs;
    out.push(
      `### 3. Quota use: ${plan.quota.clicks} clicks at once, ClipDrop latency ${l.removeBackground} / ${l.upscale} ms, ${plan.quota.rpm} requests a minute`,
      '',
      `Bound: ${quota.boundJobsPerMinute} jobs/min in the long run; ${fmt(quota.burstBoundJobsPerMinute, 1)} jobs/min at most for ${plan.quota.clicks} clicks starting with an empty window. ` +
        `CLIPDROP_RPM in the build under test: ${quota.limiterInBuild ? 'yes' : 'no (no client-side limiter yet)'}. ` +
        'Worker and baseline ran at the same time, each with its own stand-in and quota.',
      '',
      `| | worker (concurrency ${plan.quota.concurrency}, CLIPDROP_RPM=${plan.quota.rpm}) | baseline (POLL_SECONDS=${plan.quota.pollSeconds}) | worker ÷ baseline |`,
      '| --- | --- | --- | --- |',
      `| jobs/min | ${fmt(w.jobsPerMinute, 1)} | ${fmt(b.jobsPerMinute, 1)} | ${ratio(w.jobsPerMinute, b.jobsPerMinute)} |`,
      `| quota use (÷ ${quota.boundJobsPerMinute}/min) | ${fmt(w.quotaUse, 1)} % | ${fmt(b.quotaUse, 1)} % | |`,
      `| quota use (÷ ${fmt(quota.burstBoundJobsPerMinute, 1)}/min, burst-adjusted) | ${fmt(w.burstQuotaUse, 1)} % | ${fmt(b.burstQuotaUse, 1)} % | |`,
      `| 429s received | ${w.clipdrop.r429} | ${b.clipdrop.r429} | |`,
      `| ClipDrop requests (paid + refused) | ${w.clipdrop.calls} | ${b.clipdrop.calls} | |`,
      `| click → complete p50 / p99 | ${human(w.completeMs?.p50)} / ${human(w.completeMs?.p99)} | ${human(b.completeMs?.p50)} / ${human(b.completeMs?.p99)} | |`,
      `| jobs done | ${done(w)} | ${done(b)} | |`,
      '',
    );
  }

  if (memory) {
    const w = memory.worker;
    const row = (name: string, goal: string, r: RunResult) =>
      `| ${name} | ${fmt(r.peakRssMb)} MB | ${goal} | ${fmt(r.sampledPeakRssMb)} MB | ${fmt(r.idleRssMb)} MB | ${fmt(r.jobsPerMinute, 1)} | ${human(r.completeMs?.p50)} / ${human(r.completeMs?.max)} | ${done(r)} |`;
    out.push(
      `### 4. Memory: clicks at once at the default settings (the Procfile's command, WORKER_CONCURRENCY ${w.workerConcurrency ?? 'default'}); each run stopped after ${plan.memory.windowS} s if not done`,
      '',
      '| sources | peak RSS (VmHWM) | goal | highest sampled RSS | RSS after warm-up | jobs/min | click → complete p50 / max | jobs done |',
      '| --- | --- | --- | --- | --- | --- | --- | --- |',
      row(
        `${plan.memory.clicks} × ${memory.source.width}x${memory.source.height} JPEG (${fmt(memory.source.bytes / 1e6, 1)} MB)`,
        '≤ 300 MB',
        w,
      ),
      ...(memory.small
        ? [row(`${plan.memory.small.clicks} × 128x96 PNG`, '≤ 200 MB', memory.small)]
        : []),
      '',
      ...(w.memoryAtPeak
        ? [
            `At the highest RSS the worker's /metrics reported (${fmt(w.memoryAtPeak.rssMb)} MB): V8 heap ${fmt(w.memoryAtPeak.heapUsedMb)} MB, ` +
              `Buffers and other external memory ${fmt(w.memoryAtPeak.externalMb)} MB, native rest (libvips, allocator, code) ${fmt(w.memoryAtPeak.otherMb)} MB.`,
            '',
          ]
        : []),
    );
  }

  const { slots, window, fairness, dealing } = report.scenarios;
  if (slots) out.push(...renderSlots(slots, plan.slots), '');
  if (window) out.push(...renderWindow(window, plan.window), '');
  if (fairness) out.push(...renderFairness(fairness, plan.fairness), '');
  if (report.scenarios.fleet) out.push(...renderFleet(report.scenarios.fleet, plan.fleet), '');
  if (dealing) out.push(...renderDealing(dealing, plan.dealing), '');
  if (report.scenarios.fleetSteady) {
    out.push(...renderFleet(report.scenarios.fleetSteady, plan.fleetSteady), '');
  }
  if (report.scenarios.fleetSkew) {
    out.push(...renderFleet(report.scenarios.fleetSkew, plan.fleetSkew), '');
  }

  if (report.scenarios.console) {
    out.push(...renderConsole(report.scenarios.console, plan.console), '');
  }

  out.push('### Targets', '', '| target | goal | this run | met |', '| --- | --- | --- | --- |');
  for (const t of report.targets) {
    out.push(
      `| ${t.name} | ${t.goal} | ${t.value} | ${t.met === undefined ? 'n/a' : t.met ? 'yes' : '**no**'} |`,
    );
  }
  if (report.errors.length > 0) {
    out.push('', '### Errors', '', ...report.errors.map((e) => `- ${e.scenario}: ${e.error}`));
  }
  return `${out.join('\n')}\n`;
}
