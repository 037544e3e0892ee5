/**
 * Validation of instances.yaml content (already parsed to plain data): a zod schema for the
 * shape and defaults, then semantic checks across fields (unique ids, known resource types,
 * admin types, cron expressions). Every problem is returned with its path so the loader can
 * attach a line:column; nothing is silently replaced by a default when it is invalid.
 * Messages never echo values: a misplaced secret must not reach a log through an error.
 */
import { validate as validateCron } from 'node-cron';
import { z } from 'zod';
import type { ConnectionPolicy } from '../shared/fhir-client.ts';
import { deepFreeze } from '../shared/deep-freeze.ts';
import { connectionProblems } from './policy.ts';
import { isResourceType } from './resource-types.ts';
import { FEED_KINDS, LOCAL_ADMIN_RULES, UNSYNCED_RULES } from './types.ts';
import type { InstancesConfig, LocalInstance } from './types.ts';

/** A path into the document: map keys and sequence indexes. */
export type DocPath = readonly (string | number)[];

/** A problem before positions are attached. */
export interface RawProblem {
  readonly path: DocPath;
  readonly message: string;
  /** Catalogue code of a policy problem (secret reference, address, CA file). */
  readonly code?: string;
}

/** Types reserved for the engine's own state on the servers (cursors, quarantine, audit). */
export const RESERVED_TYPES: readonly string[] = ['Basic', 'AuditEvent'];

const ENV_NAME = /^[A-Z_][A-Z0-9_]{0,127}$/;
const INSTANCE_ID = /^[a-z0-9][a-z0-9-]{0,31}$/;

const envName = z.string().regex(ENV_NAME, { error: 'must be an environment variable name ([A-Z_][A-Z0-9_]*)' });

const httpUrl = z.string().superRefine((value, ctx) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be an absolute http(s) URL' });
    return;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    ctx.addIssue({ code: 'custom', message: 'must use http or https' });
  }
  if (url.username !== '' || url.password !== '') {
    ctx.addIssue({ code: 'custom', message: 'must not carry credentials (use auth with environment variable names)' });
  }
  if (url.search !== '' || url.hash !== '') {
    ctx.addIssue({ code: 'custom', message: 'must not have a query or fragment' });
  }
});

const authSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('none') }),
  z.strictObject({ type: z.literal('basic'), usernameEnv: envName, passwordEnv: envName }),
  z.strictObject({ type: z.literal('bearer'), tokenEnv: envName }),
  z.strictObject({
    type: z.literal('client-credentials'),
    tokenUrl: httpUrl,
    clientIdEnv: envName,
    clientSecretEnv: envName,
    scope: z.string().min(1).max(1000).optional(),
    credentialsIn: z.enum(['header', 'body']).optional(),
  }),
]);

const fhirUrlPath = z
  .string()
  .regex(/^[A-Za-z0-9._~\-/]*$/, { error: 'must be a URL path (letters, digits, . _ ~ - /)' })
  .transform((p) => p.replace(/^\/+/, '').replace(/\/+$/, ''));

const connectionFields = {
  baseUrl: httpUrl.transform((u) => (u.endsWith('/') ? u : `${u}/`)),
  fhirUrlPath: fhirUrlPath.default('fhir'),
  auth: authSchema.default({ type: 'none' }),
  tls: z.strictObject({ caFile: z.string().min(1) }).optional(),
  timeoutMs: z.int().min(1000).max(600_000).default(30_000),
  maxResponseBytes: z.int().min(1024).max(1_073_741_824).optional(),
  bundleSize: z.int().min(2).max(10_000).default(100),
};

const typeList = z.array(z.string().min(1)).superRefine((types, ctx) => {
  types.forEach((t, i) => {
    if (!isResourceType(t)) {
      ctx.addIssue({ code: 'custom', path: [i], message: 'is not an R4 resource type' });
    } else if (types.indexOf(t) !== i) {
      ctx.addIssue({ code: 'custom', path: [i], message: 'is listed twice' });
    }
  });
});

