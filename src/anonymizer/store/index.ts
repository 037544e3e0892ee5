/**
 * Public face of src/anonymizer/store: the rules in use and their versions (file-backed, with
 * four-eyes approval, a file watcher and previews). Workers read the rules in use from it and
 * the API edits them through it; it knows nothing of HTTP. Unlike the engine around it, this
 * folder does I/O (the rules file, the versions directory, a poll timer).
 */
export { createFileRulesStore, rulesVersionOf, PREVIEW_INSTANCE_ID, FILESYSTEM_AUTHOR } from './store.ts';
export type { FileRulesStoreOptions } from './store.ts';
export { detailItems } from './problems.ts';
export { anonymizerRulesEngine } from './engine.ts';
export type { AnonymizerEngineOptions } from './engine.ts';
export { ApprovalMode, VersionStatus } from './types.ts';
export type {
  PreviewResult,
  RulesCheck,
  RulesEngine,
  RulesListener,
  RulesProblemItem,
  RulesSnapshot,
  RulesStore,
  RulesVersionInfo,
} from './types.ts';
