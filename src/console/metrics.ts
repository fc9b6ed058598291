import { keyWindowUse, type ConsoleState } from './state.js';

/** The content type of Prometheus' text format. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const escapeLabel = (v: string) =>
  v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

interface Series {
  name: string;
  help: string;
  samples: Array<{ labels?: Record<string, string>; value: number }>;
}

/**
 * The fleet's metrics, computed from Firestore (the console's `/metrics`): what no single
 * worker's own `/metrics` can say. Prometheus text format, one gauge family per fact.
 */
export function renderFleetMetrics(state: ConsoleState): string {
  const { workers } = state.fleet;
  const series: Series[] = [
    {
      name: 'showcase_fleet_workers_live',
      help: 'Workers with a fresh heartbeat.',
      samples: [{ value: workers.length }],
    },
    {
      name: 'showcase_fleet_worker_running_jobs',
      help: 'Jobs each live worker holds, by its last heartbeat.',
      samples: workers.map((w) => ({ labels: { worker: w.id }, value: w.running })),
    },
    {
      name: 'showcase_fleet_worker_quota_share',
      help: "ClipDrop requests a minute each live worker may send (the quota ledger's grant).",
      samples: workers.map((w) => ({ labels: { worker: w.id }, value: w.share })),
    },
    {
      name: 'showcase_fleet_clipdrop_rpm',
      help: "The API key's requests a minute, shared by the fleet.",
      samples: [{ value: state.rpm }],
    },
    ...quotaSeries(state),
    {
      name: 'showcase_fleet_sweep_leader',
      help: 'Whether a live lease names a sweep leader (1) or not (0).',
      samples: [{ value: state.fleet.leader === null ? 0 : 1 }],
    },
    {
      name: 'showcase_fleet_jobs',
      help: 'Characters by job status (count queries).',
      samples: Object.entries(state.queue.counts ?? {}).map(([status, value]) => ({
        labels: { status },
        value,
      })),
    },
    {
      name: `showcase_fleet_failures_${state.failures.windowHours}h`,
      help: `Failed jobs of the last ${state.failures.windowHours} hours by error code (of the latest ${state.failures.items.length} failures).`,
      samples: state.failures.byCode.map((f) => ({ labels: { code: f.code }, value: f.count })),
    },
    {
      name: 'showcase_fleet_intake_paused_by_operator',
      help: "Whether the operator paused the fleet's intake (showcaseFleet/intake): 1 paused.",
      samples: state.intake ? [{ value: state.intake.paused ? 1 : 0 }] : [],
    },
    {
      name: 'showcase_fleet_worker_intake_paused',
      help: 'Whether each live worker claims nothing new now, by its heartbeat, with why.',
      samples: workers.map((w) => ({
        labels: { worker: w.id, reason: w.intakePaused ?? '' },
        value: w.intakePaused === null ? 0 : 1,
      })),
    },
    ...spendSeries(state),
  ];
  const lines: string[] = [];
  for (const s of series) {
    lines.push(`# HELP ${s.name} ${s.help}`, `# TYPE ${s.name} gauge`);
    for (const { labels, value } of s.samples) {
      const l = labels
        ? `{${Object.entries(labels)
            .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
            .join(',')}}`
        : '';
      lines.push(`${s.name}${l} ${value}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** The key's window as the workers' heartbeats tell it, and their account gates. */
function quotaSeries(state: ConsoleState): Series[] {
  const { workers } = state.fleet;
  const total = keyWindowUse(workers);
  return [
    {
      name: 'showcase_fleet_worker_window_used',
      help: "ClipDrop calls in each live worker's current window (in flight included), by its heartbeat.",
      samples: workers.flatMap((w) =>
        w.windowUsed === null ? [] : [{ labels: { worker: w.id }, value: w.windowUsed }],
      ),
    },
    {
      name: 'showcase_fleet_window_used',
      help: "ClipDrop calls in the live workers' windows, summed: the key's use of CLIPDROP_RPM.",
      samples: total === null ? [] : [{ value: total }],
    },
    {
      name: 'showcase_fleet_worker_clipdrop_paused',
      help: "Whether each live worker's ClipDrop account gate holds every call (1), with why: no-credits (402), unauthorized (401/403), outage.",
      samples: workers.map((w) => ({
        labels: { worker: w.id, reason: w.gate?.reason ?? '' },
        value: w.gate === null ? 0 : 1,
      })),
    },
  ];
}

/** Today's credits and the balance (docs/budget.md); nothing until the budget is read. */
function spendSeries(state: ConsoleState): Series[] {
  const spend = state.spend;
  if (!spend) return [];
  return [
    {
      name: 'showcase_fleet_credit_budget',
      help: "The fleet's daily ClipDrop credit budget in force (0: none).",
      samples: [{ value: spend.budget }],
    },
    {
      name: 'showcase_fleet_credits_today',
      help: 'Credits of the UTC day: spent (reported used) and held by workers for their jobs.',
      samples: [
        { labels: { kind: 'spent' }, value: spend.spent },
        { labels: { kind: 'held' }, value: spend.held },
        // Settled on users' days (showcaseUsage): counted with or without a budget.
        ...(spend.today ? [{ labels: { kind: 'settled' }, value: spend.today.credits }] : []),
      ],
    },
    {
      name: 'showcase_fleet_jobs_today',
      help: "The UTC day's requests (USER_DAILY_REQUEST_LIMIT's count) and jobs admitted, all users.",
      samples: spend.today
        ? [
            { labels: { kind: 'requests' }, value: spend.today.requests },
            { labels: { kind: 'jobs' }, value: spend.today.jobs },
          ]
        : [],
    },
    {
      name: 'showcase_fleet_clipdrop_balance',
      help: "ClipDrop's balance: the lowest a live worker's heartbeat reports.",
      samples: spend.balance === null ? [] : [{ value: spend.balance }],
    },
  ];
}
