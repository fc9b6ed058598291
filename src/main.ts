import { ConfigError, loadConfig } from './config/load.js';
import { composeWorker, configureSharp, tuneHeap } from './compose.js';
import { startHttpServer, type HttpServer } from './http/server.js';
import { flushLogger } from './log/logger.js';

/**
 * Entry point of the worker dyno: config → adapters → pipeline → signals.
 * Exit codes: 0 clean stop, 1 fatal (listener gave up, PORT unusable), 2 bad configuration.
 */
function main(): void {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  // The SDKs read emulator hosts from the environment; config is the source of truth.
  if (config.firebase.storageEmulatorHost) {
    process.env.FIREBASE_STORAGE_EMULATOR_HOST = config.firebase.storageEmulatorHost;
  }
  configureSharp();
  tuneHeap(config.worker.heapGrowingPercent);
  const app = composeWorker(config);
  const { log } = app;
  let http: HttpServer | undefined;

  let stopping: Promise<void> | undefined;
  const stop = (reason: string, exitCode: number): Promise<void> => {
    stopping ??= (async () => {
      log.info('worker.stopping', { reason, deadlineMs: config.worker.shutdownTimeoutMs });
      const { drained, released } = await app.shutdown();
      log.info('worker.stopped', { reason, drained, released });
      // Served until now, so the platform saw /readyz answer 503 while the worker drained.
      await http?.close();
      await flushLogger(log);
      process.exit(exitCode);
    })();
    return stopping;
  };

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      // A second signal means "now": the platform or the operator has stopped waiting.
      if (stopping) process.exit(130);
      void stop(signal, 0);
    });
  }
  process.on('unhandledRejection', (reason) => {
    app.metrics.unhandledRejection();
    log.error('process.unhandled_rejection', { detail: String(reason) });
  });

  app.worker.start((err) => {
    log.error('worker.fatal', { detail: String(err) });
    void stop('fatal', 1);
  });
  log.info('worker.started', {
    workerId: config.worker.id,
    concurrency: config.worker.concurrency,
    collection: config.firebase.collection,
    projectId: config.firebase.projectId,
    bucket: config.firebase.storageBucket,
    emulators: Boolean(config.firebase.firestoreEmulatorHost),
  });
  if (config.http.port > 0) {
    startHttpServer({ port: config.http.port, health: app.health, metrics: app.metrics, log })
      .then((server) => {
        http = server;
        log.info('http.listening', {
          port: server.port,
          paths: ['/healthz', '/readyz', '/metrics'],
        });
      })
      .catch((err: unknown) => {
        log.error('http.listen_failed', { port: config.http.port, detail: String(err) });
        void stop('http', 1);
      });
  }
}

main();
