import type { ConsoleState } from '../../src/console/state.js';

/** A console state with nothing in it at `serverNow`, but for what `partial` sets. */
export function consoleState(serverNow: number, partial: Partial<ConsoleState> = {}): ConsoleState {
  return {
    serverNow,
    readOnly: false,
    rpm: 60,
    fleet: { workers: [], leader: null },
    intake: null,
    spend: null,
    queue: {
      counts: null,
      countedAt: null,
      hourly: null,
      users: [],
      running: 0,
      waiting: 0,
      truncated: false,
    },
    active: [],
    finished: [],
    failures: { windowHours: 24, byCode: [], items: [], truncated: false },
    ...partial,
  };
}
