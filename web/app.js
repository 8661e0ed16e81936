// gpulab's web page: lists executions, follows a running execution's log,
// plots outputs/**/history.jsonl and links the outputs. Talks only to the
// server that served it (docs/rest-api.md).
'use strict';

const gl = {
  token: localStorage.getItem('gpulab-token') || '',
  selected: new URLSearchParams(location.search).get('id') || '',
  followAbort: null,
};

function glHeaders() {
  return gl.token ? { Authorization: 'Bearer ' + gl.token } : {};
}

async function glFetch(path) {
  const r = await fetch(path, { headers: glHeaders() });
  if (r.status === 401) {
    document.getElementById('token-form').hidden = false;
    throw new Error('this server needs a bearer token');
  }
  return r;
}

async function glJson(path) {
  const r = await glFetch(path);
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

function glSetStatus(text) {
  document.getElementById('status').textContent = text;
}

function glTime(t) {
  return t ? new Date(t * 1000).toLocaleString() : '-';
}

function glEncodePath(p) {
  return p.split('/').map(encodeURIComponent).join('/');
}

async function glRefreshList() {
  const state = document.getElementById('state-filter').value;
  const q = new URLSearchParams({ limit: '100' });
  if (state) q.set('state', state);
  try {
    const page = await glJson('/api/executions?' + q);
    const body = document.querySelector('#executions tbody');
    body.replaceChildren();
    for (const e of page.executions) {
      const tr = document.createElement('tr');
      tr.dataset.id = e.id;
      if (e.id === gl.selected) tr.classList.add('selected');
      for (const [text, cls] of [[e.id], [e.name], [e.state, 'state-' + e.state],
                                 [glTime(e.created_at)],
                                 [e.exit_code === null ? '-' : String(e.exit_code)]]) {
        const td = document.createElement('td');
        td.textContent = text;
        if (cls) td.className = cls;
        tr.appendChild(td);
      }
      tr.addEventListener('click', () => glSelect(e.id));
      body.appendChild(tr);
    }
    document.getElementById('total').textContent =
        page.total + ' execution(s)' + (page.total > page.executions.length ? ', newest 100 shown' : '');
    glSetStatus('');
  } catch (err) {
    glSetStatus(err.message);
  }
}

// One SVG line chart of `points` [[x, y], ...].
function glChart(title, xName, points) {
  const W = 320, H = 180, L = 48, R = 8, T = 8, B = 28;
  const ns = 'http://www.w3.org/2000/svg';
  const xs = points.map(p => p[0]), ys = points.map(p => p[1]);
  let [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
  const sx = x => L + (x - x0) / (x1 - x0) * (W - L - R);
  const sy = y => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('class', 'chart');
  svg.setAttribute('width', W);
  svg.setAttribute('height', H);
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.dataset.metric = title;
  const add = (tag, attrs, text) => {
    const el = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text !== undefined) el.textContent = text;
    svg.appendChild(el);
    return el;
  };
  add('line', { x1: L, y1: H - B, x2: W - R, y2: H - B });
  add('line', { x1: L, y1: T, x2: L, y2: H - B });
  const fmt = v => Math.abs(v) >= 1000 || (Math.abs(v) < 0.01 && v !== 0) ? v.toExponential(1)
                                                                             : +v.toPrecision(3);
  add('text', { x: 2, y: T + 8 }, fmt(y1));
  add('text', { x: 2, y: H - B }, fmt(y0));
  add('text', { x: L, y: H - 4 }, fmt(x0));
  add('text', { x: W - R, y: H - 4, 'text-anchor': 'end' }, xName + ' ' + fmt(x1));
  const d = points.map((p, i) => (i ? 'L' : 'M') + sx(p[0]).toFixed(1) + ',' + sy(p[1]).toFixed(1))
                .join(' ');
  const path = add('path', { class: 'curve', d });
  path.dataset.points = String(points.length);
  if (points.length === 1) add('circle', { cx: sx(xs[0]), cy: sy(ys[0]), r: 3, fill: '#25a' });
  const fig = document.createElement('figure');
  const cap = document.createElement('figcaption');
  cap.textContent = title;
  fig.append(svg, cap);
  return fig;
}

// Charts of every numeric column of a history.jsonl text.
function glPlotHistory(file, text) {
  const rows = text.split('\n').filter(l => l.trim()).map(l => {
    try { return JSON.parse(l); } catch (e) { return null; }
  }).filter(r => r && typeof r === 'object');
  const xName = rows.some(r => typeof r.iteration === 'number') ? 'iteration'
              : rows.some(r => typeof r.epoch === 'number') ? 'epoch' : 'row';
  const skip = new Set(['iteration', 'epoch', 'time', 'row']);
  const names = [];
  for (const r of rows) {
    for (const [k, v] of Object.entries(r)) {
      if (typeof v === 'number' && !skip.has(k) && !names.includes(k)) names.push(k);
    }
  }
  // Loss, then accuracy and the task's metrics, then learn rate, then the rest.
  const rank = n => /loss/.test(n) ? 0 : /learn_rate|lr$/.test(n) ? 2
                  : /per_second|memory|wait/.test(n) ? 3 : 1;
  names.sort((a, b) => rank(a) - rank(b));
  const figs = [];
  for (const n of names) {
    const pts = rows.map((r, i) => [xName === 'row' ? i : r[xName], r[n]])
                    .filter(p => typeof p[0] === 'number' && typeof p[1] === 'number' &&
                                 isFinite(p[1]));
    if (pts.length) figs.push(glChart(file.replace(/history\.jsonl$/, '') + n, xName, pts));
  }
  return figs;
}

async function glShowOutputs(id) {
  const list = document.getElementById('outputs');
  const charts = document.getElementById('charts');
  const { outputs } = await glJson(`/api/executions/${id}/outputs`);
  list.replaceChildren();
  const figs = [];
  for (const o of outputs) {
    const li = document.createElement('li');
    const a = document.createElement('a');
    const q = new URLSearchParams({ download: '1' });
    if (gl.token) q.set('access_token', gl.token);
    a.href = `/api/executions/${id}/outputs/${glEncodePath(o.path)}?${q}`;
    a.textContent = o.path;
    a.className = 'output';
    li.append(a, ` (${o.bytes} bytes)`);
    list.appendChild(li);
    if (o.path === 'history.jsonl' || o.path.endsWith('/history.jsonl')) {
      const r = await glFetch(`/api/executions/${id}/outputs/${glEncodePath(o.path)}`);
      if (r.ok) figs.push(...glPlotHistory(o.path, await r.text()));
    }
  }
  if (!outputs.length) list.innerHTML = '<li class="muted">none yet</li>';
  if (figs.length) charts.replaceChildren(...figs);
}

// The log, followed (a chunked response) while the execution runs.
async function glShowLog(id, follow) {
  const pre = document.getElementById('log');
  if (gl.followAbort) gl.followAbort.abort();
  gl.followAbort = new AbortController();
  pre.textContent = '';
  const r = await fetch(`/api/executions/${id}/log${follow ? '?follow=1' : ''}`,
                        { headers: glHeaders(), signal: gl.followAbort.signal });
  if (!r.ok) return;
  const reader = r.body.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.textContent += decoder.decode(value, { stream: true });
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  }
}

