import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startHttpServer, type HttpServer } from '../../src/http/server.js';
import type { HealthState } from '../../src/observability/health.js';
import { createMetrics, type WorkerMetrics } from '../../src/observability/metrics.js';
import { recordingLog } from './fakes.js';

/** The server over real HTTP, with the worker's state injected. */
describe('the HTTP server', () => {
  let server: HttpServer;
  let metrics: WorkerMetrics;
  let inFlight = 0;
  const health: HealthState = {
    lastSnapshotAt: 0,
    lastSweepAt: 0,
    listenerAttached: false,
    shuttingDown: false,
    staleAfterMs: 60_000,
  };
  const url = (path: string) => `http://127.0.0.1:${server.port}${path}`;

  beforeAll(async () => {
    metrics = createMetrics({ jobsInFlight: () => inFlight });
    server = await startHttpServer({ port: 0, health, metrics, log: recordingLog() });
  });
  afterAll(async () => {
    await server?.close();
  });
  beforeEach(() => {
    Object.assign(health, {
      lastSnapshotAt: Date.now(),
      lastSweepAt: Date.now(),
      listenerAttached: true,
      shuttingDown: false,
    });
  });

  it('/healthz answers 200 whatever the readiness', async () => {
    health.shuttingDown = true;
    health.listenerAttached = false;
    const res = await fetch(url('/healthz'));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('/readyz answers 200 when the listener is attached and Firestore answered', async () => {
    const res = await fetch(url('/readyz'));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ready', ready: true, reasons: [] });
  });

  it('/readyz answers 503 while shutting down', async () => {
    health.shuttingDown = true;
    const res = await fetch(url('/readyz'));
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ ready: false, reasons: ['shutting down'] });
  });

  it('/readyz answers 503 while the listener is detached, and 200 once it is back', async () => {
    health.listenerAttached = false;
    const detached = await fetch(url('/readyz'));
    expect(detached.status).toBe(503);
    expect(await detached.json()).toMatchObject({ reasons: ['Firestore listener not attached'] });
    health.listenerAttached = true;
    expect((await fetch(url('/readyz'))).status).toBe(200);
  });

  it('/readyz answers 503 when Firestore has not answered within the window', async () => {
    health.lastSnapshotAt = Date.now() - 120_000;
    health.lastSweepAt = Date.now() - 90_000;
    const res = await fetch(url('/readyz'));
    expect(res.status).toBe(503);
    const body = (await res.json()) as { reasons: string[] };
    expect(body.reasons[0]).toMatch(/^Firestore has not answered for \d+ ms$/);
  });

  it('/metrics serves the Prometheus text format with the worker and process series', async () => {
    inFlight = 2;
    metrics.jobFinished({
      characterId: 'c1',
      kind: 'failed',
      code: 'SOURCE_NOT_FOUND',
      durationMs: 40,
    });
    metrics.clipdropCall({
      endpoint: 'upscale',
      status: 429,
      durationMs: 12,
      creditsConsumed: 0,
      remainingCredits: undefined,
    });
    metrics.setPaused(true);
    metrics.unhandledRejection();
    const res = await fetch(url('/metrics'));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(text).toContain('showcase_jobs_total{outcome="failed",code="SOURCE_NOT_FOUND"} 1');
    expect(text).toContain('showcase_jobs_in_flight 2');
    expect(text).toContain('showcase_clipdrop_calls_total{endpoint="upscale",status="429"} 1');
    expect(text).toContain('showcase_worker_paused 1');
    expect(text).toContain('showcase_unhandled_rejections_total 1');
    expect(text).toContain('showcase_listener_reconnects_total 0');
    // No balance reported yet: the series is absent rather than a misleading 0.
    expect(text).not.toContain('showcase_clipdrop_credits_remaining');
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).toContain('nodejs_eventloop_lag_seconds');
    metrics.setPaused(false);
    expect(await (await fetch(url('/metrics'))).text()).toContain('showcase_worker_paused 0');
  });

  it('answers HEAD without a body, 405 to other methods and 404 elsewhere', async () => {
    const head = await fetch(url('/readyz'), { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    const post = await fetch(url('/metrics'), { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    expect((await fetch(url('/'))).status).toBe(404);
  });
});
