import type { IntakePause } from './intake.js';

/**
 * The operator's intake flag: `showcaseFleet/intake` (FLEET_COLLECTION), one document for the
 * whole fleet, `{ paused, by, at, note }`. While `paused` is true every worker holds the
 * `operator` pause of its intake switch (./intake.ts): nothing new is claimed, running jobs
 * and takeovers finish, the sweep goes on, nothing fails. Written by `showcase-worker intake`
 * and the console's Pause and Resume; workers follow it with a listener (docs/fleet.md).
 * A missing or unreadable document is an open intake: the flag only ever stops intake on
 * purpose.
 */

/** The flag's document id in the fleet collection. */
export const INTAKE_FLAG_DOC = 'intake';

export interface IntakeFlag {
  paused: boolean;
  /** Who set it last, for people: "cli", "console (session)", … */
  by: string;
  /** When it was set last (Firestore's commit time, ms epoch); 0 when never. */
  at: number;
  /** Why, in the operator's words (may be empty). */
  note: string;
}

export const OPEN_FLAG: IntakeFlag = { paused: false, by: '', at: 0, note: '' };

/** The longest note kept: it is shown in logs and on the console, not a document store. */
export const MAX_NOTE = 200;

/** The flag from the document's data (`at` already turned into ms by the adapter). */
export function parseIntakeFlag(data: unknown, at: number): IntakeFlag {
  if (!data || typeof data !== 'object') return OPEN_FLAG;
  const d = data as Record<string, unknown>;
  return {
    // Only `true` pauses: a typo in a hand-edited document must not stop the fleet.
    paused: d.paused === true,
    by: typeof d.by === 'string' ? d.by : '',
    at,
    note: typeof d.note === 'string' ? d.note.slice(0, MAX_NOTE) : '',
  };
}

/** What the flag asks of a worker's intake switch (`set('operator', …)`). */
export function operatorPauseOf(flag: IntakeFlag): Omit<IntakePause, 'reason'> | undefined {
  if (!flag.paused) return undefined;
  const who = flag.by ? ` by ${flag.by}` : '';
  return { since: flag.at, detail: `paused${who}${flag.note ? `: ${flag.note}` : ''}` };
}

/** An operator's note as stored: one line, at most MAX_NOTE characters. */
export function cleanNote(note: string | undefined): string {
  // Control characters (newlines, escapes) become spaces: a note cannot forge a log line.
  const text = [...(note ?? '')].map((c) => (c < ' ' || c === '\u007f' ? ' ' : c)).join('');
  return text.replace(/ {2,}/g, ' ').trim().slice(0, MAX_NOTE);
}
