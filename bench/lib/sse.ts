/**
 * A console page's live feed without a browser: the `/events` Server-Sent Events stream read
 * with fetch, each `state` event parsed and handed over with the local time it arrived.
 */
import type { ConsoleState } from '../../src/console/state.js';

export interface StateStream {
  /** Resolves with the first state (the latest, or one to come) that satisfies `match`, and when it came. */
  next(
    match: (s: ConsoleState) => boolean,
    timeoutMs: number,
  ): Promise<{ state: ConsoleState; at: number }>;
  /** The latest state received, if any. */
  latest(): ConsoleState | undefined;
  close(): void;
}

export async function openStateStream(base: string, token: string): Promise<StateStream> {
  const abort = new AbortController();
  const res = await fetch(new URL('/events', base), {
    headers: { authorization: `Bearer ${token}` },
    signal: abort.signal,
  });
  if (res.status !== 200 || !res.body) throw new Error(`/events answered ${res.status}`);
  let last: ConsoleState | undefined;
  let lastAt = 0;
  const waiters = new Set<(s: ConsoleState, at: number) => void>();
  void (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        const at = Date.now();
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const event = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = /^event: state\ndata: (.*)$/s.exec(event)?.[1];
          if (data === undefined) continue;
          last = JSON.parse(data) as ConsoleState;
          lastAt = at;
          for (const w of [...waiters]) w(last, at);
        }
      }
    } catch {
      // closed
    }
  })();
  return {
    next(match, timeoutMs) {
      return new Promise((resolve, reject) => {
        if (last && match(last)) return resolve({ state: last, at: lastAt });
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching console state within ${timeoutMs} ms`));
        }, timeoutMs);
        const check = (state: ConsoleState, at: number) => {
          if (!match(state)) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve({ state, at });
        };
        waiters.add(check);
      });
    },
    latest: () => last,
    close: () => abort.abort(),
  };
}

/** The console's `/metrics` counter of its Firestore reads, by source. */
export async function consoleReads(base: string, token: string): Promise<Record<string, number>> {
  const res = await fetch(new URL('/metrics', base), {
    headers: { authorization: `Bearer ${token}` },
  });
  const text = await res.text();
  const reads: Record<string, number> = {};
  for (const m of text.matchAll(
    /^showcase_console_firestore_reads_total\{source="([^"]+)"\} (\d+)$/gm,
  )) {
    reads[m[1]!] = Number(m[2]);
  }
  return reads;
}
