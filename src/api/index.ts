/**
 * Public face of src/api: the HTTP app and its auth configuration. The rules store it serves
 * is src/anonymizer's (the API takes it as an option, like the sync control and registry).
 */
export { buildApp, buildOpsApp, DEFAULT_BODY_LIMIT, DEFAULT_RATE_LIMIT, DEFAULT_READY_TIMEOUT_MS } from './app.ts';
export { authConfig, digestKey, parseApiKeys, MIN_RAW_KEY_LENGTH } from './auth/config.ts';
export type { ApiKeyEntry, AuthConfig, JwtConfig } from './auth/config.ts';
export { Role, READ_ROLES } from './types.ts';
export type { OpsAppOptions } from './app.ts';
export type { ApiAuditEvent, AppOptions, AuditSink, InstanceRecord, InstanceRegistryLike, Principal } from './types.ts';
export type { Problem, ProblemItem } from './problems.ts';
