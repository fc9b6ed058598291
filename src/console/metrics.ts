import type { ConsoleState } from './state.js';

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
