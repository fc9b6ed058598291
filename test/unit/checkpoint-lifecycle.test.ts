import { describe, expect, it } from 'vitest';
import {
  CHECKPOINT_LIFECYCLE,
  checkpointExpiryDays,
} from '../../src/adapters/storage/work-cache.js';

const rule = (type: string, condition: Record<string, unknown>) => ({
  action: { type },
  condition,
});

describe('checkpointExpiryDays (doctor: leftover checkpoints expire)', () => {
  it('finds the documented rule', () => {
    expect(checkpointExpiryDays({ lifecycle: CHECKPOINT_LIFECYCLE })).toBe(1);
  });

  it('accepts a broader prefix or none, and takes the shortest age', () => {
    const lifecycle = {
      rule: [rule('Delete', { age: 7, matchesPrefix: ['showcase-'] }), rule('Delete', { age: 3 })],
    };
    expect(checkpointExpiryDays({ lifecycle })).toBe(3);
  });

  it('ignores rules that do not delete checkpoints', () => {
    const lifecycle = {
      rule: [
        rule('Delete', { age: 1, matchesPrefix: ['showcase-cache/'] }),
        rule('SetStorageClass', { age: 1, matchesPrefix: ['showcase-work/'] }),
        rule('Delete', { createdBefore: '2020-01-01', matchesPrefix: ['showcase-work/'] }),
      ],
    };
    expect(checkpointExpiryDays({ lifecycle })).toBeUndefined();
    expect(checkpointExpiryDays({})).toBeUndefined();
    expect(checkpointExpiryDays(undefined)).toBeUndefined();
  });
});
