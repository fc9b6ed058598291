/**
 * Exit codes of the operator CLI, stable for scripts:
 * - 0 `OK`: done, nothing wrong;
 * - 1 `PROBLEMS`: done, but something needs attention (doctor found a failing check; an id
 *   does not exist or has no image; a click could not be written);
 * - 2 `CONFIG`: the configuration is invalid (as for the worker);
 * - 3 `UNAVAILABLE`: Firestore or Storage failed while the command ran;
 * - 64 `USAGE`: unknown command or option, missing or malformed argument (sysexits EX_USAGE);
 * - 130 `INTERRUPTED`: stopped by Ctrl-C (SIGINT), after a summary of what was done.
 */
export const EXIT = {
  OK: 0,
  PROBLEMS: 1,
  CONFIG: 2,
  UNAVAILABLE: 3,
  USAGE: 64,
  INTERRUPTED: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A mistake in the command line: reported with a pointer to `--help`, exit 64. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
