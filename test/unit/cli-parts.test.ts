import { afterEach, describe, expect, it, vi } from 'vitest';
import { parse, positiveInt, sinceInstant } from '../../src/cli/args.js';
import { needsShowcase } from '../../src/cli/backfill.js';
import { leaseCheck, sharedPathsCheck } from '../../src/cli/doctor.js';
import type { Config } from '../../src/config/load.js';
import { limitOpt } from '../../src/cli/limit.js';
import { MAX_DAILY_LIMIT } from '../../src/jobs/user-limits.js';
import { UsageError } from '../../src/cli/exit-codes.js';
import type { CliIo } from '../../src/cli/io.js';
import { clicksPerMinute, createPacer } from '../../src/cli/pace.js';
import { createProgress, formatDuration } from '../../src/cli/progress.js';

const NOW = Date.parse('2025-06-15T12:00:00Z');

describe('--since', () => {
  it('reads durations back from now', () => {
    expect(sinceInstant('90s', NOW)).toBe(NOW - 90_000);
    expect(sinceInstant('30m', NOW)).toBe(NOW - 1_800_000);
    expect(sinceInstant('24h', NOW)).toBe(NOW - 86_400_000);
    expect(sinceInstant('7d', NOW)).toBe(NOW - 7 * 86_400_000);
    expect(sinceInstant('2w', NOW)).toBe(NOW - 14 * 86_400_000);
  });

  it('reads ISO dates', () => {
    expect(sinceInstant('2025-01-31', NOW)).toBe(Date.parse('2025-01-31'));
    expect(sinceInstant('2025-01-31T08:30:00Z', NOW)).toBe(Date.parse('2025-01-31T08:30:00Z'));
  });

  it.each(['yesterday', '24', 'h', '-3h', '2025-13-45'])('refuses %s as a usage error', (value) => {
    expect(() => sinceInstant(value, NOW)).toThrow(UsageError);
  });
});

describe('limit --daily / --active', () => {
  it('takes a whole number or "default"; a daily limit no day document could list is refused', () => {
    expect(limitOpt('250', '--daily', 'dailyJobs')).toBe(250);
    expect(limitOpt('default', '--daily', 'dailyJobs')).toBe('default');
    expect(limitOpt(String(MAX_DAILY_LIMIT), '--daily', 'dailyJobs')).toBe(10_000);
    expect(() => limitOpt('10001', '--daily', 'dailyJobs')).toThrow(
      /^--daily must be at most 10000; for more, 0 \(no limit\)$/,
    );
    expect(limitOpt('50000', '--active', 'maxActive')).toBe(50_000);
    expect(() => limitOpt('-1', '--active', 'maxActive')).toThrow(UsageError);
    expect(limitOpt(undefined, '--active', 'maxActive')).toBeUndefined();
  });
});

describe('options', () => {
  it('turns unknown options and bad numbers into usage errors', () => {
    expect(() => parse(['--nope'], {})).toThrow(UsageError);
    expect(() => positiveInt('0', '--limit')).toThrow(/--limit must be a whole number/);
    expect(() => positiveInt('2.5', '--limit')).toThrow(UsageError);
    expect(positiveInt('25', '--limit')).toBe(25);
    expect(positiveInt(undefined, '--limit')).toBeUndefined();
    expect(parse(['a', '--limit', '3', '-h'], { limit: { type: 'string' } })).toEqual({
      values: { limit: '3', help: true },
      positionals: ['a'],
    });
  });
});

describe('the pace of clicks', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('spends the ClipDrop quota on two calls a job, unless told otherwise', () => {
    expect(clicksPerMinute(60)).toBe(30);
    expect(clicksPerMinute(1)).toBe(1);
    expect(clicksPerMinute(60, 5)).toBe(5);
  });

  it('lets the first click through at once and spaces the next ones', async () => {
    vi.useFakeTimers({ now: NOW });
    const turn = createPacer(2_000, new AbortController().signal);
    expect(await turn()).toBe(true);
    let second = false;
    void turn().then(() => (second = true));
    await vi.advanceTimersByTimeAsync(1_999);
    expect(second).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(second).toBe(true);
  });

  it('stops waiting when interrupted', async () => {
    vi.useFakeTimers({ now: NOW });
    const ctrl = new AbortController();
    const turn = createPacer(60_000, ctrl.signal);
    await turn();
    const waiting = turn();
    ctrl.abort();
    expect(await waiting).toBe(false);
    expect(await turn()).toBe(false);
  });
});

