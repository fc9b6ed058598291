/**
 * Round trips to Google (Firestore RPCs, Cloud Storage HTTP requests) made for one job.
 *
 * `total` counts every request. `sequential` counts the ones the job had to wait for one
 * after another: a request that begins while another of the job's Google requests is still in
 * flight overlaps it and adds no wait of its own, so it is not counted again. A chain of
 * requests each started after the previous one ended counts one per request. ClipDrop calls
 * and local image work are not Google requests and never count.
 */
export class RoundTripCounter {
  private inFlight = 0;
  private seq = 0;
  private all = 0;

  /** Marks one request as started; call the returned function once it has ended (any outcome). */
  begin(): () => void {
    if (this.inFlight === 0) this.seq += 1;
    this.inFlight += 1;
    this.all += 1;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.inFlight -= 1;
    };
  }

  /** Requests the job waited for one after another (see the class comment). */
  get sequential(): number {
    return this.seq;
  }

  /** No request in flight now: the next one to begin adds a sequential round trip. */
  get idle(): boolean {
    return this.inFlight === 0;
  }

  /** Every request, parallel ones included. */
  get total(): number {
    return this.all;
  }
}

/** Runs `call`, its requests counted as one round trip on `trips` (when given). */
export async function countTrip<T>(
  trips: RoundTripCounter | undefined,
  call: () => Promise<T>,
): Promise<T> {
  const end = trips?.begin();
  try {
    return await call();
  } finally {
    end?.();
  }
}
