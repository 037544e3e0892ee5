/**
 * Public face of src/instances: config/instances.yaml (the registered locals and the global
 * server), its validating loader and the registry the API and the workers use.
 */
export type {
  AuthRef,
  ConfigProblem,
  FeedConfig,
  FeedKind,
  GlobalServer,
  InstancesConfig,
  LocalAdminRule,
  LocalInstance,
  ServerConnection,
  UnsyncedRule,
} from './types.ts';
export { FEED_KINDS, LOCAL_ADMIN_RULES, UNSYNCED_RULES } from './types.ts';
export { loadInstancesFile, parseInstances, formatProblem } from './load.ts';
export type { LoadedInstances } from './load.ts';
export { openInstanceRegistry, assertEnabled, mergePatch } from './registry.ts';
export type { InstanceRecord, InstanceRegistry } from './registry.ts';
export { RESERVED_TYPES, instanceRecordJsonSchema } from './schema.ts';
export type { InstanceInput } from './schema.ts';
export { isResourceType } from './resource-types.ts';
export { toFhirConnection } from './connection.ts';
export { connectionPolicyOf, connectionProblems } from './policy.ts';
export type { OwnEndpoints } from './policy.ts';
export type { RegistryOptions } from './registry.ts';
export type { LoadOptions } from './load.ts';
export { probeWrites, runWriteProbes } from './write-probe.ts';
export type { WriteProbe } from './write-probe.ts';
export { DEFAULT_PROFILES_DIR, bundleCapsOf, feedKindsOf, loadProfiles, saveProfile } from './profile.ts';
export type { ServerProfile } from './profile.ts';
