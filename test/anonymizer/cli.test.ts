/**
 * `fhir-sync deidentify` and `fhir-sync rules validate|coverage`, driven through their run
 * functions with in-memory streams.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run as deidentify } from '../../src/cli/deidentify.ts';
import { run as rules } from '../../src/cli/rules.ts';
import { FIXTURES } from './helpers.ts';
import { HOSTILE, countLeaks } from './hostile-corpus.ts';
import type { Json } from './hostile-corpus.ts';

const ENV = { DEID_HMAC_KEY: 'cli-test-secret-0123456789abcdefgh', DEID_HMAC_KEY_ID: 'cli' };

function io(env: Record<string, string | undefined> = ENV): {
  stdout: { write(t: string): void; text: string };
  stderr: { write(t: string): void; text: string };
  env: Record<string, string | undefined>;
} {
  const sink = (): { write(t: string): void; text: string } => {
    const s = { text: '', write: (t: string): void => void (s.text += t) };
    return s;
  };
  return { stdout: sink(), stderr: sink(), env };
}

const files = (
  extra: Record<string, string> = {},
): { readText: (p: string) => string; writeText: (p: string, t: string) => void; written: Map<string, string> } => {
  const written = new Map<string, string>();
  return {
    readText: (p) => extra[p] ?? readFileSync(p, 'utf8'),
    writeText: (p, t) => void written.set(p, t),
    written,
  };
};

describe('fhir-sync deidentify', () => {
  it('de-identifies a Bundle, same shape on stdout, report on stderr', async () => {
    const s = io();
    const code = await deidentify(
      [join(FIXTURES, 'synthea/Buster_Hoeger_ad2e3fc5-2b5d-4cb9-8d03-9ea0f4ac8423.json'), '--instance', 'local-a'],
      s,
      files(),
    );
    expect(code).toBe(0);
    const out = JSON.parse(s.stdout.text) as { resourceType: string; entry: unknown[] };
    expect(out.resourceType).toBe('Bundle');
    expect(out.entry.length).toBeGreaterThan(10);
    expect(s.stdout.text).not.toContain('Hoeger');
    const report = JSON.parse(s.stderr.text) as { rules: Record<string, number>; keyId: string; failures: unknown[] };
    expect(report.keyId).toBe('cli');
    expect(report.rules['person-names']).toBeGreaterThan(0);
    expect(report.failures).toEqual([]);
  });

  it('de-identifies NDJSON line by line, leaving failed lines out with exit code 1', async () => {
    const s = io();
    const fs = files({
      'in.ndjson':
        readFileSync(join(FIXTURES, 'bulk/Patient.ndjson'), 'utf8') +
        '{"resourceType":"Patient","id":"x","nickname":"Bob"}\n',
    });
    const code = await deidentify(['in.ndjson', '--report', 'r.json'], s, fs);
    expect(code).toBe(1);
    const lines = s.stdout.text.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] as string)).toMatchObject({ resourceType: 'Patient' });
    expect(s.stderr.text).toBe('');
    const report = JSON.parse(fs.written.get('r.json') as string) as {
      failures: { index: number; code: string; location: string }[];
    };
    expect(report.failures).toEqual([
      expect.objectContaining({ index: 1, code: 'DEID_ERR_UNKNOWN_ELEMENT', location: 'Patient.nickname' }),
    ]);
    expect(JSON.stringify(report)).not.toContain('Bob');
  });

  it('refuses to run without a key', async () => {
    const s = io({});
    await expect(deidentify([join(FIXTURES, 'r4-examples/patient-example.json')], s, files())).rejects.toMatchObject({
      code: 'DEID_ERR_KEY_MISSING',
    });
  });

  it('explains its usage', async () => {
    const s = io();
    expect(await deidentify([], s, files())).toBe(2);
    expect(s.stderr.text).toContain('Usage: fhir-sync deidentify');
    expect(await deidentify(['not json at all'], io(), files({ 'not json at all': '{oops' }))).toBe(2);
  });
});

describe('fhir-sync rules', () => {
  it('validate: OK for the shipped file', async () => {
    const s = io();
    expect(await rules(['validate'], s)).toBe(0);
    expect(s.stdout.text).toMatch(
      /^OK .*anonymization\.yaml: profile hipaa-safe-harbor, \d+ rules, version [0-9a-f]{16}\n$/,
    );
  });

  it('validate: every problem as file:line:column CODE message, exit 1', async () => {
    const s = io();
    const bad = join(FIXTURES, 'rules/bad-rules.yaml');
    const code = await rules(['validate', bad], s);
    expect(code).toBe(1);
    expect(s.stderr.text).toContain(`${bad}:`);
    expect(s.stderr.text).toMatch(/:6:13 CFG_ERR_RULES_UNKNOWN_METHOD/);
    expect(s.stderr.text).toMatch(/:9:13 CFG_ERR_RULES_UNKNOWN_TYPE/);
  });

  it('coverage: a summary, or the full report as JSON', async () => {
    const s = io();
    expect(await rules(['coverage'], s)).toBe(0);
    expect(s.stdout.text).toContain('Uncovered PHI-capable elements: 0');
    const j = io();
    expect(await rules(['coverage', '--json', '--type', 'Patient'], j)).toBe(0);
    expect(JSON.parse(j.stdout.text)).toMatchObject({ profile: 'hipaa-safe-harbor', resourceTypes: 1 });
  });

  it('coverage --fail-on-uncovered: passes the shipped profile, fails the one before issue 12 (kept QR answers)', async () => {
    expect(await rules(['coverage', '--fail-on-uncovered'], io())).toBe(0);
    const old = join(FIXTURES, 'rules/before-issue12.yaml');
    const s = io();
    expect(await rules(['coverage', old, '--fail-on-uncovered', '--type', 'QuestionnaireResponse'], s)).toBe(1);
    expect(s.stdout.text).toContain('Kept as they are by a keep rule: 2');
    expect(s.stdout.text).toContain('QuestionnaireResponse.item.text (qr-item-text)');
  });

  it('rejects unknown actions', async () => {
    expect(await rules(['check'], io())).toBe(2);
  });
});

describe('fhir-sync deidentify on the hostile corpus', () => {
  const corpus = join(FIXTURES, 'hostile/resources.json');
  const asNdjson = (rs: readonly unknown[]): string => rs.map((r) => JSON.stringify(r)).join('\n');

  it('leaves none of the planted identifiers, as one file', async () => {
    const s = io();
    const fs = files({ 'in.ndjson': asNdjson(HOSTILE) });
    await deidentify(['in.ndjson', '--instance', 'local-a'], s, fs);
    const out = s.stdout.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Json);
    expect(out.length).toBeGreaterThanOrEqual(HOSTILE.length - 2);
    expect(countLeaks(out).found).toEqual([]);
    expect(readFileSync(corpus, 'utf8')).toContain('Margarethe'); // the input does carry them
  });

  it('leaves none, one resource at a time with its people as --related', async () => {
    const people = HOSTILE.filter((r) => r.resourceType === 'Patient' || r.resourceType === 'RelatedPerson');
    const out: Json[] = [];
    for (const r of HOSTILE) {
      const s = io();
      const fs = files({ 'one.json': JSON.stringify(r), 'people.ndjson': asNdjson(people) });
      await deidentify(['one.json', '--instance', 'local-a', '--related', 'people.ndjson'], s, fs);
      if (s.stdout.text.trim() !== '') {
        out.push(JSON.parse(s.stdout.text) as Json);
      }
    }
    expect(out.length).toBeGreaterThanOrEqual(HOSTILE.length - 2);
    expect(countLeaks(out).found).toEqual([]);
  });
});
