/**
 * Loading rules: every kind of problem is reported with its code, line and column, all at
 * once; valid rules come back deeply frozen; the shipped profile loads.
 */
import { describe, expect, it } from 'vitest';
import { loadRules, loadRulesFile } from '../../src/anonymizer/index.ts';
import type { RulesProblem } from '../../src/anonymizer/index.ts';
import { AppError } from '../../src/shared/errors/index.ts';
import { DEFAULT_RULES_FILE, anonymizer, defaultRules, deidOk, rulesOf, rulesText } from './helpers.ts';

/** The problems of a text that must not load. */
function problems(text: string): RulesProblem[] {
  try {
    loadRules(text, { source: 'bad.yaml' });
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('CFG_ERR_RULES_INVALID');
    return (err as AppError).details.problems as RulesProblem[];
  }
  throw new Error('the rules loaded');
}

/** The single problem of a text, with its code and position. */
function only(text: string): RulesProblem {
  const list = problems(text);
  expect(list, JSON.stringify(list)).toHaveLength(1);
  return list[0] as RulesProblem;
}

const HEADER = 'version: 1\nprofile: test\nrules:\n';

describe('the shipped profile', () => {
  it('loads, names itself and has a short hash as version', () => {
    const rules = defaultRules();
    expect(rules.profile).toBe('hipaa-safe-harbor');
    expect(rules.version).toMatch(/^[0-9a-f]{16}$/);
    expect(rules.rules.length).toBeGreaterThan(40);
    expect(rules.settings.references.exemptTypes).toEqual(['Organization', 'Location']);
  });

  it('is deeply frozen', () => {
    const rules = defaultRules();
    expect(Object.isFrozen(rules)).toBe(true);
    expect(Object.isFrozen(rules.rules[0])).toBe(true);
    expect(Object.isFrozen(rules.settings.zip3.restrictedPrefixes)).toBe(true);
    expect(() => {
      (rules.settings as { allowListMode: boolean }).allowListMode = true;
    }).toThrow(TypeError);
  });

  it('keeps its version when only comments and descriptions change', () => {
    const body = '  - name: a\n    description: one\n    select: { type: HumanName }\n    method: remove\n';
    const a = loadRules(HEADER + body);
    const b = loadRules('# a comment\n' + HEADER + body.replace('one', 'two'));
    const c = loadRules(HEADER + body.replace('remove', 'redact'));
    expect(a.version).toBe(b.version);
    expect(a.version).not.toBe(c.version);
  });
});

describe('syntax and structure', () => {
  it('reports YAML syntax errors with their line', () => {
    const p = only('version: 1\nprofile: [x\nrules: []\n');
    expect(p.code).toBe('CFG_ERR_RULES_YAML');
    expect(p.line).toBeGreaterThanOrEqual(2);
  });

  it('rejects duplicate keys (YAML would keep one silently)', () => {
    const p = only(HEADER + '  - name: a\n    select: { type: HumanName }\n    method: remove\n    method: keep\n');
    expect(p).toMatchObject({ code: 'CFG_ERR_RULES_DUPLICATE_KEY', line: 7, column: 5 });
    expect(p.message).toContain('method');
  });

  it('rejects unknown keys at every level, pointing at the key', () => {
    const list = problems(
      'version: 1\nprofile: t\ncolour: red\nsettings:\n  dateShift: { maxDayz: 3 }\nrules:\n  - name: a\n    select: { type: HumanName, elemnt: given }\n    method: remove\n',
    );
    expect(list.map((p) => [p.code, p.line, p.column])).toEqual([
      ['CFG_ERR_RULES_UNKNOWN_KEY', 3, 1],
      ['CFG_ERR_RULES_UNKNOWN_KEY', 5, 16],
      ['CFG_ERR_RULES_UNKNOWN_KEY', 8, 32],
    ]);
  });

  it('rejects unknown method options (a typo in a setting is never ignored)', () => {
    const p = only(HEADER + '  - name: a\n    select: { type: date }\n    method: dateShift\n    keeptime: false\n');
    expect(p).toMatchObject({ code: 'CFG_ERR_RULES_UNKNOWN_KEY', line: 7, column: 5 });
  });

  it('reports values of the wrong shape or range', () => {
    const list = problems(
      'version: 2\nprofile: t\nsettings:\n  dateShift: { maxDays: 0 }\n  zip3: { restrictedPrefixes: ["12"] }\nrules:\n  - name: "bad name!"\n    select: { type: HumanName }\n    method: remove\n',
    );
    expect(list.every((p) => p.code === 'CFG_ERR_RULES_SCHEMA')).toBe(true);
    expect(list.map((p) => p.line)).toEqual([1, 4, 5, 7]);
  });

  it('requires at least one rule and a profile name', () => {
    const list = problems('version: 1\nrules: []\n');
    expect(list.map((p) => p.code)).toEqual(['CFG_ERR_RULES_SCHEMA', 'CFG_ERR_RULES_SCHEMA']);
  });

  it('rejects a selector mixing kinds', () => {
    const p = only(
      HEADER + '  - name: a\n    select: { type: HumanName, path: "$.name", in: Patient }\n    method: remove\n',
    );
    expect(p).toMatchObject({ code: 'CFG_ERR_RULES_SCHEMA', line: 5 });
  });

  it('rejects two rules with one name', () => {
    const p = only(
      HEADER +
        '  - name: a\n    select: { type: HumanName }\n    method: remove\n  - name: a\n    select: { type: Address }\n    method: remove\n',
    );
    expect(p).toMatchObject({ code: 'CFG_ERR_RULES_DUPLICATE_NAME', line: 7, column: 11 });
  });
});

