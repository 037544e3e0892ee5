import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, KEYS, RULES_V1, RULES_V2, setup } from './helpers.ts';
import type { TestContext } from './helpers.ts';
import { rulesVersionOf } from '../../src/anonymizer/index.ts';

const BAD_RULES =
  'rules:\n  - path: Patient.name\n    method: redact\n  - path: Patient.birthDate\n    method: scramble\n';

async function snapshotDir(dir: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const name of await readdir(dir)) {
    out[name] = (await stat(join(dir, name))).mtimeMs;
  }
  return out;
}

describe('rules routes', () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await setup();
  });
  afterAll(() => ctx.app.close());
  const compliance = bearer(KEYS.compliance);
  const yaml = { ...compliance, 'content-type': 'application/yaml' };

  it('serves the rules in use as YAML with their version as ETag', async () => {
    const res = await ctx.app.inject({ method: 'GET', url: '/rules', headers: bearer(KEYS.viewer) });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/yaml/);
    expect(res.headers.etag).toBe(`"${rulesVersionOf(RULES_V1)}"`);
    expect(res.body).toBe(RULES_V1);
  });

  it('refuses a bad file with line and column and keeps the rules in use', async () => {
    const changes: string[] = [];
    ctx.rules.onRulesChanged((s) => changes.push(s.version));
    const res = await ctx.app.inject({ method: 'PUT', url: '/rules', headers: yaml, payload: BAD_RULES });
    expect(res.statusCode).toBe(422);
    expect(res.json()).toMatchObject({
      code: 'API_ERR_RULES_INVALID',
      detail: 'The rules file has 1 problem(s)',
      errors: [{ line: 5, column: 13, detail: 'unknown method' }],
    });
    expect(await readFile(ctx.rulesFile, 'utf8')).toBe(RULES_V1);
    expect(ctx.rules.current().version).toBe(rulesVersionOf(RULES_V1));
    expect((await ctx.app.inject({ method: 'GET', url: '/rules', headers: compliance })).body).toBe(RULES_V1);
    // The old rules keep working: a preview still redacts with them.
    const preview = await ctx.app.inject({
      method: 'POST',
      url: '/rules/preview',
      headers: compliance,
      payload: { resource: { resourceType: 'Patient', id: '1', name: [{ family: 'X' }], birthDate: '1970' } },
    });
    expect(preview.json().outcomes[0].resource).toEqual({
      resourceType: 'Patient',
      id: 'preview-1',
      birthDate: '1970',
    });
    expect(changes).toEqual([]);
    expect(ctx.audit.at(-1)).toMatchObject({
      action: 'rules.replace',
      outcome: 'failure',
      failureCode: 'API_ERR_RULES_INVALID',
    });
  });

  it('validates without saving', async () => {
    const bad = await ctx.app.inject({ method: 'POST', url: '/rules/validate', headers: yaml, payload: BAD_RULES });
    expect(bad.json()).toEqual({
      valid: false,
      code: 'API_ERR_RULES_INVALID',
      errors: [{ line: 5, column: 13, detail: 'unknown method' }],
    });
    const good = await ctx.app.inject({ method: 'POST', url: '/rules/validate', headers: yaml, payload: RULES_V2 });
    expect(good.json()).toEqual({ valid: true, version: rulesVersionOf(RULES_V2), rulesVersion: 't-2' });
    expect(await readFile(ctx.rulesFile, 'utf8')).toBe(RULES_V1);
  });

  it('previews a draft without writing anything', async () => {
    const before = { rules: await snapshotDir(ctx.dir), versions: await snapshotDir(ctx.versionsDir) };
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/rules/preview',
      headers: compliance,
      payload: {
        resources: [{ resourceType: 'Patient', id: '7', name: [{ family: 'Y' }], birthDate: '1980-02-03' }],
        rules: RULES_V2,
      },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      rulesVersion: 't-2',
      outcomes: [{ ok: true, sourceType: 'Patient', resource: { resourceType: 'Patient', id: 'preview-7' } }],
      report: { rules: { 'Patient.name': 1, 'Patient.birthDate': 1 }, paths: {} },
    });
    expect({ rules: await snapshotDir(ctx.dir), versions: await snapshotDir(ctx.versionsDir) }).toEqual(before);
    expect(ctx.rules.current().version).toBe(rulesVersionOf(RULES_V1));
    const badDraft = await ctx.app.inject({
      method: 'POST',
      url: '/rules/preview',
      headers: compliance,
      payload: { resource: { resourceType: 'Patient' }, rules: BAD_RULES },
    });
    expect(badDraft.statusCode).toBe(422);
    expect(badDraft.json().errors[0]).toMatchObject({ line: 5, column: 13 });
  });

  it('replaces valid rules atomically, tells listeners, and keeps every version with author and time', async () => {
    const seen: string[] = [];
    ctx.rules.onRulesChanged((s) => seen.push(s.version));
    const res = await ctx.app.inject({ method: 'PUT', url: '/rules', headers: yaml, payload: RULES_V2 });
    expect(res.statusCode).toBe(200);
    const v2 = rulesVersionOf(RULES_V2);
    expect(res.json()).toMatchObject({ version: v2, author: 'rules-team', changed: true, bytes: RULES_V2.length });
    expect(res.headers.etag).toBe(`"${v2}"`);
    expect(await readFile(ctx.rulesFile, 'utf8')).toBe(RULES_V2);
    expect(seen).toEqual([v2]);
    expect(ctx.audit.at(-1)).toMatchObject({
      action: 'rules.replace',
      outcome: 'success',
      rulesVersion: 't-2',
      target: { previousVersion: rulesVersionOf(RULES_V1), version: v2 },
    });
    const versions = await ctx.app.inject({ method: 'GET', url: '/rules/versions', headers: compliance });
    const listed = versions.json<{ current: string; versions: { version: string; author: string }[] }>();
    expect(listed.current).toBe(v2);
    expect(listed.versions.map((v) => [v.version, v.author])).toEqual([
      [v2, 'rules-team'],
      [rulesVersionOf(RULES_V1), 'filesystem'],
    ]);
    const old = await ctx.app.inject({
      method: 'GET',
      url: `/rules/versions/${rulesVersionOf(RULES_V1)}`,
      headers: compliance,
    });
    expect(old.body).toBe(RULES_V1);
    expect(
      (await ctx.app.inject({ method: 'GET', url: `/rules/versions/${'0'.repeat(64)}`, headers: compliance }))
        .statusCode,
    ).toBe(404);
    // No temp files left behind next to the rules file.
    expect((await readdir(ctx.dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('refuses a save based on an older version (If-Match) with 412', async () => {
    const res = await ctx.app.inject({
      method: 'PUT',
      url: '/rules',
      headers: { ...yaml, 'if-match': `"${rulesVersionOf(RULES_V1)}"` },
      payload: RULES_V1,
    });
    expect(res.statusCode).toBe(412);
    expect(res.json().code).toBe('API_ERR_RULES_VERSION_CONFLICT');
    expect(await readFile(ctx.rulesFile, 'utf8')).toBe(RULES_V2);
  });

  it('reports coverage of the rules in use', async () => {
    const res = await ctx.app.inject({ method: 'GET', url: '/rules/coverage', headers: bearer(KEYS.viewer) });
    expect(res.json()).toEqual({
      rulesVersion: 't-2',
      coverage: { paths: ['Patient.name', 'Patient.birthDate'] },
    });
  });
});
