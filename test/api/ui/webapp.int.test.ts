/**
 * The web app in headless Chromium (Debian's, driven by playwright-core) against the running
 * service (API and worker roles, bullmq on Redis) and the real HAPI servers: each flow a
 * compliance user or an operator goes through, and a screenshot of each page written to
 * docs/screenshots/ (the README shows them).
 */
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Patient } from '@medplum/fhirtypes';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deidKeyFrom } from '../../../src/anonymizer/index.ts';
import { parseDeidKeyEnv } from '../../../src/shared/env.ts';
import { startService } from '../../../src/main.ts';
import type { RunningService } from '../../../src/main.ts';
import { sealingCodec } from '../../../src/sync/index.ts';
import { fhirUrls } from '../../servers/urls.ts';
import { getJson, primeCursors, serviceFiles, storeAt } from '../../sync/live.ts';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = 'docs/screenshots';
const run = randomBytes(4).toString('hex');
const INSTANCE = `ui-${run}`;
const TYPES = ['Patient', 'Observation'] as const;
const key = (): string => randomBytes(16).toString('hex');
const KEYS = { alice: key(), bob: key(), operator: key(), viewer: key() };
/** A Patient the rules refuse (a reference they cannot pseudonymise): quarantined. */
const BAD_PATIENT = `bad${run}`;
const GOOD_PATIENT = `good${run}`;

const urls = fhirUrls();
let service: RunningService;
let browser: Browser;
let page: Page;
let rulesText = '';
let approvedRulesVersion = '';

