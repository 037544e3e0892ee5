/**
 * YAML with positions (issue 10, linear validation): duplicate keys are found by one walk with a
 * Set per map instead of the parser's pairwise check, and locating a key uses an index per map.
 */
import { describe, expect, it } from 'vitest';
import { parseYamlSource } from '../../src/anonymizer/rules/yaml-source.ts';

describe('parseYamlSource', () => {
  it('reports every repeated key with its name, line and column, in text order', () => {
    const src = parseYamlSource('a: 1\nb:\n  cc: 1\n  cc: 2\na: 3\n');
    expect(src.problems.map((p) => [p.code, p.line, p.column, p.message])).toEqual([
      ['CFG_ERR_RULES_DUPLICATE_KEY', 4, 3, 'Duplicate key cc'],
      ['CFG_ERR_RULES_DUPLICATE_KEY', 5, 1, 'Duplicate key a'],
    ]);
    expect(src.data).toBeUndefined();
  });

  it('finds a duplicate among 40,000 keys and locates the last key of a 40,000-key map', () => {
    const keys = Array.from({ length: 40_000 }, (_, i) => `k${i}: ${i}`);
    const dup = parseYamlSource([...keys, 'k7: again'].join('\n'));
    expect(dup.problems).toHaveLength(1);
    expect(dup.problems[0]?.line).toBe(40_001);
    const ok = parseYamlSource(keys.join('\n'));
    expect(ok.problems).toEqual([]);
    expect(ok.locate(['k39999'], true)).toEqual({ line: 40_000, column: 1 });
    expect(ok.locate(['k39999'])).toEqual({ line: 40_000, column: 9 });
    // No timing is asserted; the timeout only stops the quadratic old code (25 s here) from hanging the run.
  }, 15_000);
});
