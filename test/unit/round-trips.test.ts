import { describe, expect, it } from 'vitest';
import { RoundTripCounter, countTrip } from '../../src/jobs/round-trips.js';

describe('RoundTripCounter', () => {
  it('counts requests one after another as one each', () => {
    const trips = new RoundTripCounter();
    for (let i = 0; i < 3; i += 1) trips.begin()();
    expect({ sequential: trips.sequential, total: trips.total }).toEqual({
      sequential: 3,
      total: 3,
    });
  });

  it('counts requests started while another is in flight once, whatever order they end in', () => {
    const trips = new RoundTripCounter();
    const a = trips.begin();
    const b = trips.begin();
    a();
    const c = trips.begin(); // b still in flight: overlaps it
    b();
    c();
    trips.begin()(); // nothing in flight: a new wait
    expect({ sequential: trips.sequential, total: trips.total }).toEqual({
      sequential: 2,
      total: 4,
    });
  });

  it('ending a request twice does not end another one', () => {
    const trips = new RoundTripCounter();
    const a = trips.begin();
    trips.begin();
    a();
    a();
    trips.begin(); // the second is still in flight
    expect(trips.sequential).toBe(1);
  });

  it('countTrip ends the request when the call fails, and counts nothing without a counter', async () => {
    const trips = new RoundTripCounter();
    await expect(countTrip(trips, () => Promise.reject(new Error('x')))).rejects.toThrow('x');
    await countTrip(trips, () => Promise.resolve());
    expect(trips.sequential).toBe(2);
    await expect(countTrip(undefined, () => Promise.resolve(7))).resolves.toBe(7);
  });
});
