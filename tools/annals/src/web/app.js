// The annals serve page: one view per address fragment (#/streams, #/stream,
// #/event, #/tail, #/projections, #/verify), each built from the server's
// JSON API. Every value from the store reaches the page as a text node
// (textContent, createTextNode), never as HTML.
'use strict';

const main = document.getElementById('main');
let closeView = () => {};  // ends the current view's event stream, if any

// el('a', {href: '#/x', className: 'c'}, 'text', child): an element whose
// string children become text nodes.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null) continue;
    if (key === 'className') node.className = value;
    else if (key === 'onclick' || key === 'onsubmit') node[key] = value;
    else node.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function link(view, params, text, className) {
  return el('a', {href: href(view, params), className}, text);
}

function href(view, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== '') query.set(key, value);
  }
  const text = query.toString();
  return '#/' + view + (text ? '?' + text : '');
}

async function api(path, params) {
  const query = new URLSearchParams(params || {}).toString();
  const response = await fetch('/api/' + path + (query ? '?' + query : ''));
  const body = await response.json().catch(() => ({error: response.statusText}));
  if (!response.ok) throw new Error(body.error || ('HTTP ' + response.status));
  return body;
}

function show(...nodes) {
  main.replaceChildren(...nodes);
}

function table(headers, rows, id) {
  const head = el('tr', {}, ...headers.map(h => el('th', {className: h.num ? 'num' : ''}, h.text || h)));
  return el('table', {id}, el('thead', {}, head), el('tbody', {}, ...rows));
}

function pretty(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch (e) {
    return text;
  }
}

async function refreshInfo() {
  const info = await api('info');
  const file = document.getElementById('store-file');
  // A file by its name; a PostgreSQL store by its schema (the title shows
  // the URL, which the server gives without its password).
  file.textContent = info.backend === 'postgresql' ? 'PostgreSQL schema ' + info.schema :
                                                     info.store.split('/').pop();
  file.title = info.store;
  document.getElementById('store-head').textContent = 'head ' + info.head_position;
  document.getElementById('version').textContent = 'annals ' + info.version;
}

// ---- views ------------------------------------------------------------------

async function streamsView(params) {
  const prefix = params.get('prefix') || '';
  const input = el('input', {type: 'search', id: 'prefix', placeholder: 'stream id prefix, e.g. account-',
                             'aria-label': 'Stream id prefix'});
  input.value = prefix;
  const form = el('form', {className: 'search', onsubmit: event => {
    event.preventDefault();
    location.hash = href('streams', {prefix: input.value});
  }}, input, el('button', {type: 'submit', id: 'search'}, 'Search'));
  const page = await api('streams', {prefix, after: params.get('after') || '', limit: 50});
  const rows = page.streams.map(s => el('tr', {},
      el('td', {className: 'id'}, link('stream', {id: s.id}, s.id, 'stream-link')),
      el('td', {className: 'num'}, s.version)));
  const pager = el('div', {className: 'pager'});
  if (params.get('after')) pager.append(link('streams', {prefix}, 'First page'));
  if (page.next_after !== null) {
    pager.append(link('streams', {prefix, after: page.next_after}, 'Next page', 'next-page'));
  }
  show(el('h2', {}, prefix ? 'Streams starting with \u201c' + prefix + '\u201d' : 'Streams'), form,
       rows.length ? table(['Stream', {text: 'Version', num: true}], rows, 'streams')
                   : el('p', {className: 'note'}, 'No stream matches.'),
       pager);
  input.focus();
}