async function glSelect(id) {
  gl.selected = id;
  history.replaceState(null, '', '?id=' + encodeURIComponent(id));
  for (const tr of document.querySelectorAll('#executions tbody tr')) {
    tr.classList.toggle('selected', tr.dataset.id === id);
  }
  document.getElementById('detail').hidden = false;
  document.getElementById('charts').innerHTML =
      '<p class="muted">No history.jsonl in the outputs.</p>';
  try {
    const e = await glJson(`/api/executions/${id}`);
    document.getElementById('detail-title').textContent = `${e.name} (${e.id})`;
    const st = document.getElementById('detail-state');
    st.textContent = `${e.state}` + (e.exit_code === null ? '' : `, exit ${e.exit_code}`) +
                     (e.message ? `: ${e.message}` : '') + `; started ${glTime(e.started_at)}`;
    st.className = 'state-' + e.state;
    await glShowOutputs(id);
    const live = ['pending', 'fetching', 'running'].includes(e.state);
    const logDone = glShowLog(id, live).catch(() => {});
    if (live) {
      // Redraw curves while it runs; once the log ends, the final state.
      const timer = setInterval(() => gl.selected === id && glShowOutputs(id).catch(() => {}), 5000);
      logDone.then(() => {
        clearInterval(timer);
        if (gl.selected === id) glSelect(id);
      });
    }
    document.body.dataset.loaded = id;
  } catch (err) {
    glSetStatus(err.message);
  }
}

document.getElementById('token-form').addEventListener('submit', ev => {
  ev.preventDefault();
  gl.token = document.getElementById('token').value.trim();
  localStorage.setItem('gpulab-token', gl.token);
  document.getElementById('token-form').hidden = true;
  glRefreshList();
  if (gl.selected) glSelect(gl.selected);
});
document.getElementById('state-filter').addEventListener('change', glRefreshList);
glRefreshList();
if (gl.selected) glSelect(gl.selected);
setInterval(glRefreshList, 3000);