describe('semantics', () => {
  it('rejects an unknown method, listing the known ones', () => {
    const p = only(HEADER + '  - name: a\n    select: { type: HumanName }\n    method: scramble\n');
    expect(p).toMatchObject({ code: 'CFG_ERR_RULES_UNKNOWN_METHOD', line: 6, column: 13 });
    expect(p.message).toContain('pseudonymize');
  });

  it('rejects unknown FHIR types, and resource types where a data type belongs', () => {
    const list = problems(
      HEADER +
        '  - name: a\n    select: { type: HumanNam }\n    method: remove\n  - name: b\n    select: { type: Patient }\n    method: remove\n  - name: c\n    select: { path: "$.name", in: Patien }\n    method: remove\n',
    );
    expect(list.map((p) => [p.code, p.line])).toEqual([
      ['CFG_ERR_RULES_UNKNOWN_TYPE', 5],
      ['CFG_ERR_RULES_UNKNOWN_TYPE', 8],
      ['CFG_ERR_RULES_UNKNOWN_TYPE', 11],
    ]);
    expect(list[1]?.message).toContain('resource type');
  });

  it('rejects a backbone path that names a data type', () => {
    const p = only(HEADER + '  - name: a\n    select: { type: Patient.name }\n    method: remove\n');
    expect(p.code).toBe('CFG_ERR_RULES_UNKNOWN_TYPE');
    expect(p.message).toContain('HumanName');
  });

  it('rejects unknown elements in element paths, where and JSONPaths', () => {
    const list = problems(
      HEADER +
        '  - name: a\n    select: { type: Address, element: zip }\n    method: remove\n' +
        '  - name: b\n    select: { type: Identifier, where: { sytem: x } }\n    method: remove\n' +
        '  - name: c\n    select: { path: "$.birthdate", in: Patient }\n    method: remove\n' +
        '  - name: d\n    select: { path: "$..postcode", in: Patient }\n    method: remove\n',
    );
    expect(list.map((p) => [p.code, p.line])).toEqual([
      ['CFG_ERR_RULES_UNKNOWN_ELEMENT', 5],
      ['CFG_ERR_RULES_UNKNOWN_ELEMENT', 8],
      ['CFG_ERR_RULES_UNKNOWN_ELEMENT', 11],
      ['CFG_ERR_RULES_UNKNOWN_ELEMENT', 14],
    ]);
  });

  it('rejects JSONPaths it cannot compile, with the reason', () => {
    const list = problems(
      HEADER +
        '  - name: a\n    select: { path: "$.name[?(@.use==\'official\')]", in: Patient }\n    method: remove\n' +
        '  - name: b\n    select: { path: "name.given", in: Patient }\n    method: remove\n' +
        '  - name: c\n    select: { path: "$.name.given", in: Patient }\n    method: remove\n' +
        '  - name: d\n    select: { path: "$.name[0:2]", in: Patient }\n    method: remove\n' +
        '  - name: e\n    select: { path: "$.gender[0]", in: Patient }\n    method: remove\n',
    );
    expect(list.map((p) => [p.code, p.line])).toEqual([
      ['CFG_ERR_RULES_JSONPATH', 5],
      ['CFG_ERR_RULES_JSONPATH', 8],
      ['CFG_ERR_RULES_JSONPATH', 11],
      ['CFG_ERR_RULES_JSONPATH', 14],
      ['CFG_ERR_RULES_JSONPATH', 17],
    ]);
    expect(list[0]?.message).toContain('filter');
    expect(list[2]?.message).toContain('[*]');
    expect(list[3]?.message).toContain('slices');
  });

  it('rejects a method that cannot work on the selected type', () => {
    const list = problems(
      HEADER +
        '  - name: a\n    select: { type: HumanName }\n    method: dateShift\n' +
        '  - name: b\n    select: { type: Address, element: postalCode }\n    method: generalize\n    to: year\n' +
        '  - name: c\n    select: { linkId: x }\n    method: mask\n' +
        '  - name: d\n    select: { type: Extension, element: value }\n    method: pseudonymize\n',
    );
    expect(list.map((p) => [p.code, p.line])).toEqual([
      ['CFG_ERR_RULES_METHOD_NOT_APPLICABLE', 6],
      ['CFG_ERR_RULES_METHOD_NOT_APPLICABLE', 9],
      ['CFG_ERR_RULES_METHOD_NOT_APPLICABLE', 13],
      ['CFG_ERR_RULES_METHOD_NOT_APPLICABLE', 16],
    ]);
    expect(list[0]?.message).toContain('date, dateTime, instant');
  });

  it('reports a rule that an earlier rule shadows, naming it', () => {
    const p = only(
      HEADER +
        '  - name: names\n    select: { type: HumanName }\n    method: remove\n  - name: given\n    select: { type: HumanName, element: given }\n    method: keep\n',
    );
    expect(p).toMatchObject({ code: 'CFG_ERR_RULES_SHADOWED', line: 7, column: 5 });
    expect(p.message).toContain('names');
  });

  it('reports shadowing through ancestors and JSONPath prefixes too', () => {
    const list = problems(
      HEADER +
        '  - name: contact\n    select: { path: "$.contact", in: Patient }\n    method: remove\n' +
        '  - name: contact-name\n    select: { path: "$.contact[*].name", in: Patient }\n    method: keep\n' +
        '  - name: all-strings\n    select: { type: string }\n    method: keep\n' +
        '  - name: city\n    select: { type: Address, element: city }\n    method: remove\n',
    );
    expect(list.map((p) => [p.code, p.line])).toEqual([
      ['CFG_ERR_RULES_SHADOWED', 7],
      ['CFG_ERR_RULES_SHADOWED', 13],
    ]);
  });

  it('does not count a conditional rule (where) as shadowing the rules after it', () => {
    const ok = rulesOf(
      '  - name: email\n    select: { type: ContactPoint, where: { system: email } }\n    method: remove\n  - name: others\n    select: { type: ContactPoint }\n    method: redact\n',
    );
    expect(ok.rules.map((r) => r.name)).toEqual(['email', 'others']);
    const p = only(
      HEADER +
        '  - name: all\n    select: { type: ContactPoint }\n    method: remove\n  - name: email\n    select: { type: ContactPoint, where: { system: email } }\n    method: redact\n',
    );
    expect(p).toMatchObject({ code: 'CFG_ERR_RULES_SHADOWED', line: 7 });
  });

  it('reports a rule that matches nothing any resource can hold', () => {
    const p = only(
      HEADER +
        '  - name: qr-items-in-patients\n    select: { type: QuestionnaireResponse.item, in: Patient }\n    method: remove\n',
    );
    expect(p).toMatchObject({ code: 'CFG_ERR_RULES_NEVER_MATCHES', line: 4, column: 5 });
  });

  it('checks settings against the rules', () => {
    const list = problems(
      rulesText(
        '  - name: by\n    select: { type: date }\n    method: generalize\n    to: year\n',
        'references: { exemptTypes: [Organisation] }',
      ),
    );
    expect(list.map((p) => p.code)).toEqual(['CFG_ERR_RULES_SETTING', 'CFG_ERR_RULES_SETTING']);
    expect(list.find((p) => p.message.includes('referenceDate'))?.line).toBe(6);
  });

  it('reports every problem of a file at once, sorted by line', () => {
    const list = problems(
      'version: 1\nprofile: t\nrules:\n  - name: a\n    select: { type: Foo }\n    method: remove\n  - name: b\n    select: { type: HumanName }\n    method: nope\n  - name: c\n    select: { path: "$.x", in: Patient }\n    method: remove\n',
    );
    expect(list.map((p) => p.line)).toEqual([5, 9, 11]);
  });

  it('puts every problem with file:line:column into the message', () => {
    try {
      loadRules(HEADER + '  - name: a\n    select: { type: Foo }\n    method: remove\n', { source: 'my.yaml' });
      expect.unreachable();
    } catch (err) {
      expect((err as AppError).message).toContain('my.yaml:5:21 CFG_ERR_RULES_UNKNOWN_TYPE');
    }
  });
});