async function streamView(params) {
  const id = params.get('id') || '';
  const order = params.get('order') === 'oldest' ? 'oldest' : 'newest';
  const from = params.get('from') || '';
  const page = await api('stream', {id, order, from, limit: 50});
  const toggle = el('p', {className: 'toggle'},
      link('stream', {id, order: 'newest'}, 'Newest first', order === 'newest' ? 'active' : ''),
      link('stream', {id, order: 'oldest'}, 'Oldest first', order === 'oldest' ? 'active' : ''));
  const rows = page.events.map(e => el('tr', {},
      el('td', {className: 'num'}, e.version),
      el('td', {className: 'num'}, link('event', {position: e.position}, e.position, 'event-link')),
      el('td', {className: 'mono'}, e.type),
      el('td', {className: 'mono'}, e.recorded_at)));
  const pager = el('div', {className: 'pager'});
  if (from) pager.append(link('stream', {id, order}, order === 'newest' ? 'Newest' : 'Oldest'));
  if (page.next_from !== null) {
    pager.append(link('stream', {id, order, from: page.next_from}, 'Next page', 'next-page'));
  }
  show(el('h2', {}, 'Stream ', el('span', {className: 'mono', id: 'stream-id'}, page.stream_id)),
       el('p', {className: 'note'}, 'version ' + page.version),
       toggle,
       table([{text: 'Version', num: true}, {text: 'Position', num: true}, 'Type', 'Recorded at'],
             rows, 'events'),
       pager);
}

async function eventView(params) {
  const e = await api('event', {position: params.get('position') || ''});
  const field = (name, value, id) => [el('dt', {}, name), el('dd', {className: 'mono', id}, value)];
  show(el('h2', {}, 'Event at position ' + e.position),
       el('dl', {},
          ...field('stream', link('stream', {id: e.stream_id}, e.stream_id), 'event-stream'),
          ...field('version', e.version),
          ...field('position', e.position),
          ...field('type', e.type, 'event-type'),
          ...field('schema version', e.schema_version),
          ...field('event id', e.event_id),
          ...field('recorded at', e.recorded_at),
          ...field('hash', e.hash, 'event-hash')),
       el('h3', {}, 'Payload'), el('pre', {id: 'payload'}, pretty(e.payload)),
       el('h3', {}, 'Metadata'), el('pre', {id: 'metadata'}, pretty(e.metadata)));
}

function tailView() {
  const status = el('p', {className: 'status', id: 'tail-status'}, 'connecting\u2026');
  const body = el('tbody', {id: 'tail-rows'});
  show(el('h2', {}, 'Live tail'),
       el('p', {className: 'note'}, 'New events appear at the top as they are committed, by any process.'),
       status,
       el('table', {id: 'tail'},
          el('thead', {}, el('tr', {}, el('th', {className: 'num'}, 'Position'), el('th', {}, 'Stream'),
                             el('th', {className: 'num'}, 'Version'), el('th', {}, 'Type'),
                             el('th', {}, 'Recorded at'))),
          body));
  const source = new EventSource('/api/tail');
  source.addEventListener('start', () => { status.textContent = 'live'; });
  source.addEventListener('available', () => {
    status.textContent = 'live';
  });
  source.addEventListener('unavailable', message => {
    status.textContent = 'waiting: ' + JSON.parse(message.data).error;
  });
  source.addEventListener('append', message => {
    const e = JSON.parse(message.data);
    const row = el('tr', {className: 'fresh', 'data-position': e.position},
        el('td', {className: 'num'}, link('event', {position: e.position}, e.position)),
        el('td', {className: 'id'}, link('stream', {id: e.stream_id}, e.stream_id)),
        el('td', {className: 'num'}, e.version),
        el('td', {className: 'mono'}, e.type),
        el('td', {className: 'mono'}, e.recorded_at));
    body.prepend(row);
    while (body.rows.length > 500) body.lastElementChild.remove();
    document.getElementById('store-head').textContent = 'head ' + e.position;
  });
  source.onerror = () => { status.textContent = 'reconnecting\u2026'; };
  return () => source.close();
}

