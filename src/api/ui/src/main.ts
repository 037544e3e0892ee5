/**
 * The web app served at /ui: sign-in with an API key or JWT (kept in this tab only), then
 * pages chosen by the location hash: #rules, #history, #coverage, #operations, #registry.
 * The server enforces roles; a page a role may not use shows the server's 403.
 */
import { setToken, token } from './api.ts';
import { $, say } from './dom.ts';
import { follow, loadQuarantine, loadRegistry, loadStatus } from './ops.ts';
import { initRules, loadCoverage, loadRules, loadVersions } from './rules.ts';

const PAGES = ['rules', 'history', 'coverage', 'operations', 'registry'] as const;
type Page = (typeof PAGES)[number];

const LOADERS: Record<Page, () => Promise<void>> = {
  rules: loadRules,
  history: loadVersions,
  coverage: loadCoverage,
  operations: () => Promise.all([loadStatus(), loadQuarantine()]).then(() => undefined),
  registry: loadRegistry,
};

function current(): Page {
  const name = location.hash.replace(/^#/, '');
  return (PAGES as readonly string[]).includes(name) ? (name as Page) : 'rules';
}

async function show(): Promise<void> {
  const page = current();
  for (const p of PAGES) {
    $(`page-${p}`).hidden = p !== page;
    $(`nav-${p}`).classList.toggle('active', p === page);
  }
  if (token() === '') {
    say('Sign in with an API key or a JWT.');
    return;
  }
  await LOADERS[page]();
}

function init(): void {
  initRules();
  const form = $('login') as HTMLFormElement;
  const input = $('token') as HTMLInputElement;
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    setToken(input.value.trim());
    input.value = '';
    $('signed-in').hidden = token() === '';
    say(token() === '' ? 'Signed out.' : 'Signed in (this tab only).', 'ok');
    void show();
  });
  $('sign-out').addEventListener('click', () => {
    setToken('');
    $('signed-in').hidden = true;
    say('Signed out.');
  });
  $('signed-in').hidden = token() === '';
  $('refresh-ops').addEventListener('click', () => void LOADERS.operations());
  window.addEventListener('hashchange', () => void show());
  void show();
}

// Exposed for the page's own buttons only; nothing global beyond this.
export { follow };
init();
