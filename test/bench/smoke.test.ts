/**
 * The benchmark's smoke variant (`npm run bench -- --smoke`), so the suite cannot rot: every
 * scenario must still run and produce numbers. Timings are never asserted: machines differ
 * and CI is noisy.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import type { Report } from '../../bench/report.js';
import type { RunResult } from '../../bench/lib/run-target.js';

const out = mkdtempSync(join(tmpdir(), 'bench-smoke-'));

function runSmoke(): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'bench/run.ts', '--smoke', `--out=${out}`],
      {
        // The emulator of the test run: the bench must not start a second one.
        env: { ...process.env, FIRESTORE_EMULATOR_HOST: inject('firestoreEmulatorHost') },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.on('exit', (code) => resolve({ code, output }));
  });
}

const positive = (v: number | undefined) => typeof v === 'number' && Number.isFinite(v) && v > 0;

function expectNumbers(run: RunResult | undefined, what: string): void {
  expect(run, what).toBeDefined();
  if (!run) return;
  expect(run.clicked, `${what}: clicked`).toBeGreaterThan(0);
  expect(run.completed, `${what}: completed`).toBeGreaterThan(0);
  for (const [name, value] of Object.entries({
    'click → first write p50': run.pickupMs?.p50,
    'click → first write max': run.pickupMs?.max,
    'click → complete p50': run.completeMs?.p50,
    'click → complete p99': run.completeMs?.p99,
    'jobs/s': run.jobsPerSecond,
    'jobs/min': run.jobsPerMinute,
    'peak RSS': run.peakRssMb,
  })) {
    expect(positive(value), `${what}: ${name} = ${String(value)}`).toBe(true);
  }
  expect(Number.isFinite(run.cpuMsPerJob), `${what}: CPU per job`).toBe(true);
  expect(run.clipdrop.r429, `${what}: 429 count`).toBeGreaterThanOrEqual(0);
}

describe('npm run bench -- --smoke', () => {
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('runs every scenario and reports numbers for each', { timeout: 240_000 }, async () => {
    const { code, output } = await runSmoke();
    expect(code, output.slice(-4_000)).toBe(0);

    const file = readdirSync(out).find((f) => f.endsWith('.json'));
    expect(file, `no JSON report in ${out}`).toBeDefined();
    const report = JSON.parse(readFileSync(join(out, file!), 'utf8')) as Report;
    expect(report.mode).toBe('smoke');
    expect(report.errors).toEqual([]);

    const { pickup, throughput, quota, memory } = report.scenarios;
    expectNumbers(pickup?.worker, 'pickup, worker');
    expectNumbers(pickup?.baseline, 'pickup, baseline');
    expect(throughput?.runs.length).toBe(report.plan.throughput.concurrencies.length);
    for (const run of throughput?.runs ?? []) expectNumbers(run, run.label);
    expectNumbers(throughput?.shortQueue?.worker, 'short queue, worker');
    expectNumbers(throughput?.shortQueue?.baseline, 'short queue, baseline');
    expect(throughput?.shortQueue?.worker.completed).toBe(
      report.plan.throughput.shortQueue?.clicks,
    );
    expectNumbers(quota?.worker, 'quota, worker');
    expectNumbers(quota?.baseline, 'quota, baseline');
    expect(positive(quota?.worker.clipdrop.calls), 'quota, worker: ClipDrop calls').toBe(true);
    expectNumbers(memory?.worker, 'memory, worker');
    const fleet = report.scenarios.fleet;
    expect(fleet?.runs.map((r) => r.replicas)).toEqual(report.plan.fleet.replicas);
    for (const run of fleet?.runs ?? []) {
      expect(run.completed, `fleet, ${run.replicas} replicas`).toBe(run.clicks);
      expect(positive(run.firestoreWritesPerJob), 'fleet: Firestore writes per job').toBe(true);
    }
    expectNumbers(memory?.small, 'memory, small pictures');
    expectNumbers(report.scenarios.slots?.worker, 'slots, worker');
    expectNumbers(report.scenarios.slots?.baseline, 'slots, notebook port');
    expect(positive(report.scenarios.slots?.shareOfBound), 'slots: share of the bound').toBe(true);
    const window = report.scenarios.window;
    expect(window?.runs.map((r) => r.replicas)).toEqual(report.plan.window.replicas);
    for (const run of window?.runs ?? []) {
      expect(run.completed, `window, ${run.replicas} replicas`).toBe(run.clicks);
      expect(positive(run.spanS), `window, ${run.replicas} replicas: all complete after`).toBe(
        true,
      );
      expect(positive(run.idealS), `window, ${run.replicas} replicas: the ideal`).toBe(true);
    }
    const fairness = report.scenarios.fairness;
    expect(fairness?.bCompleteMs).toHaveLength(report.plan.fairness.bClicks);
    for (const ms of fairness?.bCompleteMs ?? []) expect(positive(ms), 'fairness: B').toBe(true);
    const dealing = report.scenarios.dealing;
    expect(dealing?.runs.map((r) => r.replicas)).toEqual(report.plan.dealing.replicas);
    for (const run of dealing?.runs ?? []) {
      expect(run.completed, `dealing, ${run.replicas} replicas`).toBe(run.clicks);
      // Every click is downloaded and claimed at least once: the counting sees them.
      expect(run.downloads.mean, `dealing, ${run.replicas}: downloads`).toBeGreaterThanOrEqual(1);
      expect(run.claimsWon.mean, `dealing, ${run.replicas}: claims won`).toBeGreaterThanOrEqual(1);
      expect(run.claimAttempts.mean).toBeGreaterThanOrEqual(run.claimsWon.mean);
    }
    expect(report.targets.length).toBeGreaterThan(0);
  });
});
