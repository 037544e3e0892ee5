/**
 * The operations pages: per instance and type the lag, last pass and its result, quarantine
 * count; a manual sync (or a backfill from a date) with live progress and throughput; the
 * quarantine list with reasons and retry; the instance registry, read-only.
 */
import { call, json, problemText } from './api.ts';
import { $, button, clear, h, say } from './dom.ts';

interface TypeStatus {
  readonly instanceId: string;
  readonly resourceType: string;
  readonly lagSeconds?: number;
  readonly lastPassAt?: string;
  readonly lastPassResult?: string;
  readonly quarantineCount?: number;
}

interface JobInfo {
  readonly id: string;
  readonly kind: string;
  readonly instanceId: string;
  readonly resourceType?: string;
  readonly state: string;
  readonly progress: { pages: number; resources: number; deletes: number; quarantined: number };
  readonly createdAt?: string;
  readonly finishedAt?: string;
  readonly failedCode?: string;
}

interface QuarantineItem {
  readonly id: string;
  readonly instanceId: string;
  readonly resourceType: string;
  readonly pseudonymousId: string;
  readonly reasonCode: string;
  readonly at?: string;
}

const POLL_MS = 500;

export async function loadStatus(): Promise<void> {
  const res = await call<{ types: TypeStatus[]; rulesVersion: string }>('GET', '/status');
  const rows = clear($('status-rows'));
  if (!res.ok) {
    say(problemText(res), 'error');
    return;
  }
  for (const t of res.data.types) {
    const since = h('input', { type: 'date', 'aria-label': `Backfill ${t.instanceId} ${t.resourceType} from` });
    rows.append(
      h(
        'tr',
        { 'data-channel': `${t.instanceId}/${t.resourceType}`, class: t.lastPassResult === 'failed' ? 'failed' : '' },
        h('td', {}, t.instanceId),
        h('td', {}, t.resourceType),
        h('td', { class: 'num' }, t.lagSeconds === undefined ? '–' : `${t.lagSeconds} s`),
        h('td', {}, t.lastPassAt ?? 'never'),
        h('td', {}, t.lastPassResult ?? ''),
        h('td', { class: 'num' }, String(t.quarantineCount ?? 0)),
        h(
          'td',
          { class: 'actions' },
          button('Sync now', () => void trigger(t.instanceId, t.resourceType, since.value), { 'data-action': 'sync' }),
          since,
        ),
      ),
    );
  }
}

async function trigger(instanceId: string, resourceType: string, since: string): Promise<void> {
  const body = since === '' ? undefined : json({ since: new Date(`${since}T00:00:00Z`).toISOString() });
  const res = await call<{ jobId: string }>('POST', `/sync/${instanceId}/${resourceType}`, body ?? json({}));
  if (!res.ok) {
    say(problemText(res), 'error');
    return;
  }
  say(`Sync of ${instanceId}/${resourceType} queued${since ? ` from ${since}` : ''}.`, 'ok');
  await follow(res.data.jobId);
}

/** Polls a job until it ends, updating its line: state, counters, throughput. */
export async function follow(jobId: string): Promise<void> {
  const line = h('li', { 'data-job': jobId });
  $('jobs').prepend(line);
  const started = Date.now();
  for (;;) {
    const res = await call<JobInfo>('GET', `/jobs/${encodeURIComponent(jobId)}`);
    if (!res.ok) {
      line.textContent = `${jobId}: ${problemText(res)}`;
      return;
    }
    const j = res.data;
    const seconds = Math.max(
      0.001,
      ((j.finishedAt ? Date.parse(j.finishedAt) : Date.now()) - (j.createdAt ? Date.parse(j.createdAt) : started)) /
        1000,
    );
    const rate = j.progress.resources / seconds;
    line.className = `job ${j.state}`;
    line.dataset.state = j.state;
    clear(line).append(
      h('strong', {}, `${j.kind} ${j.instanceId}${j.resourceType ? `/${j.resourceType}` : ''}`),
      ` ${j.state}: ${j.progress.pages} page(s), ${j.progress.resources} resource(s), ${j.progress.deletes} delete(s), ` +
        `${j.progress.quarantined} quarantined · ${rate.toFixed(1)} resources/s${j.failedCode ? ` · ${j.failedCode}` : ''}`,
      h('progress', j.state === 'completed' || j.state === 'failed' ? { max: '1', value: '1' } : {}),
    );
    if (j.state === 'completed' || j.state === 'failed' || j.state === 'unknown') {
      await Promise.all([loadStatus(), loadQuarantine()]);
      return;
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

export async function loadQuarantine(): Promise<void> {
  const res = await call<{ count: number; items: QuarantineItem[] }>('GET', '/quarantine');
  const rows = clear($('quarantine-rows'));
  if (!res.ok) {
    say(problemText(res), 'error');
    return;
  }
  $('quarantine-count').textContent = String(res.data.count);
  for (const q of res.data.items) {
    rows.append(
      h(
        'tr',
        { 'data-id': q.id },
        h('td', {}, q.instanceId),
        h('td', {}, q.resourceType),
        h('td', { class: 'mono' }, q.pseudonymousId),
        h('td', {}, q.reasonCode),
        h('td', {}, q.at ?? ''),
        h(
          'td',
          { class: 'actions' },
          button('Retry', () => void retry([q.id]), { 'data-action': 'retry' }),
        ),
      ),
    );
  }
}

async function retry(ids: string[]): Promise<void> {
  const res = await call<{ jobId: string }>('POST', '/quarantine/retry', json({ ids }));
  if (!res.ok) {
    say(problemText(res), 'error');
    return;
  }
  say('Retry queued.', 'ok');
  await follow(res.data.jobId);
}

export async function loadRegistry(): Promise<void> {
  const res = await call<{ instances: Record<string, unknown>[] }>('GET', '/instances');
  const rows = clear($('registry-rows'));
  if (!res.ok) {
    say(problemText(res), 'error');
    return;
  }
  const str = (v: unknown): string => (typeof v === 'string' || typeof v === 'boolean' ? String(v) : '');
  for (const i of res.data.instances) {
    const feed = (i.feed as { kind?: string } | undefined)?.kind ?? '';
    rows.append(
      h(
        'tr',
        {},
        h('td', {}, str(i.id)),
        h('td', {}, str(i.enabled ?? true)),
        h('td', { class: 'mono' }, str(i.baseUrl)),
        h('td', {}, feed),
        h('td', {}, ((i.sendTypes as string[] | undefined) ?? []).join(', ')),
        h('td', {}, ((i.receiveAdminTypes as string[] | undefined) ?? []).join(', ')),
        h('td', { class: 'mono' }, str(i.schedule)),
      ),
    );
  }
}