async function putLocal(resource: Patient & { id: string }): Promise<void> {
  const res = await fetch(`${urls.localB}/Patient/${resource.id}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/fhir+json' },
    body: JSON.stringify(resource),
  });
  expect(res.status).toBeLessThan(300);
}

async function api(path: string, who: keyof typeof KEYS = 'viewer'): Promise<Response> {
  return fetch(`${service.url}${path}`, { headers: { authorization: `Bearer ${KEYS[who]}` } });
}

async function signIn(who: keyof typeof KEYS, hash: string): Promise<void> {
  await page.goto(`${service.url}/ui${hash}`);
  await page.fill('#token', KEYS[who]);
  await page.click('#login button[type=submit]');
  await page.waitForSelector('#signed-in:not([hidden])');
}

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** Replaces the editor's whole text, as a user selecting all and pasting a file would. */
async function setEditor(text: string): Promise<void> {
  await page.click('#editor .cm-content');
  await page.keyboard.press('Control+A');
  // A real paste event (keyboard typing would go through auto-indent).
  await page.evaluate(`(() => {
    const data = new DataTransfer();
    data.setData('text/plain', ${JSON.stringify(text)});
    document.querySelector('#editor .cm-content').dispatchEvent(
      new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }),
    );
  })()`);
}

beforeAll(async () => {
  await mkdir(SHOTS, { recursive: true });
  const { env } = await serviceFiles({
    name: 'webapp',
    globalBase: urls.global,
    instanceId: INSTANCE,
    localBase: urls.localB,
    sendTypes: TYPES,
    apiKeys: [
      `alice:compliance+viewer:${KEYS.alice}`,
      `bob:compliance+viewer:${KEYS.bob}`,
      `ops:operator+viewer:${KEYS.operator}`,
      `view:viewer:${KEYS.viewer}`,
    ].join(','),
    env: { RULES_APPROVAL: 'two-step' },
  });
  // The shared locals hold other tests' data: start this instance's cursors now.
  const k = deidKeyFrom(parseDeidKeyEnv(env));
  await primeCursors(storeAt(urls.global), sealingCodec(k.secret, k.id), INSTANCE, TYPES, new Date(Date.now() - 1000));
  service = await startService({ env, logger: pino({ level: 'silent' }) });
  rulesText = await (await api('/rules')).text();
  await putLocal({ resourceType: 'Patient', id: GOOD_PATIENT, name: [{ family: 'Quintanilla', given: ['Odessa'] }] });
  await putLocal({
    resourceType: 'Patient',
    id: BAD_PATIENT,
    name: [{ family: 'Brightwater' }],
    extension: [{ url: 'http://example.org/referrer', valueReference: { reference: `Zzzq/${run}` } }],
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
    ],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await service?.close();
});

describe('web app in Chromium', () => {
  it('marks a problem of an edited rules file at its line and column', async () => {
    await signIn('alice', '#rules');
    await expect.poll(() => page.textContent('#version')).toMatch(/^in use/);
    // The strict CSP admits the editor's own styles by nonce only: they apply (whitespace kept).
    const csp = (await fetch(`${service.url}/ui`)).headers.get('content-security-policy') ?? '';
    expect(csp).toMatch(/style-src 'self' 'nonce-[A-Za-z0-9+/=]{24}'/);
    expect(csp).not.toContain('unsafe-inline');
    expect(await page.evaluate("getComputedStyle(document.querySelector('.cm-content')).whiteSpace")).toMatch(/^pre/);
    const lines = rulesText.split('\n');
    const at = lines.findIndex((l) => l.trim() === 'method: remove');
    expect(at).toBeGreaterThan(0);
    lines[at] = lines[at]!.replace('remove', 'obliterate');
    await setEditor(lines.join('\n'));
    await page.click('#validate');
    const problem = page.locator('#problems li').first();
    await expect.poll(() => problem.textContent()).toMatch(new RegExp(`^line ${at + 1}, column \\d+`));
    await problem.click(); // scrolls the marked line into view
    await expect.poll(() => page.locator('.cm-lintRange-error').first().textContent()).toContain('obliterate');
    await shot('rules');
  });

  it('previews a sample side by side with the changed fields highlighted', async () => {
    await setEditor(rulesText);
    await page.fill(
      '#sample',
      JSON.stringify({ resourceType: 'Patient', id: 'p1', name: [{ family: 'Hollowell' }], gender: 'female' }),
    );
    await page.click('#preview');
    const family = page.locator('.side-by-side tr', { has: page.locator('th', { hasText: /^name\[0\]\.family$/ }) });
    await expect.poll(() => family.getAttribute('class')).toMatch(/changed|removed/);
    expect(await family.locator('td').first().textContent()).toContain('Hollowell');
    expect(await family.locator('td').nth(1).textContent()).not.toContain('Hollowell');
    const gender = page.locator('.side-by-side tr', { has: page.locator('th', { hasText: /^gender$/ }) });
    expect(await gender.getAttribute('class')).toBe('same');
    await shot('preview');
  });

  it('proposes a version that only another compliance user can approve; workers then use it', async () => {
    const before = (await api('/rules')).headers.get('etag');
    const edited = `${rulesText.trimEnd()}\n# reviewed ${run}\n`;
    await setEditor(edited);
    await page.click('#save');
    await expect.poll(() => page.textContent('#message')).toMatch(/^Proposed/);
    expect((await api('/rules')).headers.get('etag')).toBe(before); // not in use yet
    await page.goto(`${service.url}/ui#history`);
    const proposed = page.locator('#versions tr', { hasText: 'proposed' }).first();
    await proposed.locator('[data-action=approve]').click();
    await expect.poll(() => page.textContent('#message')).toContain('API_ERR_RULES_SELF_APPROVAL');
    expect((await api('/rules')).headers.get('etag')).toBe(before);

    await signIn('bob', '#history');
    await page.locator('#versions tr', { hasText: 'proposed' }).first().locator('[data-action=approve]').click();
    await expect.poll(() => page.textContent('#message')).toMatch(/^Approved/);
    const now = (await api('/rules')).headers.get('etag');
    expect(now).not.toBe(before);
    approvedRulesVersion = ((await (await api('/status')).json()) as { rulesVersion: string }).rulesVersion;
    expect(await (await api('/rules')).text()).toContain(`# reviewed ${run}`);
    // Diff between the version before and the approved one.
    await page.selectOption('#diff-from', { index: 1 });
    await page.selectOption('#diff-to', { index: 0 });
    await page.click('#diff');
    await expect.poll(() => page.locator('.diff-line.added').first().textContent()).toContain(`# reviewed ${run}`);
    await shot('history');
  });

  it('shows coverage as a table of types and Safe Harbor categories', async () => {
    await page.goto(`${service.url}/ui#coverage`);
    await expect.poll(() => page.textContent('#coverage-totals')).toMatch(/uncovered: \d+/);
    expect(await page.locator('#coverage-table thead th').count()).toBe(19); // Type + A..R
    await shot('coverage');
  });

  it('runs a sync with live progress to the end, and retries a quarantined resource', async () => {
    await signIn('operator', '#operations');
    const row = page.locator(`tr[data-channel="${INSTANCE}/Patient"]`);
    await row.locator('[data-action=sync]').click();
    const job = page.locator('#jobs li').first();
    await expect.poll(() => job.getAttribute('data-state'), { timeout: 90_000, interval: 500 }).toBe('completed');
    expect(await job.textContent()).toMatch(/[1-9]\d* resource\(s\)/);
    // Written by workers with the rules bob approved.
    const rulesVersion = ((await (await api('/status')).json()) as { rulesVersion: string }).rulesVersion;
    expect(rulesVersion).toBe(approvedRulesVersion);
    const written = await getJson<{ entry?: { resource: Patient }[] }>(
      `${urls.global}/Patient?_tag=${encodeURIComponent(`urn:fhir-sync:deid:rules-version|${rulesVersion}`)}&_count=200`,
    );
    expect(written.body.entry?.length ?? 0).toBeGreaterThanOrEqual(1);
    expect(JSON.stringify(written.body)).not.toContain('Quintanilla');

    const quarantined = page.locator('#quarantine-rows tr', { hasText: INSTANCE });
    await expect.poll(() => quarantined.count()).toBe(1);
    await shot('operations');
    // The clinic fixes the record at the source, then the operator retries it.
    await putLocal({ resourceType: 'Patient', id: BAD_PATIENT, name: [{ family: 'Brightwater' }] });
    await quarantined.locator('[data-action=retry]').click();
    await expect
      .poll(() => page.locator('#jobs li').first().getAttribute('data-state'), { timeout: 90_000, interval: 500 })
      .toBe('completed');
    await expect.poll(() => quarantined.count(), { timeout: 10_000 }).toBe(0);
  });

  it('shows the registry read-only to a viewer', async () => {
    await signIn('viewer', '#registry');
    await expect.poll(() => page.locator('#registry-rows tr', { hasText: INSTANCE }).count()).toBe(1);
    expect(await page.locator('#page-registry button, #page-registry input').count()).toBe(0);
    await shot('registry');
  });
});
