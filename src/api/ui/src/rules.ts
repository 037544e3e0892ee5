/**
 * The compliance pages: the rules editor (YAML highlighting, problems marked at their line and
 * column), the preview (before and after side by side, changed fields highlighted), version
 * history (diff of any two versions, approve, reject, revert) and the coverage table.
 */
import { basicSetup, EditorView } from 'codemirror';
import { yaml as yamlLanguage } from '@codemirror/lang-yaml';
import { lintGutter, setDiagnostics } from '@codemirror/lint';
import type { Diagnostic } from '@codemirror/lint';
import { diffLines } from 'diff';
import { call, json, problemText, yaml } from './api.ts';
import type { Problem, ProblemItem } from './api.ts';
import { $, button, clear, h, say, short } from './dom.ts';

interface VersionInfo {
  readonly version: string;
  readonly rulesVersion: string;
  readonly author: string;
  readonly at: string;
  readonly bytes: number;
  readonly status?: string;
  readonly inUse?: boolean;
  readonly approvedBy?: string;
  readonly rejectedBy?: string;
}

let editor: EditorView | undefined;
let inUse = '';

export function initRules(): void {
  editor = new EditorView({
    doc: '',
    extensions: [
      basicSetup,
      yamlLanguage(),
      lintGutter(),
      // The page's CSP admits style elements with this response's nonce only.
      EditorView.cspNonce.of(document.querySelector('meta[name=csp-nonce]')?.getAttribute('content') ?? ''),
    ],
    parent: $('editor'),
  });
  $('reload').addEventListener('click', () => void loadRules());
  $('validate').addEventListener('click', () => void validate());
  $('save').addEventListener('click', () => void save());
  $('preview').addEventListener('click', () => void preview());
  $('diff').addEventListener('click', () => void diffVersions());
  (document.getElementById('sample') as HTMLTextAreaElement).value = JSON.stringify(SAMPLE, null, 2);
}

const SAMPLE = {
  resourceType: 'Patient',
  id: 'example',
  name: [{ family: 'Example', given: ['Pat'] }],
  birthDate: '1970-01-01',
  telecom: [{ system: 'phone', value: '555-0100' }],
  address: [{ line: ['1 Main St'], city: 'Springfield', postalCode: '12345' }],
};

function text(): string {
  return editor?.state.doc.toString() ?? '';
}

/** Marks each problem at its line and column in the editor and lists it under it. */
function showProblems(items: readonly ProblemItem[]): void {
  const list = clear($('problems'));
  if (editor === undefined) {
    return;
  }
  const doc = editor.state.doc;
  const diagnostics: Diagnostic[] = [];
  for (const item of items) {
    const where = item.line ? `line ${item.line}${item.column ? `, column ${item.column}` : ''}` : (item.pointer ?? '');
    const li = h('li', {}, `${where ? `${where}: ` : ''}${item.detail}`);
    if (item.line !== undefined && item.line >= 1 && item.line <= doc.lines) {
      const line = doc.line(item.line);
      const from = Math.min(line.to, line.from + Math.max(0, (item.column ?? 1) - 1));
      diagnostics.push({ from, to: Math.max(from, line.to), severity: 'error', message: item.detail });
      li.addEventListener('click', () => {
        editor?.dispatch({ selection: { anchor: from }, effects: EditorView.scrollIntoView(from, { y: 'center' }) });
        editor?.focus();
      });
    }
    list.append(li);
  }
  editor.dispatch(setDiagnostics(editor.state, diagnostics));
}

