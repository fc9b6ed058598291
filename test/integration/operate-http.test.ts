import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../dev/free-port.js';
import { startTcpProxy, type TcpProxy } from '../../dev/tcp-proxy.js';
import { startHttpServer, type HttpServer } from '../../src/http/server.js';
import { characterPicture } from '../support/images.js';
import { BUCKET, startStack, type RunningWorker, type Stack } from '../support/stack.js';
import { statusOf, until, waitForDoc } from '../support/wait.js';
import { spawnWorker } from '../support/worker-process.js';

/** Polls an endpoint until it answers `status` (readiness has no event to await). */
async function untilStatus(url: string, status: number, timeoutMs = 30_000): Promise<unknown> {
  const deadline = Date.now() + timeoutMs;
  let last: number;
  for (;;) {
    const res = await fetch(url).catch(() => undefined);
    last = res?.status ?? 0;
    if (last === status) return res?.json();
    if (Date.now() > deadline) throw new Error(`${url} still answers ${last}, not ${status}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A sample's value in the text exposition format, 0 when absent. */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

const terminal = (d: FirebaseFirestore.DocumentData | undefined) =>
  statusOf(d) === 'complete' || statusOf(d) === 'failed';

describe('/healthz, /readyz and /metrics of a running worker', () => {
  let stack: Stack;
  let worker: RunningWorker;
  let server: HttpServer;
  const url = (path: string) => `http://127.0.0.1:${server.port}${path}`;
  const metrics = async () => (await fetch(url('/metrics'))).text();

  beforeAll(async () => {
    stack = await startStack();
    worker = await stack.startWorker();
    server = await startHttpServer({
      port: 0,
      health: worker.app.health,
      metrics: worker.app.metrics,
      log: worker.app.log,
    });
  });
  afterAll(async () => {
    await server?.close();
    await stack?.close();
  });

  it('is live at once and ready once the listener delivered its first snapshot', async () => {
    expect((await fetch(url('/healthz'))).status).toBe(200);
    await until(() => worker.app.health.listenerAttached, 30_000, 'the first snapshot');
    const res = await fetch(url('/readyz'));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ready: true });
  });

  it('moves the job counters, stage histograms and ClipDrop series after jobs', async () => {
    const before = await metrics();
    const complete = 'showcase_jobs_total{outcome="complete",code="none"}';
    const rejected = 'showcase_jobs_total{outcome="failed",code="CLIPDROP_REJECTED"}';
    const upscaled = 'showcase_stage_duration_seconds_count{stage="upscaling"}';
    const calls = 'showcase_clipdrop_calls_total{endpoint="remove-background",status="200"}';
    const picked = 'showcase_pickup_lag_seconds_count';

    stack.storage.putObject(
      BUCKET,
      'raw-uploads/user-1/m-ok.png',
      await characterPicture(40, 40, 'png', 7),
    );
    await stack.click('m-ok');
    await waitForDoc(stack.db, 'characters/m-ok', terminal);
    stack.storage.putObject(
      BUCKET,
      'raw-uploads/user-1/m-bad.png',
      await characterPicture(40, 40, 'png', 8),
    );
    stack.clipdrop.injectFaults({ kind: 'status', status: 400, endpoint: 'removeBackground' });
    await stack.click('m-bad');
    await waitForDoc(stack.db, 'characters/m-bad', terminal);
    await until(() => worker.outcomes.length >= 2, 10_000, 'both outcomes');

    const after = await metrics();
    expect(sample(after, complete) - sample(before, complete)).toBe(1);
    expect(sample(after, rejected) - sample(before, rejected)).toBe(1);
    expect(sample(after, upscaled) - sample(before, upscaled)).toBe(1);
    expect(sample(after, calls) - sample(before, calls)).toBe(1);
    expect(sample(after, picked) - sample(before, picked)).toBe(2);
    expect(sample(after, 'showcase_clipdrop_credits_remaining')).toBeGreaterThan(0);
    expect(sample(after, 'showcase_jobs_in_flight')).toBe(0);
  });

  it('logs one JSON line per job with the fields log drains index', () => {
    const lines = worker.logs.map((l) => JSON.parse(l) as Record<string, unknown>);
    const finished = lines.find((l) => l.message === 'job.finished' && l.characterId === 'm-bad');
    expect(finished).toMatchObject({
      level: 'warn',
      outcome: 'failed',
      code: 'CLIPDROP_REJECTED',
    });
    expect(typeof finished?.durationMs).toBe('number');
    expect(typeof finished?.timestamp).toBe('string');
    const failed = lines.find((l) => l.message === 'job.failed' && l.characterId === 'm-bad');
    expect(failed).toMatchObject({ stage: 'removing-background', code: 'CLIPDROP_REJECTED' });
    const ok = lines.find((l) => l.message === 'job.finished' && l.characterId === 'm-ok');
    expect(ok).toMatchObject({ level: 'info', outcome: 'complete' });
  });

  it('answers 503 on /readyz once shutdown begins', async () => {
    const stopping = worker.stop();
    const res = await fetch(url('/readyz'));
    expect(res.status).toBe(503);
    const body = (await res.json()) as { reasons: string[] };
    expect(body.reasons).toContain('shutting down');
    await stopping;
    expect((await fetch(url('/healthz'))).status).toBe(200);
  });
});

