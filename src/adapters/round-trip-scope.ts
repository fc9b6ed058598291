import { AsyncLocalStorage } from 'node:async_hooks';
import { countTrip, type RoundTripCounter } from '../jobs/round-trips.js';
import type { RoundTripScope } from '../jobs/ports.js';

const current = new AsyncLocalStorage<RoundTripCounter>();

/** The pipeline's side: each call of a job runs with that job's counter. */
export const roundTripScope: RoundTripScope = {
  run: (trips, call) => current.run(trips, call),
  report: (trips) => ({ sequential: trips.sequential, total: trips.total }),
};

/**
 * The adapters' side: the counter of the job this call runs for, read synchronously at the
 * start of the adapter method (undefined outside a job: CLI, sweep, tests of one adapter).
 */
export function jobTrips(): RoundTripCounter | undefined {
  return current.getStore();
}

/** One Google request of the current job, counted while it is in flight. */
export function googleRequest<T>(call: () => Promise<T>): Promise<T> {
  return countTrip(jobTrips(), call);
}
