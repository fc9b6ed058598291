import type { ClipdropStandin } from '../../dev/clipdrop-standin.js';
import type { MemoClipdrop } from './memo-clipdrop.js';
import type { ClipdropHandle } from './run-target.js';

export function standinHandle(standin: ClipdropStandin): ClipdropHandle {
  return {
    url: standin.url,
    counters: () => ({
      calls: standin.stats.calls.removeBackground + standin.stats.calls.upscale,
      responses: { ...standin.stats.responses },
      maxInFlight: standin.stats.maxInFlight,
    }),
    reset: () => standin.reset(),
  };
}

export function memoHandle(memo: MemoClipdrop, behind: ClipdropStandin): ClipdropHandle {
  return {
    url: memo.url,
    counters: () => ({
      calls: memo.stats.calls,
      responses: { ...memo.stats.responses },
      maxInFlight: memo.stats.maxInFlight,
    }),
    reset: () => {
      memo.reset();
      behind.reset();
    },
  };
}
