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
  // With no budget the workers count no credits in the budget's document: the top users'
  // days are what is known.
  const listed = spend.topUsers.reduce((n, u) => n + u.credits, 0);
  const figures =
    spend.budget === 0
      ? [['Budget', 'none'], ['Credits (top users)', String(listed)], balance]
      : [
          ['Budget', String(spend.budget)],
          ['Committed', String(spend.committed)],
          ['Spent', String(spend.spent)],
          ['Held', String(spend.held)],
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
      ),
    ),
    'No credits spent today.',
    3,
  );
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

function renderFailures(state) {
  const f = state.failures;
  const total = f.byCode.reduce((n, c) => n + c.count, 0);
  document.getElementById('failures-summary').textContent =
    `${total} failure${total === 1 ? '' : 's'} in the last ${f.windowHours} hours${f.truncated ? ' (among the latest listed)' : ''}.`;
  document
    .getElementById('failure-codes')
    .replaceChildren(
      ...f.byCode.map((c) =>
        el(
          'li',
          { 'data-code': c.code },
          el('span', { class: 'mono', text: c.code }),
          ` ${c.count}`,
        ),
      ),
    );
  replaceRows(
    'failed',
    f.items.map((x) => {
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
    if (!document.activeElement?.closest?.('#failed')) renderFailures(state);
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
