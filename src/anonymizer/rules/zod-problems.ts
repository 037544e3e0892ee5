/**
 * Zod issues -> located rules problems: an unknown key points at the key, anything else at
 * the value, each with the YAML line and column.
 */
import type { z } from 'zod';
import { CFG_ERR_RULES_SCHEMA, CFG_ERR_RULES_UNKNOWN_KEY } from '../../shared/errors/index.ts';
import type { RulesProblem } from './types.ts';
import type { DocPath, YamlSource } from './yaml-source.ts';

/**
 * Converts zod issues found under `base` into problems.
 * @param issues - zod issues (paths relative to `base`).
 * @param base - where the validated value sits in the document.
 * @param source - parsed YAML, for positions.
 * @returns one problem per issue (per key for unknown keys).
 */
export function issueProblems(issues: readonly z.core.$ZodIssue[], base: DocPath, source: YamlSource): RulesProblem[] {
  const out: RulesProblem[] = [];
  for (const issue of issues) {
    const path: DocPath = [...base, ...issue.path.filter((p): p is string | number => typeof p !== 'symbol')];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const at = source.locate([...path, key], true);
        const printable = formatPath([...path, key]);
        out.push({
          code: CFG_ERR_RULES_UNKNOWN_KEY.code,
          message: CFG_ERR_RULES_UNKNOWN_KEY.create(printable).message,
          line: at.line,
          column: at.column,
          path: printable,
        });
      }
      continue;
    }
    const at = source.locate(path);
    const printable = formatPath(path);
    out.push({
      code: CFG_ERR_RULES_SCHEMA.code,
      message: CFG_ERR_RULES_SCHEMA.create(`${printable || 'document'}: ${describe(issue)}`).message,
      line: at.line,
      column: at.column,
      path: printable,
    });
  }
  return out;
}

function describe(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_type' && issue.input === undefined) {
    return 'required';
  }
  if (issue.code === 'invalid_union') {
    return 'value of the wrong shape';
  }
  return issue.message;
}

function formatPath(path: DocPath): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}
