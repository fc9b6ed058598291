import { describe, expect, it } from 'vitest';
import { PixelGate } from '../../src/image/pixel-gate.js';
import { deferred, settle, type Deferred } from './fakes.js';

/** Starts `pixels`-sized work on the gate; it runs until its deferred is resolved. */
function start(gate: PixelGate, log: string[], name: string, pixels: number) {
  const done: Deferred<void> = deferred();
  const result = gate.run(pixels, () => {
    log.push(`start ${name}`);
    return done.promise.then(() => {
      log.push(`end ${name}`);
      return name;
    });
  });
  return { done, result };
}

describe('PixelGate', () => {
  it('runs work side by side while it fits the budget', async () => {
    const gate = new PixelGate(100);
    const log: string[] = [];
    const a = start(gate, log, 'a', 40);
    const b = start(gate, log, 'b', 60);
    await settle();
    expect(log).toEqual(['start a', 'start b']);
    expect(gate.pixelsInUse).toBe(100);
    a.done.resolve();
    b.done.resolve();
    expect(await Promise.all([a.result, b.result])).toEqual(['a', 'b']);
    expect(gate.pixelsInUse).toBe(0);
  });

  it('makes work over the budget wait, first come first served', async () => {
    const gate = new PixelGate(100);
    const log: string[] = [];
    const big = start(gate, log, 'big', 90);
    const second = start(gate, log, 'second', 50);
    const small = start(gate, log, 'small', 5); // fits, but must not overtake `second`
    await settle();
    expect(log).toEqual(['start big']);
    big.done.resolve();
    await settle();
    expect(log).toEqual(['start big', 'end big', 'start second', 'start small']);
    second.done.resolve();
    small.done.resolve();
    await Promise.all([second.result, small.result]);
  });

  it('always admits one piece of work, however large', async () => {
    const gate = new PixelGate(10);
    const log: string[] = [];
    const huge = start(gate, log, 'huge', 1_000);
    const next = start(gate, log, 'next', 1);
    await settle();
    expect(log).toEqual(['start huge']);
    huge.done.resolve();
    next.done.resolve();
    await Promise.all([huge.result, next.result]);
    expect(log).toEqual(['start huge', 'end huge', 'start next', 'end next']);
  });

  it('gives the pixels back when the work fails', async () => {
    const gate = new PixelGate(10);
    await expect(gate.run(10, () => Promise.reject(new Error('decode failed')))).rejects.toThrow(
      'decode failed',
    );
    expect(gate.pixelsInUse).toBe(0);
    expect(await gate.run(10, () => Promise.resolve('ok'))).toBe('ok');
  });
});
