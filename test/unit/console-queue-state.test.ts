import { describe, expect, it } from 'vitest';
import { deepestQueues, liveCounts, type JobRow } from '../../src/console/state.js';

const row = (userId: string, status: string, waiting: boolean): JobRow => ({
  id: `${userId}-${Math.random()}`,
  name: 'n',
  userId,
  status,
  owner: waiting ? null : 'w',
  attempts: 1,
  waiting,
  operator: false,
});

describe("the Queue's live numbers", () => {
  const counted = {
    'removing-background': 9,
    upscaling: 9,
    finalizing: 9,
    complete: 40,
    failed: 3,
  };

  it('takes the in-progress counts from a whole active list, the rest from the count queries', () => {
    const active = [
      row('a', 'removing-background', true),
      row('a', 'upscaling', false),
      row('b', 'upscaling', false),
    ];
    expect(liveCounts(counted, active, false)).toEqual({
      'removing-background': 1,
      upscaling: 2,
      finalizing: 0,
      complete: 40,
      failed: 3,
    });
  });

  it('keeps the count queries when the list is cut at its limit, or nothing is counted yet', () => {
    expect(liveCounts(counted, [row('a', 'upscaling', false)], true)).toEqual(counted);
    expect(liveCounts(null, [row('a', 'upscaling', false)], false)).toBeNull();
  });

  it('ranks owners by active jobs, then by waiting ones, and keeps the deepest few', () => {
    const active = [
      ...Array.from({ length: 3 }, () => row('carol', 'removing-background', true)),
      row('dan', 'upscaling', false),
      row('dan', 'removing-background', true),
      row('erin', 'upscaling', false),
      row('erin', 'finalizing', false),
      row('fay', 'removing-background', true),
    ];
    expect(deepestQueues(active, 3)).toEqual([
      { userId: 'carol', waiting: 3, running: 0 },
      { userId: 'dan', waiting: 1, running: 1 },
      { userId: 'erin', waiting: 0, running: 2 },
    ]);
    expect(deepestQueues([])).toEqual([]);
  });
});
