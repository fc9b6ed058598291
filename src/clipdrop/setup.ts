import type { Config } from '../config/load.js';
import { backoffDelay } from '../jobs/backoff.js';
import { WINDOW_MARGIN_MS } from '../jobs/call-window.js';
import type { ImageService, Log } from '../jobs/ports.js';
import { AccountGate, type PauseReason } from './account-gate.js';
import { createClipdropClient, type ClipdropCall } from './client.js';
import { SlidingWindowLimiter } from './rate-limiter.js';

/** The `clipdrop` section of the configuration (src/config/schema.ts documents each key). */
export type ClipdropSettings = Config['clipdrop'];

const WHAT_TO_DO: Record<PauseReason, string> = {
  'no-credits':
    'The ClipDrop account has no credits left. Buy credits in the ClipDrop dashboard; jobs wait and resume by themselves.',
  unauthorized:
    'ClipDrop refused the API key (401/403). Set a valid CLIPDROP_API_KEY; jobs wait and resume by themselves once it works.',
  outage:
    'ClipDrop keeps failing (5xx or network errors). Jobs wait and resume by themselves when it answers again.',
};

export interface Clipdrop {
  images: ImageService;
  gate: AccountGate;
  limiter: SlidingWindowLimiter;
}

/** The normal retry backoff (RETRY_BASE_MS doubling up to RETRY_MAX_MS, with jitter). */
export interface RetryBackoff {
  baseMs: number;
  maxMs: number;
}

/**
 * The ClipDrop client with its process-wide companions: one rate limiter for the key (all
 * stages share the quota) and one account gate (pause on 402/401/403/outage, probe, resume).
 */
export function createClipdrop(
  settings: ClipdropSettings,
  retry: RetryBackoff,
  log: Log,
  hooks: {
    onCall?: (call: ClipdropCall) => void;
    onPause?: (paused: boolean) => void;
    /** ClipDrop calls in flight at once (WORKER_CONCURRENCY); default: no bound. */
    callsInFlight?: number;
  } = {},
): Clipdrop {
  const clipLog = log.child({ component: 'clipdrop' });
  // The window spent in full but for a small reserve (src/jobs/call-window.ts).
  const limiter = new SlidingWindowLimiter({
    limit: settings.rpm,
    windowMs: 60_000 + WINDOW_MARGIN_MS,
    ...(hooks.callsInFlight === undefined ? {} : { maxInFlight: hooks.callsInFlight }),
  });
  const gate = new AccountGate({
    firstProbeMs: settings.firstProbeMs,
    maxProbeMs: settings.probeMs,
    transientRetryMs: (n) =>
      backoffDelay(n, { baseMs: retry.baseMs, maxMs: retry.maxMs, maxRetryAfterMs: retry.maxMs }),
    outageThreshold: settings.outageThreshold,
    events: {
      paused(reason, detail) {
        clipLog.error('clipdrop.paused', {
          reason,
          detail,
          action: WHAT_TO_DO[reason],
          firstProbeMs: Math.min(settings.firstProbeMs, settings.probeMs),
          maxProbeMs: settings.probeMs,
        });
        hooks.onPause?.(true);
      },
      probeScheduled(delayMs, after) {
        clipLog.debug('clipdrop.probe_scheduled', { delayMs, after });
      },
      resumed(reason, pausedMs) {
        clipLog.warn('clipdrop.resumed', { reason, pausedMs });
        hooks.onPause?.(false);
      },
    },
  });
  let warned = false;
  const images = createClipdropClient({
    apiUrl: settings.apiUrl,
    apiKey: settings.apiKey,
    timeoutMs: {
      'remove-background': settings.removeBackgroundTimeoutMs,
      upscale: settings.upscaleTimeoutMs,
    },
    limiter,
    gate,
    onCall(call) {
      clipLog[call.status === 200 ? 'debug' : 'warn']('clipdrop.call', { ...call });
      const remaining = call.remainingCredits;
      if (remaining !== undefined && Number.isFinite(remaining)) {
        // Warn once per crossing, not on every call below the threshold.
        if (remaining < settings.creditsWarnBelow && !warned) {
          warned = true;
          clipLog.warn('clipdrop.credits_low', {
            remainingCredits: remaining,
            threshold: settings.creditsWarnBelow,
          });
        } else if (remaining >= settings.creditsWarnBelow) {
          warned = false;
        }
      }
      hooks.onCall?.(call);
    },
  });
  return { images, gate, limiter };
}
