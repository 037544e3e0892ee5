/* eslint-disable @typescript-eslint/no-explicit-any -- assertions walk untyped FHIR JSON */
/**
 * Shared helpers of the anonymizer tests: fixtures, a fixed test key, small rules files.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Resource } from '@medplum/fhirtypes';
import { createAnonymizer, loadRules, loadRulesFile, makeKey } from '../../src/anonymizer/index.ts';
import type { Anonymizer, CompiledRules, DeidOutcome } from '../../src/anonymizer/index.ts';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const FIXTURES = join(REPO, 'test/fixtures/anonymizer');
export const DEFAULT_RULES_FILE = join(REPO, 'config/anonymization.yaml');
export const TEST_KEY = makeKey('test-key', 'unit-test-secret-0123456789abcdef');
export const OTHER_KEY = makeKey('other-key', 'another-secret-for-tests-9876543210');

/**
 * A fixture parsed as JSON.
 * @param rel - path below test/fixtures/anonymizer.
 */
export function fixture<T = Resource>(rel: string): T {
  return JSON.parse(readFileSync(join(FIXTURES, rel), 'utf8')) as T;
}

/**
 * An NDJSON fixture.
 * @param rel - path below test/fixtures/anonymizer.
 */
export function ndjson(rel: string): Resource[] {
  return readFileSync(join(FIXTURES, rel), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Resource);
}

/** All Synthea bundles: the shared folder beside the repo when present, else the fixtures. */
export function syntheaBundlePaths(): string[] {
  const shared = join(REPO, '../shared/fhir-data/smart-generated-sample-data-r4-synthea');
  const dir = existsSync(shared) ? shared : join(FIXTURES, 'synthea');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => join(dir, f));
}

let defaults: CompiledRules | undefined;

/** The shipped profile (loaded once per test file). */
export function defaultRules(): CompiledRules {
  defaults ??= loadRulesFile(DEFAULT_RULES_FILE);
  return defaults;
}

/**
 * Loads a small rules file: the given `rules:` body under a fixed header.
 * @param body - YAML of the rule list (indented by two spaces per rule).
 * @param settings - optional YAML of the settings block body.
 */
export function rulesOf(body: string, settings = ''): CompiledRules {
  return loadRules(rulesText(body, settings), { source: 'test.yaml' });
}

/**
 * The text rulesOf loads.
 * @param body - rule list YAML.
 * @param settings - settings block body.
 */
export function rulesText(body: string, settings = ''): string {
  const s = settings === '' ? '' : `settings:\n${settings.replace(/^/gm, '  ')}\n`;
  return `version: 1\nprofile: test\n${s}rules:\n${body}`;
}

/**
 * Anonymizer over rules with the test key.
 * @param rules - compiled rules.
 */
export function anonymizer(rules: CompiledRules): Anonymizer {
  return createAnonymizer({ rules, key: TEST_KEY });
}

/**
 * De-identifies and returns the resources, failing the test when one fails.
 * @param rules - compiled rules.
 * @param resources - input.
 * @param instanceId - source instance.
 */
export function deidOk(
  rules: CompiledRules | Anonymizer,
  resources: readonly Resource[],
  instanceId = 'local-a',
): Record<string, any>[] {
  const a = 'deidentify' in rules ? rules : anonymizer(rules);
  const { outcomes } = a.deidentify(resources, { instanceId });
  return outcomes.map((o: DeidOutcome) => {
    if (!o.ok) {
      throw new Error(`de-identification failed: ${o.code} at ${o.location ?? '?'}`);
    }
    return o.resource;
  });
}