describe('replacing rules', () => {
  it('a broken file never replaces the rules in use: loading is all-or-nothing and has no shared state', () => {
    const good = rulesOf('  - name: names\n    select: { type: HumanName }\n    method: remove\n');
    const a = anonymizer(good);
    let current = good;
    const reload = (text: string): void => {
      current = loadRules(text); // throws before anything is replaced
    };
    expect(() => reload(HEADER + '  - name: names\n    select: { type: HumanName }\n    method: keeep\n')).toThrow(
      expect.objectContaining({ code: 'CFG_ERR_RULES_INVALID' }),
    );
    expect(current).toBe(good);
    const [out] = deidOk(a, [{ resourceType: 'Patient', name: [{ family: 'X' }], gender: 'male' }]);
    expect(out).not.toHaveProperty('name');
  });
});

describe('files', () => {
  it('loads a file by path and names it in problems', () => {
    expect(loadRulesFile(DEFAULT_RULES_FILE).source).toBe(DEFAULT_RULES_FILE);
    try {
      loadRulesFile('x.yaml', { readFile: () => 'version: 1\n' });
      expect.unreachable();
    } catch (err) {
      expect((err as AppError).message).toContain('x.yaml');
    }
  });

  it('reports an unreadable file with its own code', () => {
    expect(() => loadRulesFile('/nonexistent/rules.yaml')).toThrow(
      expect.objectContaining({ code: 'CFG_ERR_RULES_UNREADABLE' }),
    );
  });
});
