import { describe, expect, it } from 'vitest';
import {
  dailyLimitMessage,
  nextUtcMidnight,
  MAX_DAILY_LIMIT,
  parseLimitSetting,
  parseOverride,
  resolveLimits,
  usageDocId,
  userIdProblem,
  utcDay,
  withinDailyLimit,
} from '../../src/jobs/user-limits.js';

const at = (iso: string) => Date.parse(iso);

describe('user limits policy', () => {
  it('counts a job in the UTC day of its click', () => {
    expect(utcDay(at('2026-11-28T23:59:59.999Z'))).toBe('2026-11-28');
    expect(utcDay(at('2026-11-29T00:00:00.000Z'))).toBe('2026-11-29');
  });

  it('resets at the next UTC midnight, also from exactly midnight', () => {
    expect(nextUtcMidnight(at('2026-11-28T13:05:00Z'))).toBe(at('2026-11-29T00:00:00Z'));
    expect(nextUtcMidnight(at('2026-11-29T00:00:00Z'))).toBe(at('2026-11-30T00:00:00Z'));
    expect(nextUtcMidnight(at('2026-12-31T23:00:00Z'))).toBe(at('2027-01-01T00:00:00Z'));
  });

  it('admits while under the limit; 0 is no limit', () => {
    expect(withinDailyLimit(4, 5)).toBe(true);
    expect(withinDailyLimit(5, 5)).toBe(false);
    expect(withinDailyLimit(10_000, 0)).toBe(true);
  });

  it('an override replaces only the limits it names', () => {
    const configured = { dailyJobs: 100, maxActive: 2 };
    expect(resolveLimits(configured)).toEqual(configured);
    expect(resolveLimits(configured, { dailyJobs: 500 })).toEqual({ dailyJobs: 500, maxActive: 2 });
    expect(resolveLimits(configured, { dailyJobs: 0, maxActive: 0 })).toEqual({
      dailyJobs: 0,
      maxActive: 0,
    });
  });

  it('reads only whole non-negative numbers from an override document', () => {
    expect(parseOverride(undefined)).toEqual({});
    expect(parseOverride({ dailyJobs: 250, maxActive: 3, note: 'partner' })).toEqual({
      dailyJobs: 250,
      maxActive: 3,
    });
    expect(parseOverride({ dailyJobs: '250', maxActive: -1 })).toEqual({});
    expect(parseOverride({ dailyJobs: 2.5, maxActive: Number.NaN })).toEqual({});
    expect(parseOverride({ dailyJobs: 0 })).toEqual({ dailyJobs: 0 });
    // More than a day document can list reads as no limit (no list kept), not as the number.
    expect(parseOverride({ dailyJobs: MAX_DAILY_LIMIT })).toEqual({ dailyJobs: MAX_DAILY_LIMIT });
    expect(parseOverride({ dailyJobs: MAX_DAILY_LIMIT + 1, maxActive: 50_000 })).toEqual({
      dailyJobs: 0,
      maxActive: 50_000,
    });
  });

  it('tells the user the limit and when it resets, and nothing else', () => {
    const message = dailyLimitMessage(5, at('2026-11-29T00:00:00Z'));
    expect(message).toBe(
      'You have reached your limit of 5 showcase jobs per day. It resets at 2026-11-29T00:00:00Z (midnight UTC).',
    );
    expect(dailyLimitMessage(1, at('2026-11-29T00:00:00Z'))).toContain('limit of 1 showcase job ');
  });

  it('names the usage documents by user and day', () => {
    expect(usageDocId.daily('u1', '2026-11-28')).toBe('day-2026-11-28-u1');
    expect(usageDocId.active('u1')).toBe('active-u1');
    expect(usageDocId.limits('u1')).toBe('limits-u1');
  });
});

describe("an operator's limit setting (the CLI's and the console's one rule)", () => {
  it('takes 0 (no limit) to the maximum, or default; the daily maximum is what a day document can list', () => {
    expect(parseLimitSetting('0', 'dailyJobs', 'daily jobs')).toEqual({ value: 0 });
    expect(parseLimitSetting('10000', 'dailyJobs', 'daily jobs')).toEqual({ value: 10_000 });
    expect(parseLimitSetting('default', 'maxActive', 'x')).toEqual({ value: 'default' });
    expect(parseLimitSetting('10001', 'dailyJobs', 'daily jobs')).toEqual({
      problem: 'daily jobs must be at most 10000; for more, 0 (no limit)',
    });
    // Jobs at once has no such cap.
    expect(parseLimitSetting('10001', 'maxActive', 'jobs at once')).toEqual({ value: 10_001 });
  });

  it.each(['-1', '2.5', '', ' 3', 'Default', 'none', '1e3'])(
    'refuses %j, naming the field',
    (text) => {
      expect(parseLimitSetting(text, 'maxActive', 'jobs at once')).toEqual({
        problem: `jobs at once must be a whole number (0 = no limit) or "default", not "${text}"`,
      });
    },
  );

  it('takes a user id that is one path segment of at most 128 characters', () => {
    expect(userIdProblem('user-1')).toBeUndefined();
    expect(userIdProblem('u'.repeat(128))).toBeUndefined();
    for (const bad of ['', '.', '..', 'a/b', 'u'.repeat(129)]) {
      expect(userIdProblem(bad), bad).toMatch(/is not a valid user id$/);
    }
  });
});
