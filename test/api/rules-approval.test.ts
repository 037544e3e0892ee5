/**
 * Four-eyes approval of rules versions (RULES_APPROVAL=two-step): a save is proposed and the
 * rules in use stay until another compliance user approves it; the author cannot; a rejected or
 * approved version cannot be decided again; revert proposes an old text; decisions survive a
 * restart of the store (append-only index) and are audited.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFileRulesStore } from '../../src/anonymizer/index.ts';
import { bearer, KEYS, RULES_V1, RULES_V2, setup, testEngine } from './helpers.ts';
import type { TestContext } from './helpers.ts';

const yaml = { 'content-type': 'application/yaml' };

describe('four-eyes approval of rules', () => {
  let ctx: TestContext;
  const seen: string[] = [];
  beforeEach(async () => {
    ctx = await setup({}, { approval: 'two-step' });
    seen.length = 0;
    ctx.rules.onRulesChanged((s) => seen.push(s.version));
  });
  afterEach(() => ctx.app.close());

  const put = (text: string, key: string = KEYS.compliance) =>
    ctx.app.inject({ method: 'PUT', url: '/rules', headers: { ...bearer(key), ...yaml }, payload: text });
  const decide = (version: string, what: string, key: string) =>
    ctx.app.inject({ method: 'POST', url: `/rules/versions/${version}/${what}`, headers: bearer(key) });
  const versions = async () =>
    (await ctx.app.inject({ method: 'GET', url: '/rules/versions', headers: bearer(KEYS.viewer) })).json<{
      approval: string;
      versions: { version: string; status: string; inUse: boolean; approvedBy?: string }[];
    }>();

  it('proposes a save; only another compliance user can put it in use', async () => {
    const before = ctx.rules.current().version;
    const saved = await put(RULES_V2);
    expect(saved.statusCode).toBe(202);
    const proposed = saved.json<{ version: string; status: string }>();
    expect(proposed.status).toBe('proposed');
    expect(ctx.rules.current().version).toBe(before);
    expect(await readFile(ctx.rulesFile, 'utf8')).toBe(RULES_V1);
    expect((await versions()).versions[0]).toMatchObject({
      version: proposed.version,
      status: 'proposed',
      inUse: false,
    });

    const self = await decide(proposed.version, 'approve', KEYS.compliance);
    expect(self.statusCode).toBe(403);
    expect(self.json<{ code: string }>().code).toBe('API_ERR_RULES_SELF_APPROVAL');
    expect(ctx.rules.current().version).toBe(before);

    const ok = await decide(proposed.version, 'approve', KEYS.reviewer);
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ status: 'approved', approvedBy: 'review' });
    expect(ctx.rules.current().version).toBe(proposed.version);
    expect(await readFile(ctx.rulesFile, 'utf8')).toBe(RULES_V2);
    expect(seen).toEqual([proposed.version]);
    const list = await versions();
    expect(list.approval).toBe('two-step');
    expect(list.versions[0]).toMatchObject({ version: proposed.version, status: 'approved', inUse: true });

    const again = await decide(proposed.version, 'approve', KEYS.reviewer);
    expect(again.statusCode).toBe(409);
    expect(again.json<{ code: string }>().code).toBe('API_ERR_RULES_NOT_PROPOSED');
    expect(ctx.audit.map((e) => `${e.action}:${e.outcome}`)).toEqual([
      'rules.propose:success',
      'rules.approve:failure',
      'rules.approve:success',
      'rules.approve:failure',
    ]);
  });

  it('rejects a proposal (the author may withdraw it), which then never goes in use', async () => {
    const proposed = (await put(RULES_V2)).json<{ version: string }>();
    const rejected = await decide(proposed.version, 'reject', KEYS.compliance);
    expect(rejected.statusCode).toBe(200);
    expect(rejected.json()).toMatchObject({ status: 'rejected', rejectedBy: 'rules-team' });
    expect((await decide(proposed.version, 'approve', KEYS.reviewer)).statusCode).toBe(409);
    expect(await readFile(ctx.rulesFile, 'utf8')).toBe(RULES_V1);
    expect(seen).toEqual([]);
  });

  it('reverts by proposing an earlier text, and keeps every decision across a restart', async () => {
    const v1 = ctx.rules.current().version;
    const v2 = (await put(RULES_V2)).json<{ version: string }>().version;
    await decide(v2, 'approve', KEYS.reviewer);
    const revert = await ctx.app.inject({
      method: 'POST',
      url: `/rules/versions/${v1}/revert`,
      headers: bearer(KEYS.reviewer),
    });
    expect(revert.statusCode).toBe(202);
    expect(revert.json()).toMatchObject({ version: v1, status: 'proposed' });
    expect(ctx.rules.current().version).toBe(v2);
    expect((await decide(v1, 'approve', KEYS.compliance)).statusCode).toBe(200);
    expect(ctx.rules.current().version).toBe(v1);

    const reopened = await createFileRulesStore({
      file: ctx.rulesFile,
      versionsDir: join(ctx.dir, 'versions'),
      engine: testEngine,
      approval: 'two-step',
    });
    expect(reopened.current().version).toBe(v1);
    const history = await reopened.history();
    expect(history.map((v) => [v.version, v.status])).toEqual([
      [v1, 'approved'],
      [v2, 'approved'],
      [v1, 'approved'],
    ]);
    expect(history[0]).toMatchObject({ author: 'review', approvedBy: 'rules-team' });
  });

  it('keeps one-step sites as they were: a save is in use at once', async () => {
    const one = await setup();
    try {
      const res = await one.app.inject({
        method: 'PUT',
        url: '/rules',
        headers: { ...bearer(KEYS.compliance), ...yaml },
        payload: RULES_V2,
      });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ status: 'approved', changed: true });
      expect(await readFile(one.rulesFile, 'utf8')).toBe(RULES_V2);
    } finally {
      await one.app.close();
    }
  });
});
