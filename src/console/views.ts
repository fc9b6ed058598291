/**
 * The console's pages, as HTML skeletons: the server fills in only what it knows at request
 * time (the CSRF token, read-only, a job's id); /assets/console.js fills in the data from the
 * live stream, with DOM text nodes (never HTML from data). No inline script or style (CSP).
 */

export function escapeHtml(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

interface PageOptions {
  title: string;
  body: string;
  /** data-* attributes of <body>: what the script needs (already plain strings). */
  data?: Record<string, string>;
  script?: boolean;
}

function page({ title, body, data = {}, script = true }: PageOptions): string {
  const attrs = Object.entries(data)
    .map(([k, v]) => ` data-${k}="${escapeHtml(v)}"`)
    .join('');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<link rel="stylesheet" href="/assets/console.css">
${script ? '<script type="module" src="/assets/console.js"></script>\n' : ''}</head>
<body${attrs}>
${body}
</body>
</html>
`;
}

function header(csrf: string, readOnly: boolean): string {
  return `<header class="top">
<h1><a href="/">Showcase console</a></h1>
<p id="connection" class="connection" role="status" aria-live="polite">Connecting…</p>
${readOnly ? '<p class="badge">Read-only</p>' : ''}
<form method="post" action="/logout"><input type="hidden" name="csrf" value="${escapeHtml(csrf)}"><button type="submit" class="quiet">Sign out</button></form>
</header>`;
}

function table(id: string, caption: string, columns: string[]): string {
  return `<table>
<caption>${escapeHtml(caption)}</caption>
<thead><tr>${columns.map((c) => `<th scope="col">${escapeHtml(c)}</th>`).join('')}</tr></thead>
<tbody id="${id}"></tbody>
</table>`;
}

/** The overview: fleet, queue, failures, recent jobs. */
export function overviewPage(csrf: string, readOnly: boolean): string {
  const failureColumns = ['Character', 'Code', 'Stage', 'Message', 'When'];
  return page({
    title: 'Showcase console',
    data: { page: 'overview', csrf, 'read-only': String(readOnly) },
    body: `${header(csrf, readOnly)}
<nav aria-label="Panels" class="panels"><a href="#fleet">Fleet</a><a href="#control">Control</a><a href="#queue">Queue</a><a href="#failures">Failures</a><a href="#spend">Spend</a><a href="#recent">Recent</a></nav>
<main>
<section id="fleet" aria-labelledby="fleet-title">
<h2 id="fleet-title">Fleet</h2>
<p id="fleet-summary" class="summary"></p>
<p id="key-window" class="summary"></p>
<p id="clipdrop-paused" class="summary intake-paused" role="status" hidden></p>
${table('workers', 'Live workers', ['Worker', 'Since', 'Running', 'Share /min', 'Window', 'ClipDrop', 'Intake', 'Last beat'])}
</section>
${controlPanel(csrf, readOnly)}
<section id="queue" aria-labelledby="queue-title">
<h2 id="queue-title">Queue</h2>
<dl id="counts" class="counts"></dl>
<p id="queue-summary" class="summary"></p>
<figure class="chart">
<figcaption><span id="hourly-caption">Completed and failed per hour</span> <span class="legend"><span class="key key-ok"></span>completed <span class="key key-bad"></span>failed</span></figcaption>
<svg id="hourly-chart" role="img" aria-labelledby="hourly-caption" viewBox="0 0 360 110"></svg>
<details><summary>Per hour, as a table</summary>
${table('hourly', 'Jobs ended per hour (UTC)', ['Hour', 'Completed', 'Failed'])}
</details>
</figure>
${table('user-queues', 'Deepest queues, by user', ['User', 'Waiting', 'Running'])}
${table('active', 'Requested and running jobs', ['Character', 'Status', 'Held by', 'Attempts'])}
</section>
<section id="failures" aria-labelledby="failures-title">
<h2 id="failures-title">Failures</h2>
<p id="failures-summary" class="summary"></p>
<ul id="failure-codes" class="codes"></ul>
${retryAllBox(csrf, readOnly)}
<p id="action-result" role="status" aria-live="polite" class="action-result"></p>
${table('failed', 'Latest failures', readOnly ? failureColumns : [...failureColumns, 'Action'])}
</section>
<section id="spend" aria-labelledby="spend-title">
<h2 id="spend-title">Spend</h2>
<dl id="spend-figures" class="counts"></dl>
<p id="spend-summary" class="summary"></p>
${table('top-users', 'Top users today, by credits', ['User', 'Jobs', 'Credits', 'Limits'])}
${limitsForm(csrf, readOnly)}
</section>
<section id="recent" aria-labelledby="recent-title">
<h2 id="recent-title">Recently completed</h2>
${table('finished', 'Latest completed jobs', ['Character', 'Finished', 'Took', 'Credits'])}
</section>
</main>`,
  });
}

/**
 * Pause and resume the fleet's intake (showcaseFleet/intake): the state for everyone, the
 * buttons only where actions are allowed (the script shows the one that applies).
 */
function controlPanel(csrf: string, readOnly: boolean): string {
  const hidden = `<input type="hidden" name="csrf" value="${escapeHtml(csrf)}">`;
  const forms = readOnly
    ? ''
    : `<div class="controls">
<form method="post" action="/actions/pause" id="pause-form" class="action">${hidden}
<label for="pause-note">Note (optional)</label>
<input id="pause-note" name="note" maxlength="200" autocomplete="off">
<button type="submit">Pause intake</button>
</form>
<form method="post" action="/actions/resume" id="resume-form" class="action">${hidden}
<button type="submit">Resume intake</button>
</form>
</div>
<p id="control-result" role="status" aria-live="polite" class="action-result"></p>`;
  return `<section id="control" aria-labelledby="control-title">
<h2 id="control-title">Control</h2>
<p id="intake-state" class="summary" data-paused="">Intake: …</p>
<p class="hint">Paused, no worker claims a new job: clicks wait, running jobs and takeovers finish, nothing fails.</p>
${forms}
</section>`;
}

/**
 * Retry all of a code: the preview the script fills in (how many it would click, how fast)
 * with its confirm button; absent when read-only.
 */
function retryAllBox(csrf: string, readOnly: boolean): string {
  if (readOnly) return '';
  return `<div id="retry-code" class="retry-code" hidden>
<p id="retry-code-preview"></p>
<form method="post" action="/actions/retry-code" id="retry-code-form" class="action">
<input type="hidden" name="csrf" value="${escapeHtml(csrf)}">
<input type="hidden" name="code" value="">
<input type="hidden" name="max" value="">
<button type="submit" id="retry-code-confirm">Retry</button>
<button type="button" id="retry-code-cancel" class="quiet">Cancel</button>
</form>
</div>
<p id="retry-code-result" role="status" aria-live="polite" class="action-result"></p>`;
}

/**
 * A user's limits (`showcase-worker limit`): shown for anyone; set, or back to default, only
 * where actions are allowed.
 */
function limitsForm(csrf: string, readOnly: boolean): string {
  const set = readOnly
    ? ''
    : `<input type="hidden" name="csrf" value="${escapeHtml(csrf)}">
<label for="limits-daily">Daily jobs</label>
<input id="limits-daily" name="daily" size="8" maxlength="16" autocomplete="off">
<label for="limits-active">Jobs at once</label>
<input id="limits-active" name="active" size="8" maxlength="16" autocomplete="off">
<button type="submit">Set limits</button>`;
  const hint = readOnly
    ? ''
    : `<p class="hint">A whole number (0 = no limit; daily jobs at most 10000), or <code>default</code> to drop the override; an empty field stays as it is. A raised limit applies to the user's next job, a lowered one within 10 s: the same as <code>showcase-worker limit</code>.</p>`;
  return `<h3 id="limits-title">Per-user limits</h3>
<form ${readOnly ? '' : 'method="post" action="/actions/limit" '}id="limits-form" class="action" aria-labelledby="limits-title">
<label for="limits-user">User id</label>
<input id="limits-user" name="user" maxlength="128" autocomplete="off" required>
<button type="button" id="limits-show"${readOnly ? '' : ' class="quiet"'}>Show limits</button>
${set}
</form>
${hint}
<dl id="user-limits" class="user-limits"></dl>
<p id="limits-result" role="status" aria-live="polite" class="action-result"></p>`;
}

/** One job: its timeline, record, error and pictures. */
export function jobPage(id: string, csrf: string, readOnly: boolean): string {
  return page({
    title: `Job ${id} · Showcase console`,
    data: { page: 'job', job: id, csrf, 'read-only': String(readOnly) },
    body: `${header(csrf, readOnly)}
<main>
<p><a href="/">← Overview</a></p>
<h2 id="job-title">Character ${escapeHtml(id)}</h2>
<section aria-labelledby="timeline-title">
<h3 id="timeline-title">Timeline</h3>
<ol id="timeline" class="timeline"></ol>
</section>
<section aria-labelledby="record-title">
<h3 id="record-title">Job</h3>
<dl id="record" class="record"></dl>
</section>
<section aria-labelledby="stages-title">
<h3 id="stages-title">Stages</h3>
${table('stages', 'This attempt’s stages (start on Firestore’s clock)', ['Stage', 'Started', 'Took'])}
</section>
<section aria-labelledby="pictures-title">
<h3 id="pictures-title">Pictures</h3>
<div class="pictures">
<figure><img id="source-picture" alt="Source picture" width="320" height="320"><figcaption id="source-caption">Source</figcaption></figure>
<figure><img id="result-picture" alt="Result picture" width="320" height="320" hidden><figcaption id="result-caption">Result: none yet</figcaption></figure>
</div>
</section>
</main>`,
  });
}

/** The sign-in form (also the body of every 401 a browser gets: no data in it). */
export function signInPage(message = ''): string {
  return page({
    title: 'Sign in · Showcase console',
    script: false,
    body: `<main class="signin">
<h1>Showcase console</h1>
<form method="post" action="/login">
<label for="token">Console token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
${message ? `<p role="alert" class="error">${escapeHtml(message)}</p>` : ''}
<p class="hint">The token is the CONSOLE_TOKEN setting of the console's process (docs/console.md).</p>
</main>`,
  });
}