describe('backfill candidates', () => {
  const image = 'gs://b/raw-uploads/u/c.png';
  it('are characters with an image that were never requested nor processed', () => {
    expect(needsShowcase({ imageUrl: image })).toBe(true);
    expect(needsShowcase({ imageUrl: image, showcaseProcessingStatus: null })).toBe(true);
    expect(needsShowcase({ imageUrl: '  ' })).toBe(false);
    expect(needsShowcase({})).toBe(false);
    expect(needsShowcase({ imageUrl: image, showcaseProcessingStatus: 'failed' })).toBe(false);
    expect(needsShowcase({ imageUrl: image, showcaseProcessingStatus: 'upscaling' })).toBe(false);
    expect(needsShowcase({ imageUrl: image, isShowcaseProcessed: true })).toBe(false);
    expect(needsShowcase({ imageUrl: image, showcaseImageUrl: 'https://x/y.png' })).toBe(false);
  });
});

describe('progress', () => {
  function io(isTTY: boolean) {
    let text = '';
    const target: CliIo = {
      out: (line) => (text += `${line}\n`),
      err: () => undefined,
      write: (t) => (text += t),
      isTTY,
      env: {},
      signal: new AbortController().signal,
    };
    return { target, text: () => text };
  }

  it('draws a bar in place on a terminal', () => {
    const { target, text } = io(true);
    const progress = createProgress(target, 4, { intervalMs: 30_000, verb: 'clicked' });
    progress.tick('a enqueued');
    expect(text()).toBe(
      `\r\x1b[2K[${'#'.repeat(6)}${'.'.repeat(18)}] 1/4  25%  eta 1m30s  a enqueued`,
    );
    progress.tick('b enqueued');
    progress.done();
    expect(text().endsWith('2/4  50%  eta 1m0s  b enqueued\n')).toBe(true);
  });

  it('writes plain lines elsewhere', () => {
    const { target, text } = io(false);
    const progress = createProgress(target, 2, { intervalMs: 1_000, verb: 'clicked' });
    progress.tick('a enqueued');
    progress.tick('b skipped: in progress (upscaling)');
    progress.done();
    expect(text()).toBe('clicked 1/2 a enqueued\nclicked 2/2 b skipped: in progress (upscaling)\n');
  });

  it('formats durations for humans', () => {
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(950)).toBe('1s');
    expect(formatDuration(80_000)).toBe('1m20s');
    expect(formatDuration(7_260_000)).toBe('2h1m');
  });
});

describe('doctor’s lease check', () => {
  const config = (
    leaseMs: number,
    presenceTimeoutMs: number,
    env: Config['env'] = 'production',
  ) => ({
    env,
    worker: { leaseMs } as Config['worker'],
    fleet: { presenceTimeoutMs } as Config['fleet'],
  });

  it('warns when the job lease is shorter than the presence timeout, and says what to set', () => {
    const check = leaseCheck(config(10_000, 15_000));
    expect(check).toMatchObject({ verdict: 'warn', name: 'lease' });
    expect(check?.fix).toMatch(/LEASE_MS to at least 15000/);
  });

  it('says nothing when the lease is at least the presence timeout (the defaults: 60 s and 15 s)', () => {
    expect(leaseCheck(config(60_000, 15_000))).toBeUndefined();
    expect(leaseCheck(config(15_000, 15_000))).toBeUndefined();
  });

  it('says nothing outside production, whose configs shorten the lease on purpose', () => {
    expect(leaseCheck(config(10_000, 15_000, 'test'))).toBeUndefined();
  });
});

describe('doctor’s shared source paths check', () => {
  const config = (...gsPaths: string[]) => ({
    source: { gsPaths, allowSharedGsPaths: true } as unknown as Config['source'],
  });

  it('warns about each SOURCE_GS_PATHS pattern that names no owner', () => {
    const check = sharedPathsCheck(config('raw-uploads/{userId}/**', 'public/**', '**'));
    expect(check).toMatchObject({ verdict: 'warn', name: 'sources' });
    expect(check?.detail).toContain('SOURCE_GS_PATHS public/**, **');
    expect(check?.detail).toContain('SOURCE_GS_ALLOW_SHARED_PATHS=true');
    expect(check?.detail).not.toContain('raw-uploads');
  });

  it('says nothing when every pattern is bound to the owner (the default)', () => {
    expect(sharedPathsCheck(config('raw-uploads/{userId}/**', 'avatars/{userId}/*'))).toBe(
      undefined,
    );
  });
});