export async function loadRules(): Promise<void> {
  const res = await call<string>('GET', '/rules');
  if (!res.ok) {
    say(problemText(res), 'error');
    return;
  }
  inUse = (res.etag ?? '').replace(/"/g, '');
  editor?.dispatch({ changes: { from: 0, to: editor.state.doc.length, insert: res.data } });
  $('version').textContent = `in use: ${short(inUse)}`;
  showProblems([]);
  await loadVersions();
}

async function validate(): Promise<void> {
  const res = await call<{ valid: boolean; errors?: ProblemItem[] }>('POST', '/rules/validate', yaml(text()));
  if (!res.ok) {
    say(problemText(res), 'error');
    return;
  }
  showProblems(res.data.errors ?? []);
  say(
    res.data.valid ? 'The rules are valid.' : `${res.data.errors?.length ?? 0} problem(s) found.`,
    res.data.valid ? 'ok' : 'error',
  );
}

async function save(): Promise<void> {
  const res = await call<VersionInfo & Problem>('PUT', '/rules', yaml(text()), { 'if-match': `"${inUse}"` });
  if (res.status === 422) {
    showProblems(res.data.errors ?? []);
    say('Not saved: the rules have problems.', 'error');
    return;
  }
  if (!res.ok) {
    say(problemText(res), 'error');
    return;
  }
  showProblems([]);
  say(
    res.status === 202
      ? `Proposed ${short(res.data.version)}: another compliance user must approve it before workers use it.`
      : `Saved ${short(res.data.version)}: workers use it now.`,
    'ok',
  );
  await loadRules();
}

/** Input and output flattened to `path = value` rows, changed rows highlighted. */
async function preview(): Promise<void> {
  let sample: unknown;
  try {
    sample = JSON.parse((document.getElementById('sample') as HTMLTextAreaElement).value);
  } catch {
    say('The sample is not valid JSON.', 'error');
    return;
  }
  const draft = (document.getElementById('use-draft') as HTMLInputElement).checked;
  const resources = Array.isArray(sample) ? sample : [sample];
  const res = await call<{ outcomes: { ok: boolean; resource?: unknown; code?: string; location?: string }[] }>(
    'POST',
    '/rules/preview',
    json({ resources, ...(draft ? { rules: text() } : {}) }),
  );
  const out = clear($('preview-out'));
  if (!res.ok) {
    say(problemText(res), 'error');
    return;
  }
  res.data.outcomes.forEach((o, i) => {
    if (!o.ok) {
      out.append(h('p', { class: 'error' }, `Resource ${i + 1} fails: ${o.code ?? ''} at ${o.location ?? '?'}`));
      return;
    }
    out.append(sideBySide(flatten(resources[i]), flatten(o.resource)));
  });
  say('Preview done; nothing was saved or sent.', 'ok');
}

function flatten(value: unknown, path = '', out = new Map<string, string>()): Map<string, string> {
  if (Array.isArray(value)) {
    value.forEach((v, i) => flatten(v, `${path}[${i}]`, out));
  } else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      flatten(v, path === '' ? k : `${path}.${k}`, out);
    }
  } else {
    out.set(path, JSON.stringify(value));
  }
  return out;
}

