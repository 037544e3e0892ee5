/** Public face of src/api: the HTTP app, its auth configuration and the rules store. */
export { buildApp, buildOpsApp, DEFAULT_BODY_LIMIT, DEFAULT_RATE_LIMIT, DEFAULT_READY_TIMEOUT_MS } from './app.ts';
export { authConfig, digestKey, parseApiKeys, MIN_RAW_KEY_LENGTH } from './auth/config.ts';
export type { ApiKeyEntry, AuthConfig, JwtConfig } from './auth/config.ts';
export { createFileRulesStore, rulesVersionOf, PREVIEW_INSTANCE_ID, FILESYSTEM_AUTHOR } from './rules/store.ts';
export type { FileRulesStoreOptions } from './rules/store.ts';
export { anonymizerRulesEngine } from './rules/engine.ts';
export type { AnonymizerEngineOptions } from './rules/engine.ts';
export type * from './rules/types.ts';
export { Role, READ_ROLES } from './types.ts';
export type { OpsAppOptions } from './app.ts';
export type { ApiAuditEvent, AppOptions, AuditSink, InstanceRecord, InstanceRegistryLike, Principal } from './types.ts';
export type { Problem, ProblemItem } from './problems.ts';