const feedSchema = z.strictObject({
  kind: z.enum(FEED_KINDS),
  pageSize: z.int().min(1).max(10_000).optional(),
  settleMs: z.int().min(0).max(86_400_000).optional(),
  maxCursorKeys: z.int().min(1).max(100_000).optional(),
  deletionsQuery: z
    .string()
    .regex(/^[A-Za-z0-9_\-.:]+=[^&#\s]+(&[A-Za-z0-9_\-.:]+=[^&#\s]+)*$/, { error: 'must look like name=value' })
    .optional(),
});

const globalSchema = z.strictObject({
  ...connectionFields,
  adminTypes: typeList.default(['Organization', 'Location']),
  /** How the reverse channel reads the global's admin changes. */
  feed: feedSchema.default({ kind: 'fhir-history' }),
});

/** Schema of one local instance as written in the file (also the registry's input). */
export const instanceSchema = z.strictObject({
  id: z.string().regex(INSTANCE_ID, { error: 'must match [a-z0-9][a-z0-9-]{0,31}' }),
  enabled: z.boolean().default(true),
  ...connectionFields,
  feed: feedSchema.default({ kind: 'fhir-history' }),
  sendTypes: typeList.min(1, { error: 'must list at least one resource type' }),
  receiveAdminTypes: typeList.default([]),
  /** Push wake-up through rest-hook Subscriptions on the local (when the service has a public URL). */
  push: z.enum(['auto', 'off']).default('auto'),
  schedule: z
    .string()
    .default('*/5 * * * *')
    .refine((s) => validateCron(s), { error: 'is not a valid cron expression' }),
  /** Optional cron of reconciliation passes (every sent type; repair what the feed missed). */
  reconcileSchedule: z
    .string()
    .refine((s) => validateCron(s), { error: 'is not a valid cron expression' })
    .optional(),
  references: z
    .strictObject({
      unsynced: z.enum(UNSYNCED_RULES).default('mask'),
      localOnlyAdmin: z.enum(LOCAL_ADMIN_RULES).default('mask'),
    })
    .default({ unsynced: 'mask', localOnlyAdmin: 'mask' }),
});

const fileSchema = z.strictObject({
  version: z.literal(1, { error: 'must be 1' }),
  global: globalSchema,
  instances: z.array(instanceSchema).default([]),
});

/**
 * Validates parsed file content.
 * @param data - the YAML document as plain data.
 * @param policy - network policy and CA directory. @defaultValue DEFAULT_CONNECTION_POLICY
 * @returns the normalized configuration (not yet frozen) or every problem found.
 */
export function validateInstancesData(
  data: unknown,
  policy?: ConnectionPolicy,
): { ok: true; config: InstancesConfig } | { ok: false; problems: RawProblem[] } {
  const parsed = fileSchema.safeParse(data);
  if (!parsed.success) {
    return {
      ok: false,
      problems: parsed.error.issues.map((i) => ({ path: i.path.filter(isKey), message: i.message })),
    };
  }
  const config = parsed.data as InstancesConfig;
  const problems = semanticProblems(config, policy);
  return problems.length > 0 ? { ok: false, problems } : { ok: true, config };
}

function isKey(k: PropertyKey): k is string | number {
  return typeof k === 'string' || typeof k === 'number';
}

function semanticProblems(config: InstancesConfig, policy: ConnectionPolicy | undefined): RawProblem[] {
  const problems: RawProblem[] = connectionProblems(config.global, policy).map((p) => ({
    ...p,
    path: ['global', ...p.path],
  }));
  config.global.adminTypes.forEach((t, i) => {
    if (RESERVED_TYPES.includes(t)) {
      problems.push({ path: ['global', 'adminTypes', i], message: 'is reserved for the engine state' });
    }
  });
  const seen = new Map<string, number>();
  config.instances.forEach((inst, idx) => {
    const first = seen.get(inst.id);
    if (first !== undefined) {
      problems.push({ path: ['instances', idx, 'id'], message: `duplicates the id of instances[${first}]` });
    } else {
      seen.set(inst.id, idx);
    }
    problems.push(
      ...instanceProblems(inst, config.global.adminTypes, policy).map((p) => ({
        ...p,
        path: ['instances', idx, ...p.path],
      })),
    );
  });
  return problems;
}

/**
 * Cross-field checks of one instance against the global admin types and the policies.
 * @param inst - a schema-valid instance.
 * @param adminTypes - the global server's admin types.
 * @param policy - network policy and CA directory. @defaultValue DEFAULT_CONNECTION_POLICY
 * @returns problems with paths relative to the instance.
 */
export function instanceProblems(
  inst: LocalInstance,
  adminTypes: readonly string[],
  policy?: ConnectionPolicy,
): RawProblem[] {
  const problems: RawProblem[] = connectionProblems(inst, policy);
  inst.sendTypes.forEach((t, i) => {
    if (RESERVED_TYPES.includes(t)) {
      problems.push({ path: ['sendTypes', i], message: 'is reserved for the engine state' });
    } else if (adminTypes.includes(t) && inst.references.localOnlyAdmin !== 'send') {
      problems.push({
        path: ['sendTypes', i],
        message: 'is an admin type: sending it requires references.localOnlyAdmin: send',
      });
    }
  });
  if (inst.references.localOnlyAdmin === 'send' && !inst.sendTypes.some((t) => adminTypes.includes(t))) {
    problems.push({ path: ['references', 'localOnlyAdmin'], message: 'is send, but sendTypes lists no admin type' });
  }
  inst.receiveAdminTypes.forEach((t, i) => {
    if (!adminTypes.includes(t)) {
      problems.push({ path: ['receiveAdminTypes', i], message: 'is not one of global.adminTypes' });
    }
  });
  return problems;
}

/** Type of an instance as written in the file (input of the registry), before defaults. */
export type InstanceInput = z.input<typeof instanceSchema>;

/**
 * JSON schema of one instance record as the registry returns it (defaults filled in), derived
 * from the one zod schema above so the API's answers and documentation never drift from the
 * file format. Request bodies are not checked against it: the registry validates them itself
 * and answers every problem with its place, which a schema validator's first error would hide.
 * @returns the schema (draft-07, as Fastify's serializer expects), frozen.
 */
export function instanceRecordJsonSchema(): object {
  const { $schema: _ignored, ...schema } = z.toJSONSchema(instanceSchema, {
    io: 'output',
    target: 'draft-7',
    unrepresentable: 'any',
  }) as Record<string, unknown>;
  return deepFreeze(schema);
}
