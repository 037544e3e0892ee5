/**
 * The rules routes over the real de-identification engine and the real rules file
 * (config/anonymization.yaml, copied to a temp directory).
 */
import { copyFile, mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Patient } from '@medplum/fhirtypes';
import { anonymizerRulesEngine, createFileRulesStore, makeKey } from '../../src/anonymizer/index.ts';
import { bearer, KEYS, setup } from './helpers.ts';
import type { TestContext } from './helpers.ts';

const PATIENT: Patient = {
  resourceType: 'Patient',
  id: 'pat-1',
  name: [{ family: 'Oberhuber', given: ['Margarethe'] }],
  birthDate: '1957-03-14',
  telecom: [{ system: 'phone', value: '+43 660 1234567' }],
  gender: 'female',
};

describe('rules routes over the real engine', () => {
  let ctx: TestContext;
  let dir: string;
  let original: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rules-real-'));
    const file = join(dir, 'anonymization.yaml');
    await copyFile('config/anonymization.yaml', file);
    original = await readFile(file, 'utf8');
    const engine = anonymizerRulesEngine({ previewKey: makeKey('preview', 'p'.repeat(32)) });
    const rules = await createFileRulesStore({ file, versionsDir: join(dir, 'versions'), engine });
    ctx = await setup({ rules });
  }, 60_000);
  afterAll(() => ctx.app.close());
  const yaml = { ...bearer(KEYS.compliance), 'content-type': 'application/yaml' };

  function breakFirstMethod(text: string): { text: string; line: number } {
    const lines = text.split('\n');
    const i = lines.findIndex((l) => /^\s+method:/.test(l));
    lines[i] = lines[i]!.replace(/method: \S+/, 'method: scramble');
    return { text: lines.join('\n'), line: i + 1 };
  }

  it('refuses an unknown method with its line and column; the file and the rules in use stay', async () => {
    const before = ctx.rules.current();
    const bad = breakFirstMethod(original);
    const res = await ctx.app.inject({ method: 'PUT', url: '/rules', headers: yaml, payload: bad.text });
    expect(res.statusCode).toBe(422);
    const body = res.json<{
      code: string;
      errors: { line: number; column: number; code: string; location: string }[];
    }>();
    expect(body.code).toBe('API_ERR_RULES_INVALID');
    expect(body.errors).toEqual([
      expect.objectContaining({
        line: bad.line,
        column: 13,
        code: 'CFG_ERR_RULES_UNKNOWN_METHOD',
        location: 'rules[0].method',
      }),
    ]);
    expect(await readFile(join(dir, 'anonymization.yaml'), 'utf8')).toBe(original);
    expect(ctx.rules.current()).toBe(before);
  });

  it('reports a YAML syntax error with its position', async () => {
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/rules/validate',
      headers: yaml,
      payload: `${original}\n  rules: [unclosed\n`,
    });
    const body = res.json<{ valid: boolean; errors: { line?: number; column?: number }[] }>();
    expect(body.valid).toBe(false);
    expect(body.errors[0]!.line).toBeGreaterThan(original.split('\n').length - 1);
    expect(body.errors[0]!.column).toBeGreaterThan(0);
  });

  it('previews the de-identified resource and report, writing nothing', async () => {
    const listing = await readdir(dir, { recursive: true });
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/rules/preview',
      headers: bearer(KEYS.compliance),
      payload: { resource: PATIENT },
    });
    expect(res.statusCode).toBe(200);
    const body = res.json<{
      rulesVersion: string;
      outcomes: { ok: boolean; resource: Patient }[];
      report: { rules: Record<string, number> };
    }>();
    expect(body.rulesVersion).toBe(ctx.rules.current().rulesVersion);
    const out = body.outcomes[0]!;
    expect(out.ok).toBe(true);
    const text = JSON.stringify(out.resource);
    for (const phi of ['Oberhuber', 'Margarethe', '1957-03-14', '1234567', 'pat-1']) {
      expect(text).not.toContain(phi);
    }
    expect(out.resource.gender).toBe('female');
    expect(Object.keys(body.report.rules).length).toBeGreaterThan(0);
    expect(await readdir(dir, { recursive: true })).toEqual(listing);
  });

  it('previews a draft: a rule to keep birthDate shows the date, and nothing changes on disk', async () => {
    const draft = original.replace(
      /^rules:\n/m,
      'rules:\n  - name: keep-birth-date-draft\n    select: { path: "$.birthDate", in: [Patient] }\n    method: keep\n',
    );
    expect(draft).not.toBe(original);
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/rules/preview',
      headers: bearer(KEYS.compliance),
      payload: { resource: PATIENT, rules: draft },
    });
    const body = res.json<{ rulesVersion: string; outcomes: { resource: Patient }[] }>();
    expect(res.statusCode, res.body).toBe(200);
    expect(body.outcomes[0], JSON.stringify(body.outcomes[0])).toHaveProperty('resource');
    expect(body.rulesVersion).not.toBe(ctx.rules.current().rulesVersion);
    expect(body.outcomes[0]!.resource.birthDate).toBe('1957-03-14');
    expect(await readFile(join(dir, 'anonymization.yaml'), 'utf8')).toBe(original);
  });

  it('reports coverage of the rules in use', async () => {
    const res = await ctx.app.inject({ method: 'GET', url: '/rules/coverage', headers: bearer(KEYS.viewer) });
    expect(res.statusCode).toBe(200);
    const body = res.json<{ rulesVersion: string; coverage: { profile: string; totals: { uncovered: number } } }>();
    expect(body.coverage.profile).toBe('hipaa-safe-harbor');
    expect(typeof body.coverage.totals.uncovered).toBe('number');
  }, 60_000);
});
