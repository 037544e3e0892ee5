/**
 * Public face of src/anonymizer: the de-identification engine. Load rules once
 * (`loadRules` / `loadRulesFile`: every problem with line and column, or frozen rules), read
 * the key from its settings (`deidKeyFrom`), bind both (`createAnonymizer`), then call
 * `deidentify(resources, { instanceId })` per batch. `coverage(rules)` lists the PHI-capable
 * elements no rule covers.
 *
 * The rules store (`store/`: the rules file in use, its versions, four-eyes approval, file
 * watcher, previews) is the one part that does I/O; workers and the API both take their rules
 * from it (`createFileRulesStore` with `anonymizerRulesEngine()`).
 */
export type * from './types.ts';
export type { CompiledRules, Rule, RulesProblem, RulesSettings, Selector, SafeHarborCategory } from './rules/types.ts';
export { loadRules, loadRulesFile, DEFAULT_SETTINGS } from './rules/load.ts';
export type { LoadRulesOptions, LoadRulesFileOptions } from './rules/load.ts';
export { createAnonymizer } from './engine/anonymizer.ts';
export type { AnonymizerOptions } from './engine/anonymizer.ts';
export { deidKeyFrom, makeKey, MIN_KEY_BYTES } from './engine/key.ts';
export type { DeidKey } from './engine/key.ts';
export { coverage, SAFE_HARBOR_CATEGORIES } from './coverage.ts';
export type { CoverageReport, CoverageEntry } from './coverage.ts';
export { KEY_ID_TAG_SYSTEM, RULES_VERSION_TAG_SYSTEM, SECURITY_LABEL_SYSTEM } from './engine/mark.ts';
export { PSEUDONYM_PATTERN } from './engine/pseudonym.ts';
export { parseLiteralReference } from './engine/references.ts';
export type { LiteralReference } from './engine/references.ts';
export * from './store/index.ts';
