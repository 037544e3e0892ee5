// The rules page: plain JS, no build step. The token lives only in this page's memory and
// goes out only as the Authorization header of calls to this same server.
/* global document, fetch, getComputedStyle */
'use strict';

(function main() {
  const $ = (id) => document.getElementById(id);
  const state = { token: '', version: '' };
  const SAMPLE = {
    resourceType: 'Patient',
    id: 'example',
    name: [{ family: 'Example', given: ['Pat'] }],
    birthDate: '1970-01-01',
    address: [{ city: 'Springfield', postalCode: '12345' }],
  };

  function say(text, kind) {
    const el = $('message');
    el.textContent = text;
    el.className = kind || '';
  }

  async function call(method, path, body, contentType, headers) {
    const init = { method, headers: Object.assign({ authorization: 'Bearer ' + state.token }, headers || {}) };
    if (body !== undefined) {
      init.body = body;
      init.headers['content-type'] = contentType;
    }
    const res = await fetch(path, init);
    const type = res.headers.get('content-type') || '';
    const data = type.includes('json') ? await res.json() : await res.text();
    return { ok: res.ok, status: res.status, data, etag: res.headers.get('etag') };
  }

  function problemText(p) {
    return (p && (p.detail || p.title)) || 'request failed';
  }

  function showProblems(items) {
    const list = $('problems');
    list.textContent = '';
    for (const item of items || []) {
      const li = document.createElement('li');
      const where = item.line
        ? 'line ' + item.line + (item.column ? ', column ' + item.column : '')
        : item.pointer || item.location || '';
      li.textContent = (where ? where + ': ' : '') + item.detail;
      if (item.line) {
        li.title = 'Show this line';
        li.addEventListener('click', () => selectLine(item.line));
      }
      list.appendChild(li);
    }
  }

  function selectLine(line) {
    const area = $('rules');
    const lines = area.value.split('\n');
    let start = 0;
    for (let i = 0; i < line - 1 && i < lines.length; i++) {
      start += lines[i].length + 1;
    }
    const end = start + (lines[line - 1] || '').length;
    area.focus();
    area.setSelectionRange(start, end);
    const lineHeight = parseFloat(getComputedStyle(area).lineHeight) || 18;
    area.scrollTop = Math.max(0, (line - 4) * lineHeight);
  }

  function showCursor() {
    const area = $('rules');
    const before = area.value.slice(0, area.selectionStart).split('\n');
    $('cursor').textContent = 'line ' + before.length + ', column ' + (before[before.length - 1].length + 1);
  }

  function shortVersion(v) {
    return v ? v.slice(0, 12) : '';
  }

  async function loadRules() {
    const r = await call('GET', '/rules');
    if (!r.ok) {
      return say(problemText(r.data), 'bad');
    }
    $('rules').value = r.data;
    state.version = (r.etag || '').replace(/"/g, '');
    $('version').textContent = 'version ' + shortVersion(state.version);
    showProblems([]);
    say('Rules loaded.', 'ok');
  }

  async function validate() {
    const r = await call('POST', '/rules/validate', $('rules').value, 'application/yaml');
    if (!r.ok) {
      return say(problemText(r.data), 'bad');
    }
    showProblems(r.data.errors);
    say(
      r.data.valid
        ? 'Valid (would be version ' + shortVersion(r.data.version) + ').'
        : 'Not valid: see the problems below.',
      r.data.valid ? 'ok' : 'bad',
    );
  }

  async function save() {
    const headers = state.version ? { 'if-match': '"' + state.version + '"' } : {};
    const r = await call('PUT', '/rules', $('rules').value, 'application/yaml', headers);
    if (!r.ok) {
      showProblems(r.data && r.data.errors);
      return say(problemText(r.data).replace(/\.?$/, '.') + ' The rules in use are unchanged.', 'bad');
    }
    state.version = r.data.version;
    $('version').textContent = 'version ' + shortVersion(state.version);
    showProblems([]);
    say(
      r.data.changed
        ? 'Saved as version ' + shortVersion(r.data.version) + '; now in use.'
        : 'No change: this is the version in use.',
      'ok',
    );
    await loadVersions();
  }

  async function preview() {
    let parsed;
    try {
      parsed = JSON.parse($('sample').value);
    } catch {
      return say('The sample is not valid JSON.', 'bad');
    }
    const body = Array.isArray(parsed) ? { resources: parsed } : { resource: parsed };
    if ($('use-draft').checked) {
      body.rules = $('rules').value;
    }
    const r = await call('POST', '/rules/preview', JSON.stringify(body), 'application/json');
    if (!r.ok) {
      showProblems(r.data && r.data.errors);
      $('preview-out').textContent = '';
      return say(problemText(r.data), 'bad');
    }
    $('preview-out').textContent = JSON.stringify(r.data, null, 2);
    say('Preview with rules version ' + shortVersion(r.data.rulesVersion) + ' (nothing was saved).', 'ok');
  }

  async function loadVersions() {
    const r = await call('GET', '/rules/versions');
    if (!r.ok) {
      return say(problemText(r.data), 'bad');
    }
    const body = $('versions');
    body.textContent = '';
    for (const v of r.data.versions) {
      const tr = document.createElement('tr');
      if (v.version === r.data.current) {
        tr.className = 'current';
      }
      const cells = [shortVersion(v.version), v.author, new Date(v.at).toLocaleString(), v.bytes + ' B'];
      for (const text of cells) {
        const td = document.createElement('td');
        td.textContent = text;
        tr.appendChild(td);
      }
      const open = document.createElement('td');
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = 'Open';
      button.addEventListener('click', () => openVersion(v.version));
      open.appendChild(button);
      tr.appendChild(open);
      body.appendChild(tr);
    }
  }

  async function openVersion(version) {
    const r = await call('GET', '/rules/versions/' + version);
    if (!r.ok) {
      return say(problemText(r.data), 'bad');
    }
    $('rules').value = r.data;
    say('Opened version ' + shortVersion(version) + ' in the editor; Save makes it the rules in use.', 'ok');
  }

  async function coverage() {
    const r = await call('GET', '/rules/coverage');
    $('coverage-out').textContent = r.ok ? JSON.stringify(r.data.coverage, null, 2) : problemText(r.data);
  }

  function guard(fn) {
    return async () => {
      if (!state.token) {
        return say('Type a token first.', 'bad');
      }
      try {
        await fn();
      } catch {
        say('The service did not answer.', 'bad');
      }
    };
  }

  $('login').addEventListener('submit', (e) => {
    e.preventDefault();
    state.token = $('token').value.trim();
    void guard(async () => {
      await loadRules();
      await loadVersions();
    })();
  });
  $('reload').addEventListener('click', guard(loadRules));
  $('validate').addEventListener('click', guard(validate));
  $('save').addEventListener('click', guard(save));
  $('preview').addEventListener('click', guard(preview));
  $('load-versions').addEventListener('click', guard(loadVersions));
  $('coverage').addEventListener('click', guard(coverage));
  $('rules').addEventListener('keyup', showCursor);
  $('rules').addEventListener('click', showCursor);
  $('sample').value = JSON.stringify(SAMPLE, null, 2);
})();
