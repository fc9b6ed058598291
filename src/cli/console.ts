import { loadConfig } from '../config/load.js';
import { ConsoleTokenMissingError, startConsole } from '../console/main.js';
import { positiveInt } from './args.js';
import type { Command } from './command.js';
import { EXIT } from './exit-codes.js';

export const consoleCommand: Command = {
  name: 'console',
  summary: 'serve the operator console (the web process)',
  help: `Usage: showcase-worker console [--port N]

Serves the operator console: the fleet, the queue, failures and each job, live, in a
browser (docs/console.md). It reads Firestore and never runs a job; its actions (retry) are
the operator's clicks. It does not start without CONSOLE_TOKEN, the secret that signs in.

It listens on every interface only where the platform gives PORT with NODE_ENV=production
(Heroku's web dyno, Render's web service); anywhere else on 127.0.0.1, on PORT or --port.
CONSOLE_READ_ONLY=true: no actions.

Options:
  --port N   the port when PORT is not set (default 8090)

Exit codes: 0 stopped (Ctrl-C or SIGTERM); 2 invalid configuration or no CONSOLE_TOKEN;
3 the port is taken or Firestore failed; 64 bad option.`,
  options: { port: { type: 'string' } },
  async run({ values }, io) {
    const port = values.port === '0' ? 0 : (positiveInt(values.port, '--port') ?? 8090);
    const config = loadConfig({
      env: io.env,
      role: 'console',
      ...(io.configDir ? { configDir: io.configDir } : {}),
    });
    let running;
    try {
      running = await startConsole(config, { port });
    } catch (err) {
      if (err instanceof ConsoleTokenMissingError) {
        io.err(err.message);
        return EXIT.CONFIG;
      }
      throw err;
    }
    io.out(`console: ${running.url}`);
    await new Promise<void>((resolve) => {
      if (io.signal.aborted) resolve();
      io.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    await running.close();
    return EXIT.OK;
  },
};
