import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy for tests that need to cut a connection and restore it.
 *
 * - `cut()` destroys every open connection (both the client side and the
 *   upstream side) and closes the listener, so new connects fail with
 *   ECONNREFUSED until `restore()`.
 * - `restore()` listens again on the SAME port.
 * - `close()` is `cut()` for good; `restore()` is refused afterwards.
 */
export interface TcpProxy {
  /** The port the proxy listens on (stable across cut()/restore()). */
  readonly port: number;
  /** '127.0.0.1:PORT' */
  readonly host: string;
  /** Client connections currently open through the proxy. */
  readonly connections: number;
  /** Total client connections accepted since start (handy to prove traffic went through). */
  readonly accepted: number;
  /** Whether the proxy is currently listening (false between cut() and restore()). */
  readonly listening: boolean;
  cut(opts?: CutOptions): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export interface CutOptions {
  /**
   * 'reset' (default): abort both sides with a TCP RST (`socket.resetAndDestroy()`),
   * as when a peer crashes or a middlebox drops the flow.
   * 'close': a plain `socket.destroy()` (FIN).
   */
  mode?: 'reset' | 'close';
}

interface Pair {
  client: Socket;
  upstream: Socket;
}

const LOOPBACK = '127.0.0.1';

export async function startTcpProxy(
  target: { host: string; port: number },
  opts: { port?: number } = {},
): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  let server: Server | undefined;
  let closed = false;
  let accepted = 0;

  const onConnection = (client: Socket): void => {
    accepted++;
    client.setNoDelay(true);
    // Pause until the upstream is connected so no early bytes are lost.
    client.pause();
    const upstream = connect({ host: target.host, port: target.port });
    upstream.setNoDelay(true);
    const pair: Pair = { client, upstream };
    pairs.add(pair);

    let done = false;
    const teardown = (): void => {
      if (done) return;
      done = true;
      pairs.delete(pair);
      // A failure of either side ends the whole pair, like a real broken path.
      if (!client.destroyed) client.destroy();
      if (!upstream.destroyed) upstream.destroy();
    };

    upstream.once('connect', () => {
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
    client.on('error', teardown);
    upstream.on('error', teardown);
    client.once('close', teardown);
    upstream.once('close', teardown);
  };

  const listen = (port: number): Promise<Server> =>
    new Promise((resolve, reject) => {
      const s = createServer({ noDelay: true }, onConnection);
      const onError = (err: Error): void => reject(err);
      s.once('error', onError);
      s.listen({ host: LOOPBACK, port }, () => {
        s.off('error', onError);
        // Late errors (rare for a listening socket) must not crash the test run.
        s.on('error', () => undefined);
        resolve(s);
      });
    });

  // While cut, the port is free for anyone. Ports the OS hands out for `listen(0)` and
  // outgoing connections come from the ephemeral range (Linux 32768-60999, macOS and
  // Windows 49152-65535), so a port below it is much less likely to be taken by another
  // process (another test's server or emulator) before restore() rebinds it.
  const listenOutsideEphemeralRange = async (): Promise<Server> => {
    for (let i = 0; i < 50; i++) {
      const candidate = 20_000 + Math.floor(Math.random() * 12_000);
      try {
        return await listen(candidate);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
      }
    }
    return listen(0);
  };

  const destroyAll = (mode: 'reset' | 'close'): void => {
    for (const pair of [...pairs]) {
      pairs.delete(pair);
      for (const sock of [pair.client, pair.upstream]) {
        if (sock.destroyed) continue;
        // resetAndDestroy() needs a connected socket; fall back to destroy().
        if (mode === 'reset' && !sock.connecting && sock.readyState !== 'closed') {
          sock.resetAndDestroy();
        } else {
          sock.destroy();
        }
      }
    }
  };

  const closeServer = async (): Promise<void> => {
    const s = server;
    server = undefined;
    if (!s) return;
    await new Promise<void>((resolve) => s.close(() => resolve()));
  };

  server = opts.port !== undefined ? await listen(opts.port) : await listenOutsideEphemeralRange();
  const address = server.address();
  if (address === null || typeof address === 'string') {
    await closeServer();
    throw new Error(`startTcpProxy: unexpected server address ${String(address)}`);
  }
  const port = address.port;

  return {
    port,
    host: `${LOOPBACK}:${port}`,
    get connections() {
      return pairs.size;
    },
    get accepted() {
      return accepted;
    },
    get listening() {
      return server !== undefined;
    },
    async cut(cutOpts: CutOptions = {}) {
      // Stop accepting first, so nothing reconnects between destroy and close.
      const closing = closeServer();
      destroyAll(cutOpts.mode ?? 'reset');
      await closing;
    },
    async restore() {
      if (closed) throw new Error('TcpProxy.restore(): proxy is closed');
      if (server) return;
      try {
        server = await listen(port);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
          throw new Error(
            `TcpProxy.restore(): port ${port} was taken by another process while the proxy was cut`,
            { cause: err },
          );
        }
        throw err;
      }
    },
    async close() {
      closed = true;
      const closing = closeServer();
      destroyAll('close');
      await closing;
    },
  };
}
