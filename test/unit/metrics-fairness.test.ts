import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/observability/metrics.js';
import { combineTelemetry } from '../../src/observability/telemetry.js';

const line = (body: string, series: string) =>
  body.split('\n').find((l) => l.startsWith(series + ' ') || l.startsWith(series + '{'));

describe('per-user metrics', () => {
  it('count refusals by limit, from zero, through combined telemetry', async () => {
    const metrics = createMetrics({ jobsInFlight: () => 0, processMetrics: false });
    const before = (await metrics.render()).body;
    expect(line(before, 'showcase_user_limit_hits_total{limit="daily"}')).toMatch(/ 0$/);
    expect(line(before, 'showcase_user_limit_hits_total{limit="active"}')).toMatch(/ 0$/);

    const telemetry = combineTelemetry(metrics);
    telemetry.userLimitHit?.('daily');
    telemetry.userLimitHit?.('daily');
    telemetry.userLimitHit?.('active');
    const after = (await metrics.render()).body;
    expect(line(after, 'showcase_user_limit_hits_total{limit="daily"}')).toMatch(/ 2$/);
    expect(line(after, 'showcase_user_limit_hits_total{limit="active"}')).toMatch(/ 1$/);
  });

  it('report the deepest per-user queue as last set', async () => {
    const metrics = createMetrics({ jobsInFlight: () => 0, processMetrics: false });
    expect(line((await metrics.render()).body, 'showcase_user_queue_depth_max')).toMatch(/ 0$/);
    metrics.setDeepestUserQueue(37);
    expect(line((await metrics.render()).body, 'showcase_user_queue_depth_max')).toMatch(/ 37$/);
  });
});
