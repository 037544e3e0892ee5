/**
 * JSONPath selectors are parsed once and compiled into the plan; these tests check the parser
 * and that the compiled matcher selects exactly what jsonpath-plus selects on real resources.
 */
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { JSONPath } from 'jsonpath-plus';
import { describe, expect, it } from 'vitest';
import { parseJsonPath } from '../../src/anonymizer/rules/jsonpath.ts';
import { anonymizer, fixture, rulesOf } from './helpers.ts';

describe('parseJsonPath', () => {
  it('accepts the compilable subset', () => {
    expect(parseJsonPath('$.name[*].given[0]')).toEqual({
      ok: true,
      segments: [
        { kind: 'key', key: 'name' },
        { kind: 'wildcard' },
        { kind: 'key', key: 'given' },
        { kind: 'index', index: 0 },
      ],
    });
    expect(parseJsonPath("$['name']..family")).toEqual({
      ok: true,
      segments: [{ kind: 'key', key: 'name' }, { kind: 'descendant' }, { kind: 'key', key: 'family' }],
    });
    expect(parseJsonPath('$..*')).toEqual({ ok: true, segments: [{ kind: 'descendant' }, { kind: 'wildcard' }] });
  });

  it('refuses what cannot be compiled, saying why and where', () => {
    const reason = (p: string): string => {
      const r = parseJsonPath(p);
      return r.ok ? 'ok' : r.reason;
    };
    expect(reason('name')).toMatch(/start with \$/);
    expect(reason('$')).toMatch(/whole resource/);
    expect(reason('$.name[?(@.use)]')).toMatch(/filter.*character 7/);
    expect(reason('$.name[(@.length-1)]')).toMatch(/script/);
    expect(reason('$.name[0,1]')).toMatch(/unions/);
    expect(reason('$.name^')).toMatch(/'\^'/);
    expect(reason('$..')).toMatch(/must be followed/);
    expect(reason('$.name[')).toMatch(/missing ']'/);
  });
});

describe('compiled matcher agrees with jsonpath-plus', () => {
  const bundle = fixture<Bundle>('synthea/Buster_Hoeger_ad2e3fc5-2b5d-4cb9-8d03-9ea0f4ac8423.json');
  const byType = (t: string): Resource =>
    (bundle.entry ?? []).find((e) => e.resource?.resourceType === t)?.resource as Resource;
  const cases: [string, string][] = [
    ['Patient', '$.name'],
    ['Patient', '$.name[*]'],
    ['Patient', '$.identifier[1]'],
    ['Patient', '$.name[*].given'],
    ['Patient', '$.name[*].given[0]'],
    ['Patient', '$..family'],
    ['Patient', '$..city'],
    ['Patient', '$..url'],
    ['Patient', '$.address[*].*'],
    ['Patient', "$['telecom'][*]['value']"],
    ['Patient', '$.identifier[*].type.coding[*].code'],
    ['Encounter', '$.period.start'],
    ['Encounter', '$..reference'],
    ['Encounter', '$.participant[*].individual'],
    ['Claim', '$.item[*].productOrService.coding[0].display'],
  ];

  for (const [type, path] of cases) {
    it(`${type} ${path}`, () => {
      const resource = byType(type);
      const rules = rulesOf(
        `  - name: sel\n    select: { path: "${path.replace(/"/g, '\\"')}", in: ${type} }\n    method: keep\n`,
        'marking: { tags: false, securityLabels: false }',
      );
      const { report } = anonymizer(rules).deidentify([resource], { instanceId: 'x' });
      const theirs = JSONPath<string[]>({ path, json: resource as object, resultType: 'path' });
      const theirPaths = new Set(
        theirs.map((p) =>
          [
            type,
            ...JSONPath.toPathArray(p)
              .slice(1)
              .filter((s) => !/^\d+$/.test(s)),
          ].join('.'),
        ),
      );
      expect(theirs.length).toBeGreaterThan(0);
      expect(report.rules.sel ?? 0).toBe(theirs.length);
      expect(new Set(Object.keys(report.paths))).toEqual(theirPaths);
    });
  }
});
