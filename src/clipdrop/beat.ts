import type { AccountGate, PauseReason } from './account-gate.js';

/**
 * What a worker's heartbeat says of its ClipDrop key (docs/fleet.md), for people and the
 * console: no worker reads it. Part of the beat the worker writes anyway.
 */
export interface ClipdropBeatFields {
  /** Calls in this worker's current window (in flight included): its use of its grant (`share`). */
  clipdropWindowUsed: number;
  /** 1 while the account gate holds every call (account-gate.ts), else 0. */
  clipdropPaused: 0 | 1;
  /** Why: `no-credits` (402), `unauthorized` (401/403), `outage` (5xx, network). */
  clipdropPausedBy?: PauseReason;
  /** Since when, ms epoch on Firestore's clock as the worker knew it when the gate closed. */
  clipdropPausedSince?: number;
}

export interface ClipdropBeat {
  /** The gate closed (true) or opened (false): the account gate's events. */
  paused(paused: boolean): void;
  fields(): ClipdropBeatFields;
}

/**
 * The gate's reason is read at each beat (a pause's reason may change while it holds, say an
 * outage that turns out to be a 402); when it closed is kept from its event.
 */
export function createClipdropBeat(
  key: () => { gate: Pick<AccountGate, 'paused'>; limiter: { readonly used: number } },
  serverNow: () => number,
): ClipdropBeat {
  let since: number | undefined;
  return {
    paused(paused) {
      since = paused ? Math.round(serverNow()) : undefined;
    },
    fields() {
      const { gate, limiter } = key();
      const reason = gate.paused;
      return {
        clipdropWindowUsed: limiter.used,
        clipdropPaused: reason === undefined ? 0 : 1,
        ...(reason === undefined ? {} : { clipdropPausedBy: reason }),
        ...(reason === undefined || since === undefined ? {} : { clipdropPausedSince: since }),
      };
    },
  };
}