async function projectionsView() {
  const data = await api('projections');
  const parts = [el('h2', {}, 'Projections'),
                 el('p', {className: 'note'}, 'read model ', el('span', {className: 'mono'}, data.read_model))];
  if (!data.projections.length) parts.push(el('p', {className: 'note'}, 'No durable projection has a checkpoint here.'));
  for (const p of data.projections) {
    parts.push(el('h3', {className: 'mono'}, p.name));
    parts.push(el('dl', {},
        el('dt', {}, 'state'), el('dd', {className: 'state-' + p.state}, p.state),
        el('dt', {}, 'checkpoint'), el('dd', {}, p.checkpoint),
        el('dt', {}, 'lag'), el('dd', {}, p.lag + ' (head ' + p.head_position + ')'),
        el('dt', {}, 'updated'), el('dd', {className: 'mono'}, p.updated_at),
        el('dt', {}, 'failure'),
        el('dd', {className: p.failure ? 'error' : ''}, p.failure
            ? 'position ' + p.failure.position + ' after ' + p.failure.attempts + ' attempts: ' + p.failure.message
            : 'none'),
        el('dt', {}, 'parked events'), el('dd', {}, p.parked_count)));
    if (p.parked.length) {
      parts.push(table([{text: 'Position', num: true}, 'Stream', 'Type', 'Error', {text: 'Attempts', num: true}, 'Parked at'],
          p.parked.map(x => el('tr', {},
              el('td', {className: 'num'}, link('event', {position: x.position}, x.position)),
              el('td', {className: 'id'}, x.stream_id), el('td', {className: 'mono'}, x.type),
              el('td', {}, x.error), el('td', {className: 'num'}, x.attempts),
              el('td', {className: 'mono'}, x.parked_at)))));
    }
  }
  show(...parts);
}

function verifyView() {
  const bar = el('progress', {id: 'verify-progress', max: 1, value: 0});
  const count = el('p', {className: 'status', id: 'verify-count'});
  const result = el('p', {id: 'verify-result'});
  let source = null;
  const button = el('button', {id: 'verify', onclick: () => {
    button.disabled = true;
    result.textContent = '';
    result.className = '';
    source = new EventSource('/api/verify');
    source.addEventListener('progress', message => {
      const p = JSON.parse(message.data);
      bar.max = Math.max(1, p.total);
      bar.value = p.checked;
      count.textContent = p.checked + ' of ' + p.total + ' events checked';
    });
    source.addEventListener('result', message => {
      const r = JSON.parse(message.data);
      source.close();
      button.disabled = false;
      result.className = r.ok ? 'ok' : 'error';
      result.textContent = r.ok
          ? 'ok: ' + r.events_checked + ' events, hash chain intact'
          : 'first bad position ' + r.first_bad_position + ': ' + r.reason;
    });
    source.addEventListener('failure', message => {
      const f = JSON.parse(message.data);
      source.close();
      button.disabled = false;
      result.className = 'error';
      result.textContent =
          'not finished after ' + f.checked + ' of ' + f.total + ' events: ' + f.error;
    });
    source.onerror = () => {
      source.close();
      button.disabled = false;
      result.className = 'error';
      result.textContent = 'the connection failed';
    };
  }}, 'Verify the hash chain');
  show(el('h2', {}, 'Verify'),
       el('p', {className: 'note'}, 'Walks the hash chain from the first event to the head.'),
       button, el('p', {}, bar), count, result);
  return () => { if (source) source.close(); };
}

// ---- routing ----------------------------------------------------------------

const views = {
  streams: streamsView, stream: streamView, event: eventView,
  tail: tailView, projections: projectionsView, verify: verifyView,
};

async function route() {
  closeView();
  closeView = () => {};
  const hash = location.hash.replace(/^#\/?/, '');
  const [name, query] = [hash.split('?')[0] || 'streams', hash.split('?').slice(1).join('?')];
  const view = views[name] || streamsView;
  for (const a of document.querySelectorAll('nav a')) {
    const active = a.dataset.view === name || (a.dataset.view === 'streams' && !views[name]);
    a.classList.toggle('active', active);
  }
  try {
    const close = await view(new URLSearchParams(query));
    if (typeof close === 'function') closeView = close;
    refreshInfo().catch(() => {});
  } catch (error) {
    show(el('p', {className: 'error', id: 'error'}, error.message));
  }
}

window.addEventListener('hashchange', route);
route();