function sideBySide(before: Map<string, string>, after: Map<string, string>): HTMLTableElement {
  const paths = [...new Set([...before.keys(), ...after.keys()])];
  const body = h('tbody');
  for (const p of paths) {
    const a = before.get(p);
    const b = after.get(p);
    const kind = a === b ? 'same' : a === undefined ? 'added' : b === undefined ? 'removed' : 'changed';
    body.append(h('tr', { class: kind }, h('th', {}, p), h('td', {}, a ?? ''), h('td', {}, b ?? '')));
  }
  return h(
    'table',
    { class: 'side-by-side' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Element'), h('th', {}, 'Before'), h('th', {}, 'After'))),
    body,
  );
}

export async function loadVersions(): Promise<void> {
  const res = await call<{ versions: VersionInfo[] }>('GET', '/rules/versions');
  const rows = clear($('versions'));
  if (!res.ok) {
    say(problemText(res), 'error');
    return;
  }
  const from = clear($('diff-from')) as HTMLSelectElement;
  const to = clear($('diff-to')) as HTMLSelectElement;
  const list = res.data.versions; // newest first
  for (const v of list) {
    const status = v.status ?? (v.version === inUse ? 'approved' : '');
    const actions = h('td', { class: 'actions' });
    if (status === 'proposed') {
      actions.append(
        button('Approve', () => void act(v.version, 'approve'), { class: 'primary', 'data-action': 'approve' }),
        button('Reject', () => void act(v.version, 'reject'), { 'data-action': 'reject' }),
      );
    }
    if (v.version !== inUse && status !== 'proposed') {
      actions.append(button('Revert to this', () => void act(v.version, 'revert'), { 'data-action': 'revert' }));
    }
    actions.append(button('Open', () => void open(v.version)));
    rows.append(
      h(
        'tr',
        { 'data-version': v.version, class: v.version === inUse || v.inUse ? 'in-use' : '' },
        h('td', { class: 'mono' }, short(v.version)),
        h(
          'td',
          {},
          status +
            (v.approvedBy ? ` by ${v.approvedBy}` : v.rejectedBy ? ` by ${v.rejectedBy}` : '') +
            (v.version === inUse || v.inUse ? ' (in use)' : ''),
        ),
        h('td', {}, v.author),
        h('td', {}, v.at),
        h('td', {}, String(v.bytes)),
        actions,
      ),
    );
    from.append(h('option', { value: v.version }, `${short(v.version)} ${v.at}`));
    to.append(h('option', { value: v.version }, `${short(v.version)} ${v.at}`));
  }
  if (list.length > 1) {
    from.selectedIndex = 1;
  }
}

async function act(version: string, action: 'approve' | 'reject' | 'revert'): Promise<void> {
  const res = await call<VersionInfo>('POST', `/rules/versions/${version}/${action}`);
  if (!res.ok) {
    say(problemText(res), 'error');
    return;
  }
  const done = { approve: 'Approved; workers use', reject: 'Rejected', revert: 'Reverted to the text of' }[action];
  say(`${done} ${short(version)}.`, 'ok');
  await loadRules();
}

async function open(version: string): Promise<void> {
  const res = await call<string>('GET', `/rules/versions/${version}`);
  if (res.ok) {
    editor?.dispatch({ changes: { from: 0, to: editor.state.doc.length, insert: res.data } });
    say(`Opened ${short(version)} in the editor (not saved).`, 'ok');
  }
}

async function diffVersions(): Promise<void> {
  const a = ($('diff-from') as HTMLSelectElement).value;
  const b = ($('diff-to') as HTMLSelectElement).value;
  const [ra, rb] = await Promise.all([
    call<string>('GET', `/rules/versions/${a}`),
    call<string>('GET', `/rules/versions/${b}`),
  ]);
  const out = clear($('diff-out'));
  if (!ra.ok || !rb.ok) {
    say(problemText(ra.ok ? rb : ra), 'error');
    return;
  }
  for (const part of diffLines(ra.data, rb.data)) {
    const kind = part.added ? 'added' : part.removed ? 'removed' : 'same';
    const sign = part.added ? '+ ' : part.removed ? '- ' : '  ';
    const lines = part.value.replace(/\n$/, '').split('\n');
    for (const line of kind === 'same' && lines.length > 6 ? [...lines.slice(0, 2), '…', ...lines.slice(-2)] : lines) {
      out.append(h('div', { class: `diff-line ${kind}` }, sign + line));
    }
  }
}

const CATEGORIES = 'ABCDEFGHIJKLMNOPQR'.split('');
const GROUPS = ['uncovered', 'conditional', 'kept', 'scrubOnly'] as const;
type ByType = Record<string, Partial<Record<string, readonly string[]>>>;

/** The coverage report as a table: one row per resource type, one column per Safe Harbor category. */
export async function loadCoverage(): Promise<void> {
  const res = await call<{ coverage: Record<(typeof GROUPS)[number], ByType> & { totals: Record<string, number> } }>(
    'GET',
    '/rules/coverage',
  );
  const table = clear($('coverage-table'));
  if (!res.ok) {
    say(problemText(res), 'error');
    return;
  }
  const c = res.data.coverage;
  const types = [...new Set(GROUPS.flatMap((g) => Object.keys(c[g] ?? {})))].sort();
  $('coverage-totals').textContent = GROUPS.map((g) => `${g}: ${String(c.totals?.[g] ?? 0)}`).join(' · ');
  table.append(h('thead', {}, h('tr', {}, h('th', {}, 'Type'), ...CATEGORIES.map((k) => h('th', {}, k)))));
  const body = h('tbody');
  for (const type of types) {
    const row = h('tr', {}, h('th', {}, type));
    for (const k of CATEGORIES) {
      const cell = h('td');
      for (const g of GROUPS) {
        const paths = c[g]?.[type]?.[k] ?? [];
        if (paths.length > 0) {
          cell.append(h('span', { class: `cov ${g}`, title: paths.join('\n') }, `${g} ${paths.length}`));
        }
      }
      row.append(cell);
    }
    body.append(row);
  }
  if (types.length === 0) {
    body.append(h('tr', {}, h('td', { colspan: String(CATEGORIES.length + 1) }, 'Every element is covered.')));
  }
  table.append(body);
}