describe('/readyz when the worker loses Firestore', () => {
  let stack: Stack;
  let proxy: TcpProxy;
  let server: HttpServer;

  beforeAll(async () => {
    stack = await startStack();
    const [host = '', port = ''] = stack.emulatorHost.split(':');
    proxy = await startTcpProxy({ host, port: Number(port) });
  });
  afterAll(async () => {
    await server?.close();
    await stack?.close();
    await proxy?.close();
  });

  it('answers 503 while the connection is cut and 200 again once it is back', async () => {
    // A short lease: the sweep (every lease/2) proves Firestore answers, or not, within seconds.
    const worker = await stack.startWorker({
      FIRESTORE_EMULATOR_HOST: proxy.host,
      LEASE_MS: '2000',
    });
    server = await startHttpServer({
      port: 0,
      health: worker.app.health,
      metrics: worker.app.metrics,
      log: worker.app.log,
    });
    const readyz = `http://127.0.0.1:${server.port}/readyz`;
    await untilStatus(readyz, 200);

    await proxy.cut();
    const body = (await untilStatus(readyz, 503)) as { reasons: string[] };
    expect(body.reasons.join()).toMatch(/Firestore has not answered for \d+ ms/);

    await proxy.restore();
    await untilStatus(readyz, 200, 50_000);
  }, 70_000);
});

describe('the HTTP server of the worker process (PORT set)', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('serves the endpoints, and answers 503 on /readyz while draining after SIGTERM', async () => {
    const port = await freePort();
    const proc = spawnWorker({ ...stack.env, PORT: String(port), SHUTDOWN_TIMEOUT_MS: '3000' });
    const url = (path: string) => `http://127.0.0.1:${port}${path}`;
    try {
      await proc.waitForLog((l) => l.message === 'http.listening');
      expect((await fetch(url('/healthz'))).status).toBe(200);
      await untilStatus(url('/readyz'), 200);
      const text = await (await fetch(url('/metrics'))).text();
      expect(text).toContain('# TYPE showcase_jobs_total counter');
      expect(text).toContain('process_resident_memory_bytes');

      // A job that hangs in ClipDrop keeps the worker draining after SIGTERM.
      stack.storage.putObject(BUCKET, 'raw-uploads/user-1/drain-1.png', await characterPicture());
      stack.clipdrop.injectFaults({ kind: 'hang', endpoint: 'removeBackground' });
      await stack.click('drain-1');
      await until(() => stack.clipdrop.stats.faultsApplied.hang === 1, 30_000, 'the hanging call');
      proc.kill('SIGTERM');
      await proc.waitForLog((l) => l.message === 'worker.stopping');
      const res = await fetch(url('/readyz'));
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ reasons: ['shutting down'] });
      expect((await fetch(url('/healthz'))).status).toBe(200);
      expect(await proc.exited).toEqual({ code: 0, signal: null });
    } finally {
      proc.kill('SIGKILL');
    }
  });
});
