/**
 * The rules file through the shared YAML-with-positions module, its syntax and duplicate-key
 * problems turned into the rules' coded problems (CFG_ERR_RULES_YAML, _DUPLICATE_KEY).
 */
import { CFG_ERR_RULES_DUPLICATE_KEY, CFG_ERR_RULES_YAML } from '../../shared/errors/index.ts';
import { parseYamlSource as parseYaml } from '../../shared/yaml-source.ts';
import type { DocPath } from '../../shared/yaml-source.ts';
import type { RulesProblem } from './types.ts';

export type { DocPath };

/** A parsed rules text: data, coded problems, locator. */
export interface YamlSource {
  readonly data: unknown;
  readonly problems: readonly RulesProblem[];
  locate(path: DocPath, onKey?: boolean): { line: number; column: number };
}

/**
 * Parses a rules text.
 * @param text - the YAML text.
 * @returns data, coded problems and a locator.
 */
export function parseYamlSource(text: string): YamlSource {
  const src = parseYaml(text);
  const problems = src.problems.map((p): RulesProblem => {
    const def = p.kind === 'duplicate-key' ? CFG_ERR_RULES_DUPLICATE_KEY : CFG_ERR_RULES_YAML;
    return { code: def.code, message: def.create(p.detail).message, line: p.line, column: p.column, path: '' };
  });
  return { data: src.data, problems, locate: (path, onKey) => src.locate(path, onKey) };
}
