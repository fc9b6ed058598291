import { describe, expect, it } from 'vitest';
import {
  cleanNote,
  MAX_NOTE,
  operatorPauseOf,
  OPEN_FLAG,
  parseIntakeFlag,
} from '../../src/jobs/intake-flag.js';
import { createIntakeSwitch } from '../../src/jobs/intake.js';

describe("the operator's intake flag", () => {
  it('pauses only on paused === true: a missing or mistyped document leaves intake open', () => {
    expect(parseIntakeFlag(undefined, 0)).toEqual(OPEN_FLAG);
    expect(parseIntakeFlag({ paused: 'yes' }, 5).paused).toBe(false);
    expect(parseIntakeFlag({ paused: 1 }, 5).paused).toBe(false);
    expect(parseIntakeFlag({ paused: true, by: 'cli', note: 'deploy' }, 7)).toEqual({
      paused: true,
      by: 'cli',
      at: 7,
      note: 'deploy',
    });
  });

  it("sets the switch's operator pause with who and why, and lifts it on resume", () => {
    const pauses = createIntakeSwitch();
    pauses.set(
      'operator',
      operatorPauseOf(parseIntakeFlag({ paused: true, by: 'cli', note: 'x' }, 9)),
    );
    expect(pauses.paused()).toEqual({
      reason: 'operator',
      since: 9,
      detail: 'paused by cli: x',
    });
    pauses.set('operator', operatorPauseOf(parseIntakeFlag({ paused: false, by: 'cli' }, 10)));
    expect(pauses.paused()).toBeUndefined();
  });

  it('keeps a note to one bounded line', () => {
    expect(cleanNote(' stop\nnow\t ')).toBe('stop now');
    expect(cleanNote('x'.repeat(500))).toHaveLength(MAX_NOTE);
    expect(cleanNote(undefined)).toBe('');
    expect(parseIntakeFlag({ paused: true, note: 'y'.repeat(500) }, 0).note).toHaveLength(MAX_NOTE);
  });
});
