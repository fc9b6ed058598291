// The operator console's browser side (served by src/console/server.ts, no build step, no
// dependency). It renders what the server streams (Server-Sent Events) with DOM text nodes
// only: data never becomes HTML. Actions are POSTs carrying the page's CSRF token.

const body = document.body;
const csrf = body.dataset.csrf ?? '';
const readOnly = body.dataset.readOnly === 'true';
const connection = document.getElementById('connection');

/** Creates an element with text or children. */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'text') node.textContent = v;
    else if (k === 'class') node.className = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function cell(label, content) {
  const td = el('td', { 'data-label': label });
  td.append(content);
  return td;
}

function replaceRows(tbodyId, rows, emptyText, columns) {
  const tbody = document.getElementById(tbodyId);
  if (!tbody) return;
  if (rows.length === 0) {
    const td = el('td', { colspan: String(columns), class: 'empty', text: emptyText });
    tbody.replaceChildren(el('tr', {}, td));
  } else tbody.replaceChildren(...rows);
}

/** Firestore's time minus ours, from the latest state: ages are shown on the server's clock. */
let skew = 0;
const serverNow = () => Date.now() + skew;

function ago(ms) {
  const s = Math.max(0, Math.round((serverNow() - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

function time(ms) {
  if (!ms) return '';
  return new Date(ms).toLocaleTimeString([], {
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
}

function jobLink(id, name) {
  return el('a', {
    href: `/jobs/${encodeURIComponent(id)}`,
    text: name === id ? id : `${name} (${id})`,
  });
}

function setConnection(text, ok) {
  if (!connection) return;
  connection.textContent = text;
  connection.classList.toggle('bad', !ok);
}

// ---- the overview ----------------------------------------------------------------------

/** The account gate's reasons (src/clipdrop/account-gate.ts), as an operator reads them. */
const GATE_REASONS = {
  'no-credits': 'payment required (402)',
  unauthorized: 'API key refused (401/403)',
  outage: 'ClipDrop failing (5xx, network)',
};

function gateText(gate) {
  const why = GATE_REASONS[gate.reason] ?? gate.reason;
  return gate.since ? `${why} since ${hhmm(gate.since)}` : why;
}

function hhmm(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/** The key's window summed over the workers' heartbeats, and any paused account gate. */
function renderKey(state) {
  const { workers } = state.fleet;
  const told = workers.filter((w) => w.windowUsed !== null);
  const used = told.reduce((n, w) => n + w.windowUsed, 0);
  const line = document.getElementById('key-window');
  line.textContent =
    told.length === 0
      ? `Key's window: not reported (CLIPDROP_RPM ${state.rpm}).`
      : `Key's window: ${used} of ${state.rpm} requests a minute (CLIPDROP_RPM), by ${told.length} worker${told.length === 1 ? '' : 's'}.`;
  line.dataset.used = String(used);
  const paused = workers.filter((w) => w.gate !== null);
  const alert = document.getElementById('clipdrop-paused');
  alert.hidden = paused.length === 0;
  if (paused.length > 0) {
    // The earliest pause names the line; each worker's own is in its row.
    const first = paused.reduce((a, b) =>
      (a.gate.since ?? Infinity) <= (b.gate.since ?? Infinity) ? a : b,
    );
    alert.textContent = `ClipDrop paused: ${gateText(first.gate)} (${paused.length} of ${workers.length} worker${workers.length === 1 ? '' : 's'}). Jobs wait, nothing fails; they resume by themselves.`;
  }
}

function renderFleet(state) {
  const { workers, leader } = state.fleet;
  const paused = state.intake?.paused ? ' Intake paused by the operator.' : '';
  document.getElementById('fleet-summary').textContent =
    `${workers.length} live worker${workers.length === 1 ? '' : 's'} sharing ${state.rpm} ClipDrop requests a minute; sweep leader: ${leader ?? 'none'}.${paused}`;
  replaceRows(
    'workers',
    workers.map((w) =>
      el(
        'tr',
        {},
        cell(
          'Worker',
          el('span', { class: 'mono', text: w.id + (w.id === leader ? ' (leader)' : '') }),
        ),
        cell('Since', time(w.since)),
        cell('Running', String(w.running)),
        cell('Share /min', String(w.share)),
        cell('Window', w.windowUsed === null ? '' : `${w.windowUsed} / ${w.share}`),
        cell(
          'ClipDrop',
          w.gate === null
            ? 'open'
            : el('span', { class: 'intake-paused', text: `paused: ${gateText(w.gate)}` }),
        ),
        cell(
          'Intake',
          w.intakePaused === null
            ? 'claiming'
            : el('span', { class: 'intake-paused', text: `paused (${w.intakePaused})` }),
        ),
        cell('Last beat', ago(w.beatAt)),
      ),
    ),
    'No live worker.',
    8,
  );
  renderKey(state);
}

const STATUS_ORDER = ['removing-background', 'upscaling', 'finalizing', 'complete', 'failed'];

function renderQueue(state) {
  const { counts, running, waiting, truncated } = state.queue;
  const dl = document.getElementById('counts');
  dl.replaceChildren(
    ...STATUS_ORDER.map((s) =>
      el(
        'div',
        { 'data-status': s },
        el('dt', { text: s }),
        el('dd', { text: counts ? String(counts[s] ?? 0) : '…' }),
      ),
    ),
  );
  const counted = state.queue.countedAt ? ` Counted ${ago(state.queue.countedAt)}.` : '';
  document.getElementById('queue-summary').textContent =
    `${running} running, ${waiting} waiting for a worker${truncated ? ' (of the first listed)' : ''}.${counted}`;
  renderHourly(state.queue.hourly);
  replaceRows(
    'user-queues',
    state.queue.users.map((u) =>
      el(
        'tr',
        { 'data-user': u.userId },
        cell('User', el('span', { class: 'mono', text: u.userId || '(none)' })),
        cell('Waiting', String(u.waiting)),
        cell('Running', String(u.running)),
      ),
    ),
    'No user has a job requested or running.',
    3,
  );
  replaceRows(
    'active',
    state.active.map((j) =>
      el(
        'tr',
        { 'data-id': j.id, 'data-status': j.status },
        cell('Character', jobLink(j.id, j.name)),
        cell('Status', el('span', { class: `status s-${j.status}`, text: j.status })),
        cell('Held by', j.waiting ? 'waiting' : el('span', { class: 'mono', text: j.owner ?? '' })),
        cell('Attempts', String(j.attempts)),
      ),
    ),
    'Nothing requested or running.',
    4,
  );
}

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  for (const c of children) node.append(c);
  return node;
}

function hourLabel(ms) {
  return new Date(ms).toLocaleTimeString([], {
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  });
}

/** Jobs ended per hour: stacked bars (completed, failed above), and the same as a table. */
function renderHourly(hourly) {
  const chart = document.getElementById('hourly-chart');
  const caption = document.getElementById('hourly-caption');
  if (!chart || !caption) return;
  if (!hourly) {
    caption.textContent = 'Completed and failed per hour: counting…';
    return;
  }
  const done = hourly.reduce((n, h) => n + h.complete, 0);
  const failed = hourly.reduce((n, h) => n + h.failed, 0);
  caption.textContent = `Completed and failed per hour, the last ${hourly.length} hours: ${done} completed, ${failed} failed.`;
  const top = Math.max(1, ...hourly.map((h) => h.complete + h.failed));
  const width = 360 / hourly.length;
  const plot = 92;
  chart.replaceChildren(
    svg('line', { x1: 0, y1: plot, x2: 360, y2: plot, class: 'axis' }),
    ...hourly.map((h, i) => {
      const x = i * width + 2;
      const ok = (h.complete / top) * (plot - 10);
      const bad = (h.failed / top) * (plot - 10);
      return svg(
        'g',
        { 'data-hour': h.hour },
        svg('title', {}, `${hourLabel(h.hour)}: ${h.complete} completed, ${h.failed} failed`),
        svg('rect', { x, y: plot - ok, width: width - 4, height: ok, class: 'bar-ok' }),
        svg('rect', { x, y: plot - ok - bad, width: width - 4, height: bad, class: 'bar-bad' }),
        i % 3 === hourly.length % 3 || i === hourly.length - 1
          ? svg('text', { x: x + (width - 4) / 2, y: 106, class: 'tick' }, hourLabel(h.hour))
          : '',
      );
    }),
  );
  replaceRows(
    'hourly',
    hourly.map((h) =>
      el(
        'tr',
        {},
        cell('Hour', hourLabel(h.hour)),
        cell('Completed', String(h.complete)),
        cell('Failed', String(h.failed)),
      ),
    ),
    'No hour counted yet.',
    3,
  );
}

// ---- control: the fleet's intake --------------------------------------------------------

function renderControl(state) {
  const flag = state.intake;
  const line = document.getElementById('intake-state');
  if (!flag) return;
  line.dataset.paused = String(flag.paused);
  line.classList.toggle('intake-paused', flag.paused);
  const who = flag.by ? ` by ${flag.by}` : '';
  const when = flag.at ? ` at ${time(flag.at)}` : '';
  const note = flag.note ? `: ${flag.note}` : '';
  line.textContent = flag.paused
    ? `Intake paused${who}${when}${note}. No worker claims a new job.`
    : `Intake open${flag.at ? ` (resumed${who}${when})` : ''}: workers claim new jobs.`;
  const pause = document.getElementById('pause-form');
  const resume = document.getElementById('resume-form');
  // Not while the operator types a note; a button that goes away hands its focus on.
  if (pause && resume && document.activeElement !== pause.elements.note) {
    const hadFocus = (flag.paused ? pause : resume).contains(document.activeElement);
    pause.hidden = flag.paused;
    resume.hidden = !flag.paused;
    if (hadFocus) (flag.paused ? resume : pause).querySelector('button').focus();
  }
}

function intakeForm(form) {
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void postAction(form, 'control-result', (a) => {
      if (form.elements.note) form.elements.note.value = '';
      return a.changed.from === a.changed.to
        ? `Intake was already ${a.changed.to}.`
        : `Intake ${a.changed.to === 'paused' ? 'paused' : 'resumed'}.`;
    });
  });
}

// ---- spend -------------------------------------------------------------------------------

function renderSpend(state) {
  const spend = state.spend;
  if (!spend) return;
  const balance = ['ClipDrop balance', spend.balance === null ? 'unknown' : String(spend.balance)];
  // The day's totals over all users (their usage documents), once read.
  const today = spend.today
    ? [
        ['Requests today', String(spend.today.requests)],
        ['Jobs today', String(spend.today.jobs)],
        ['Credits today', String(spend.today.credits)],
      ]
    : [];
  const figures =
    spend.budget === 0
      ? [['Budget', 'none'], ...today, balance]
      : [
          ['Budget', String(spend.budget)],
          ['Committed', String(spend.committed)],
          ['Spent', String(spend.spent)],
          ['Held', String(spend.held)],
          ...today,
          balance,
        ];
  document
    .getElementById('spend-figures')
    .replaceChildren(
      ...figures.map(([k, v]) =>
        el('div', { 'data-figure': k }, el('dt', { text: k }), el('dd', { text: v })),
      ),
    );
  const from = spend.source === 'operator' ? 'set by an operator' : 'CLIPDROP_DAILY_CREDIT_BUDGET';
  const budget =
    spend.budget === 0
      ? `No daily credit budget (${from}): the day's credits are counted per user only.`
      : `Daily budget ${spend.budget} credits (${from}).`;
  const pause = spend.paused
    ? ' At the budget: nothing new is claimed until tomorrow (UTC) or a raised budget.'
    : '';
  const summary = document.getElementById('spend-summary');
  summary.textContent = `${spend.day} UTC. ${budget}${pause}`;
  summary.classList.toggle('intake-paused', spend.paused);
  replaceRows(
    'top-users',
    spend.topUsers.map((u) =>
      el(
        'tr',
        { 'data-user': u.userId },
        cell('User', el('span', { class: 'mono', text: u.userId })),
        cell('Jobs', String(u.jobs)),
        cell('Credits', String(u.credits)),
        cell('Limits', limitsButton(u.userId)),
      ),
    ),
    'No credits spent today.',
    4,
  );
}

// ---- spend: one user's limits (showcase-worker limit) ------------------------------------

const showLimit = (n) => (n === 0 ? 'no limit' : String(n));

function limitsButton(userId) {
  const button = el('button', {
    type: 'button',
    class: 'quiet',
    text: 'Limits',
    // Its name holds the word it shows (WCAG's label in name), then whose.
    'aria-label': `Limits of ${userId}`,
  });
  button.addEventListener('click', () => {
    const form = document.getElementById('limits-form');
    form.elements.user.value = userId;
    void showLimits(userId);
  });
  return button;
}

/** A user's limits now: what applies and from where, and today's count. */
function renderLimits(view) {
  const dl = document.getElementById('user-limits');
  dl.dataset.user = view.userId;
  const line = (key) => {
    const overridden = view.override[key] !== undefined;
    const configured = showLimit(view.configured[key]);
    return overridden
      ? `${showLimit(view.limits[key])} (override; configured: ${configured})`
      : `${configured} (configured)`;
  };
  const active =
    line('maxActive') +
    (view.override.maxActive !== undefined && view.configured.maxActive === 0
      ? '; applies only while USER_MAX_ACTIVE is set for the fleet'
      : '');
  const rows = [
    ['User', view.userId, 'user'],
    ['Daily jobs', line('dailyJobs'), 'dailyJobs'],
    ['Jobs at once', active, 'maxActive'],
    [
      `Today (${view.day} UTC)`,
      `${view.today.jobs} jobs counted, ${view.today.credits} credits`,
      'today',
    ],
  ];
  dl.replaceChildren(
    ...rows.map(([k, v, key]) =>
      el('div', { 'data-limit': key }, el('dt', { text: k }), el('dd', { text: v })),
    ),
  );
}

async function showLimits(userId) {
  const result = document.getElementById('limits-result');
  result.textContent = '';
  try {
    const res = await fetch(`/api/limits/${encodeURIComponent(userId)}`, {
      headers: { accept: 'application/json' },
      credentials: 'same-origin',
    });
    const answer = await res.json();
    if (!res.ok) result.textContent = answer.error ?? `refused (${res.status})`;
    else renderLimits(answer);
  } catch (err) {
    result.textContent = `Could not read the limits: ${err}`;
  }
}

function limitsForm(form) {
  document.getElementById('limits-show').addEventListener('click', () => {
    if (form.reportValidity()) void showLimits(form.elements.user.value.trim());
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const { user, daily, active } = form.elements;
    // Enter with no limit given (or a read-only page): show, not set.
    if (!daily || (daily.value.trim() === '' && active.value.trim() === '')) {
      void showLimits(user.value.trim());
      return;
    }
    const word = (v) => (v === 'default' ? 'default' : showLimit(v));
    void postAction(form, 'limits-result', (a) => {
      renderLimits(a.view);
      daily.value = '';
      active.value = '';
      const names = { dailyJobs: 'daily jobs', maxActive: 'jobs at once' };
      const parts = Object.entries(a.changed).map(([k, c]) =>
        c.from === c.to
          ? `${names[k]} stays ${word(c.to)}`
          : `${names[k]} ${word(c.from)} → ${word(c.to)}`,
      );
      return `${a.userId}: ${parts.join('; ')}.`;
    });
  });
}

function retryForm(id) {
  const form = el(
    'form',
    { method: 'post', action: '/actions/retry', class: 'inline' },
    el('input', { type: 'hidden', name: 'csrf', value: csrf }),
    el('input', { type: 'hidden', name: 'id', value: id }),
    el('button', { type: 'submit', text: 'Retry', 'aria-label': `Retry ${id}` }),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void postAction(form, 'action-result', (a) =>
      a.result === 'clicked'
        ? `${a.id}: retried (was ${a.changed.code}).`
        : `${a.id}: not retried: ${a.reason ?? a.result}.`,
    );
  });
  return form;
}

async function postAction(form, resultId, describe) {
  const result = document.getElementById(resultId);
  const button = form.querySelector('button');
  button.disabled = true;
  try {
    const res = await fetch(form.action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams(new FormData(form)),
      credentials: 'same-origin',
    });
    const answer = await res.json();
    if (!res.ok) result.textContent = answer.error ?? `refused (${res.status})`;
    else result.textContent = describe(answer);
  } catch (err) {
    result.textContent = `The action failed: ${err}`;
  } finally {
    button.disabled = false;
  }
}

/** The code whose failures the table lists (its chip pressed); null: every code. */
let codeShown = null;

function codeToggle(code, state) {
  const button = el('button', {
    type: 'button',
    class: 'code-toggle mono',
    'aria-pressed': String(codeShown === code),
    'data-code': code,
    text: code,
  });
  button.addEventListener('click', () => {
    codeShown = codeShown === code ? null : code;
    renderFailures(state);
  });
  return button;
}

function renderFailures(state) {
  const f = state.failures;
  const total = f.byCode.reduce((n, c) => n + c.count, 0);
  if (codeShown !== null && !f.byCode.some((c) => c.code === codeShown)) codeShown = null;
  const focused = document.activeElement?.classList?.contains('code-toggle')
    ? document.activeElement.dataset.code
    : undefined;
  document.getElementById('failures-summary').textContent =
    `${total} failure${total === 1 ? '' : 's'} in the last ${f.windowHours} hours${f.truncated ? ' (among the latest listed)' : ''}.${codeShown ? ` Listed: ${codeShown} only (press it again for all).` : ' Press a code to list its failures only.'}`;
  document.getElementById('failure-codes').replaceChildren(
    ...f.byCode.map((c) => {
      const li = el('li', { 'data-code': c.code }, codeToggle(c.code, state), ` ${c.count}`);
      if (!readOnly) li.append(retryAllButton(c.code));
      return li;
    }),
  );
  if (focused !== undefined) {
    [...document.querySelectorAll('#failure-codes .code-toggle')]
      .find((b) => b.dataset.code === focused)
      ?.focus();
  }
  replaceRows(
    'failed',
    f.items
      .filter((x) => codeShown === null || x.code === codeShown)
      .map((x) => {
        const row = el(
          'tr',
          { 'data-id': x.id, 'data-code': x.code },
          cell('Character', jobLink(x.id, x.name)),
          cell('Code', el('span', { class: 'mono', text: x.code })),
          cell('Stage', x.stage),
          cell('Message', x.message),
          cell('When', ago(x.at)),
        );
        if (!readOnly) row.append(cell('Action', retryForm(x.id)));
        return row;
      }),
    'No failures.',
    readOnly ? 5 : 6,
  );
}

// ---- failures: retry all of a code ------------------------------------------------------

function retryAllButton(code) {
  const button = el('button', {
    type: 'button',
    text: 'Retry all',
    'aria-label': `Retry all ${code}`,
  });
  button.addEventListener('click', () => void previewRetryAll(code, button));
  return button;
}

function seconds(ms) {
  return ms < 60_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`;
}

/** Asks the server how many it would click; shows that, with the confirm button. */
async function previewRetryAll(code, button) {
  const box = document.getElementById('retry-code');
  const text = document.getElementById('retry-code-preview');
  const form = document.getElementById('retry-code-form');
  const confirm = document.getElementById('retry-code-confirm');
  const result = document.getElementById('retry-code-result');
  button.disabled = true;
  try {
    const res = await fetch('/actions/retry-code/preview', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ csrf, code }),
      credentials: 'same-origin',
    });
    const p = await res.json();
    if (!res.ok) {
      result.textContent = p.error ?? `refused (${res.status})`;
      return;
    }
    box.hidden = false;
    box.dataset.code = p.code;
    box.dataset.count = String(p.count);
    const jobs = `${p.count} failed job${p.count === 1 ? '' : 's'}`;
    const more = p.more ? ` (more failed: one Retry all clicks at most ${p.count})` : '';
    text.textContent =
      p.count === 0
        ? `No failed job of ${p.code} in the last ${p.windowHours} hours to retry.`
        : `Retry all: ${jobs} of ${p.code} from the last ${p.windowHours} hours${more}, ` +
          `${p.perMinute} a minute (about ${seconds(p.etaMs)}), each as an operator's click.`;
    form.elements.code.value = p.code;
    form.elements.max.value = String(p.count);
    confirm.hidden = p.count === 0;
    confirm.textContent = `Retry ${p.count}`;
    (p.count === 0 ? document.getElementById('retry-code-cancel') : confirm).focus();
  } catch (err) {
    result.textContent = `The preview failed: ${err}`;
  } finally {
    button.disabled = false;
  }
}

function describeRun(run) {
  const why = Object.entries(run.why).map(([reason, n]) => `${n} ${reason}`);
  const head = `Retry all of ${run.code}: ${run.clicked} of ${run.selected} re-queued`;
  if (!run.done) return `${head} so far…`;
  return `${head}${why.length ? `; not clicked: ${why.join(', ')}` : ''}${run.interrupted ? ' (interrupted)' : ''}.`;
}

/** Follows the server's run until it ends (no Firestore read: the console's own memory). */
async function followRun() {
  const result = document.getElementById('retry-code-result');
  for (;;) {
    const res = await fetch('/api/retry-code', {
      headers: { accept: 'application/json' },
      credentials: 'same-origin',
    });
    if (!res.ok) return;
    const { run } = await res.json();
    if (!run) return;
    result.dataset.done = String(run.done);
    result.textContent = describeRun(run);
    if (run.done) return;
    await new Promise((r) => window.setTimeout(r, 1000));
  }
}

function retryAllForm(form) {
  const box = document.getElementById('retry-code');
  document.getElementById('retry-code-cancel').addEventListener('click', () => {
    box.hidden = true;
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void postAction(form, 'retry-code-result', (run) => {
      box.hidden = true;
      void followRun();
      return describeRun(run);
    });
  });
}

function renderFinished(state) {
  replaceRows(
    'finished',
    state.finished.map((j) =>
      el(
        'tr',
        { 'data-id': j.id },
        cell('Character', jobLink(j.id, j.name)),
        cell('Finished', ago(j.finishedAt)),
        cell('Took', j.durationMs === null ? '' : `${(j.durationMs / 1000).toFixed(1)} s`),
        cell('Credits', j.credits === null ? '' : String(j.credits)),
      ),
    ),
    'None yet.',
    4,
  );
}

function overview() {
  for (const id of ['pause-form', 'resume-form']) {
    const form = document.getElementById(id);
    if (form) intakeForm(form);
  }
  limitsForm(document.getElementById('limits-form'));
  const retryAll = document.getElementById('retry-code-form');
  if (retryAll) {
    retryAllForm(retryAll);
    // A run started before this page opened: follow it to its end.
    void followRun();
  }
  const events = new EventSource('/events');
  events.addEventListener('state', (e) => {
    const state = JSON.parse(e.data);
    skew = state.serverNow - Date.now();
    setConnection(`Live · ${time(state.serverNow)}`, true);
    renderFleet(state);
    renderControl(state);
    renderQueue(state);
    renderSpend(state);
    // A form being used is not redrawn under the operator's pointer.
    // Not under an operator's hands (a Retry, a Retry all's preview); a code's chip keeps focus.
    const held = document.activeElement?.closest?.('#failed, #failure-codes');
    if (!held || document.activeElement.classList.contains('code-toggle')) renderFailures(state);
    renderFinished(state);
  });
  events.addEventListener('error', () => setConnection('Reconnecting…', false));
}

// ---- one job ---------------------------------------------------------------------------

function jobPage() {
  const id = body.dataset.job;
  const timeline = document.getElementById('timeline');
  const record = document.getElementById('record');
  const source = document.getElementById('source-picture');
  const result = document.getElementById('result-picture');
  const resultCaption = document.getElementById('result-caption');
  const sourceCaption = document.getElementById('source-caption');
  // Status changes this page saw happen (not the status it found on opening).
  const seen = [];
  let last;
  let resultShown = '';
  source.addEventListener('error', () => {
    source.hidden = true;
    sourceCaption.textContent = 'Source: not available';
  });
  result.addEventListener('error', () => {
    result.hidden = true;
    resultCaption.textContent = 'Result: not available';
  });
  source.src = `/jobs/${encodeURIComponent(id)}/source`;

  const events = new EventSource(`/jobs/${encodeURIComponent(id)}/events`);
  events.addEventListener('job', (e) => {
    const d = JSON.parse(e.data);
    setConnection('Live', true);
    if (!d.exists) {
      document.getElementById('job-title').textContent = `No character ${id}`;
      return;
    }
    document.getElementById('job-title').textContent = `${d.name} (${d.id})`;
    // The statuses this page saw change, when Firestore told (beside the job's own times).
    if (last !== undefined && d.status && d.status !== last) {
      seen.push({ status: d.status, at: d.readAt });
    }
    last = d.status;
    const steps = [];
    if (d.job?.requestedAt) steps.push(['requested', d.job.requestedAt]);
    if (d.job?.claimedAt) steps.push([`claimed by ${d.job.owner ?? 'a worker'}`, d.job.claimedAt]);
    // The job's own stage starts (Firestore's clock, from its writes), beside what this page saw.
    for (const s of d.job?.stages ?? [])
      if (s.startedAt) steps.push([`${s.stage} began`, s.startedAt]);
    for (const s of seen) steps.push([`${s.status} (seen here)`, s.at]);
    if (d.job?.finishedAt) steps.push([`finished: ${d.job.state}`, d.job.finishedAt]);
    steps.sort((a, b) => a[1] - b[1]);
    timeline.replaceChildren(
      ...steps.map(([what, at]) => el('li', {}, el('time', { text: time(at) }), ` ${what}`)),
    );
    const rows = [
      ['Status', d.status || 'not requested'],
      ['Owner', d.userId],
      ['Source', d.source],
      ['Job', d.job?.jobId ?? ''],
      ['Held by', d.job?.owner ?? ''],
      ['Attempts', String(d.job?.attempts ?? 0)],
      ['Requested by', d.job?.requestedBy ?? ''],
      ['Took', d.job?.durationMs == null ? '' : `${(d.job.durationMs / 1000).toFixed(1)} s`],
      ['Credits', d.job?.credits == null ? '' : String(d.job.credits)],
      [
        'ClipDrop calls',
        d.job?.calls ? `${d.job.calls.removeBackground} + ${d.job.calls.upscale}` : '',
      ],
      [
        'Round trips',
        d.job?.roundTrips
          ? `${d.job.roundTrips.sequential} in sequence, ${d.job.roundTrips.total} in all`
          : '',
      ],
    ];
    if (d.error) rows.push(['Error', `${d.error.code} at ${d.error.stage}: ${d.error.message}`]);
    record.replaceChildren(
      ...rows.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v })]),
    );
    record.dataset.status = d.status;
    replaceRows(
      'stages',
      (d.job?.stages ?? []).map((s) =>
        el(
          'tr',
          { 'data-stage': s.stage },
          cell('Stage', el('span', { class: `status s-${s.stage}`, text: s.stage })),
          cell('Started', s.startedAt === null ? '' : time(s.startedAt)),
          cell('Took', s.ms === null ? 'running' : `${(s.ms / 1000).toFixed(2)} s`),
        ),
      ),
      'No stage yet.',
      3,
    );
    if (d.hasResult && resultShown !== String(d.job?.finishedAt)) {
      resultShown = String(d.job?.finishedAt);
      result.src = `/jobs/${encodeURIComponent(id)}/result?v=${encodeURIComponent(resultShown)}`;
      result.hidden = false;
      resultCaption.textContent = 'Result';
    } else if (!d.hasResult) {
      result.hidden = true;
      resultCaption.textContent = 'Result: none yet';
    }
  });
  events.addEventListener('error', () => setConnection('Reconnecting…', false));
}

if (body.dataset.page === 'overview') overview();
if (body.dataset.page === 'job') jobPage();
