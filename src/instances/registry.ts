/**
 * The registry of local instances behind GET/POST/PATCH/DELETE /instances and the allow-list
 * the workers consult. It owns config/instances.yaml: every change is validated as a whole
 * file before it is written, the write is atomic (temp file, fsync, rename) and comments
 * elsewhere in the file survive (edits go through the YAML document). Secrets can never be
 * written: the schema only has `*Env` fields naming environment variables and rejects
 * unknown keys. Changes made to the file by hand are picked up on the next call (mtime).
 * Within one process, mutations are serialized; across processes, the last rename wins.
 */
import { stat } from 'node:fs/promises';
import { atomicWrite } from '../shared/atomic-write.ts';
import { isMap, isSeq } from 'yaml';
import type { Document } from 'yaml';
import type { ConnectionPolicy } from '../shared/fhir-client.ts';
import {
  SYNC_ERR_ADDRESS_REFUSED,
  SYNC_ERR_CA_FILE_REFUSED,
  SYNC_ERR_INSTANCE_DISABLED,
  SYNC_ERR_INSTANCE_EXISTS,
  SYNC_ERR_INSTANCE_INVALID,
  SYNC_ERR_INSTANCE_UNKNOWN,
  SYNC_ERR_SECRET_REF_REFUSED,
  SYNC_ERR_TYPE_NOT_SYNCED,
} from '../shared/errors/index.ts';
import { deepFreeze } from '../shared/deep-freeze.ts';
import { loadInstancesFile, parseInstances } from './load.ts';
import { instanceProblems, instanceSchema } from './schema.ts';
import type { RawProblem } from './schema.ts';
import type { ConfigProblem, InstancesConfig, LocalInstance } from './types.ts';

/** A registered instance as the API shows it: the normalized record (env var names only). */
export type InstanceRecord = LocalInstance;

/** The registry's public face. */
export interface InstanceRegistry {
  list(): Promise<readonly InstanceRecord[]>;
  get(id: string): Promise<InstanceRecord | undefined>;
  /** Registers a new instance (file form, defaults filled in). */
  add(input: Readonly<Record<string, unknown>>): Promise<InstanceRecord>;
  /** Applies a JSON merge patch (RFC 7396) to an instance; `null` resets a field to its default. */
  update(id: string, patch: Readonly<Record<string, unknown>>): Promise<InstanceRecord>;
  remove(id: string): Promise<void>;
  /** The current frozen configuration (re-read when the file changed). */
  config(): Promise<InstancesConfig>;
  /**
   * The instance if it is registered and enabled (and syncs `resourceType`, when given).
   * @throws AppError SYNC_ERR_INSTANCE_UNKNOWN, SYNC_ERR_INSTANCE_DISABLED, SYNC_ERR_TYPE_NOT_SYNCED
   */
  requireEnabled(id: string, resourceType?: string, direction?: 'send' | 'receive'): Promise<LocalInstance>;
  /** Called after each change written by this registry. */
  onChange(listener: (config: InstancesConfig) => void): () => void;
}

interface State {
  config: InstancesConfig;
  document: Document;
  mtimeMs: number;
  size: number;
}

/** Options of {@link openInstanceRegistry}. */
export interface RegistryOptions {
  /**
   * Network policy and CA directory every server must respect, on load and on every change.
   * @defaultValue DEFAULT_CONNECTION_POLICY
   */
  readonly policy?: ConnectionPolicy;
}

/**
 * Opens the registry over an instances file (which must exist and be valid).
 * @param path - path of config/instances.yaml.
 * @param options - the connection policy.
 * @returns the registry.
 */
export async function openInstanceRegistry(path: string, options: RegistryOptions = {}): Promise<InstanceRegistry> {
  const policy = options.policy;
  const r: OpenRegistry = {
    path,
    policy,
    state: await readStateWith(path, policy),
    chain: Promise.resolve(),
    listeners: new Set(),
  };
  return {
    list: async () => (await fresh(r)).config.instances,
    get: async (id) => (await fresh(r)).config.instances.find((i) => i.id === id),
    config: async () => (await fresh(r)).config,
    add: async (input) => {
      const id = typeof input.id === 'string' ? input.id : '';
      await mutate(r, (doc, config) => addInstance(doc, config, id, input, policy));
      return mustFind(r.state.config, id);
    },
    update: async (id, patch) => {
      await mutate(r, (doc, config) => patchInstance(doc, config, id, patch, policy));
      return mustFind(r.state.config, id);
    },
    remove: async (id) => {
      await mutate(r, (doc, config) => {
        const idx = config.instances.findIndex((i) => i.id === id);
        if (idx < 0) {
          throw SYNC_ERR_INSTANCE_UNKNOWN.create(id);
        }
        doc.deleteIn(['instances', idx]);
      });
    },
    requireEnabled: async (id, resourceType, direction = 'send') => {
      const inst = (await fresh(r)).config.instances.find((i) => i.id === id);
      return assertEnabled(inst, id, resourceType, direction);
    },
    onChange: (listener) => {
      r.listeners.add(listener);
      return () => r.listeners.delete(listener);
    },
  };
}

/** An open registry: its file, the state last read or written, and the chain of mutations. */
interface OpenRegistry {
  readonly path: string;
  readonly policy: ConnectionPolicy | undefined;
  state: State;
  /** The last mutation (settled either way): the next one waits for it. */
  chain: Promise<unknown>;
  readonly listeners: Set<(config: InstancesConfig) => void>;
}

/** The state, re-read when the file changed on disk (mtime or size). */
async function fresh(r: OpenRegistry): Promise<State> {
  const s = await stat(r.path);
  if (s.mtimeMs !== r.state.mtimeMs || s.size !== r.state.size) {
    r.state = await readStateWith(r.path, r.policy);
  }
  return r.state;
}

/** Serializes mutations; each one re-reads the file first so hand edits are not lost. */
function mutate<T>(r: OpenRegistry, fn: (doc: Document, config: InstancesConfig) => T): Promise<T> {
  const run = r.chain.then(async () => {
    const current = await fresh(r);
    const doc = current.document.clone();
    const result = fn(doc, current.config);
    r.state = await writeStateWith(r.path, doc, r.policy);
    for (const l of r.listeners) {
      l(r.state.config);
    }
    return result;
  });
  r.chain = run.catch(() => undefined);
  return run;
}

function addInstance(
  doc: Document,
  config: InstancesConfig,
  id: string,
  input: Readonly<Record<string, unknown>>,
  policy: ConnectionPolicy | undefined,
): void {
  if (config.instances.some((i) => i.id === id)) {
    throw SYNC_ERR_INSTANCE_EXISTS.create(id);
  }
  checkInstance(id, input, config, policy);
  if (!isSeq(doc.get('instances'))) {
    doc.set('instances', doc.createNode([]));
  }
  doc.addIn(['instances'], doc.createNode(input));
}

function patchInstance(
  doc: Document,
  config: InstancesConfig,
  id: string,
  patch: Readonly<Record<string, unknown>>,
  policy: ConnectionPolicy | undefined,
): void {
  const idx = config.instances.findIndex((i) => i.id === id);
  if (idx < 0) {
    throw SYNC_ERR_INSTANCE_UNKNOWN.create(id);
  }
  const raw = toRecord(doc.getIn(['instances', idx]));
  const merged = mergePatch(raw, patch);
  if (merged.id !== id) {
    throw SYNC_ERR_INSTANCE_INVALID.createWith(
      { location: 'id', problems: [{ path: 'id', message: 'cannot be changed' }] },
      [id, 'id cannot be changed'],
    );
  }
  checkInstance(id, merged, config, policy);
  doc.setIn(['instances', idx], doc.createNode(merged));
}

/**
 * Checks that an instance may sync (registered, enabled, type listed).
 * @param inst - the instance found, if any.
 * @param id - the requested id.
 * @param resourceType - optional type to check.
 * @param direction - `send` checks sendTypes, `receive` checks receiveAdminTypes.
 * @returns the instance.
 */
export function assertEnabled(
  inst: LocalInstance | undefined,
  id: string,
  resourceType?: string,
  direction: 'send' | 'receive' = 'send',
): LocalInstance {
  if (inst === undefined) {
    throw SYNC_ERR_INSTANCE_UNKNOWN.create(id);
  }
  if (!inst.enabled) {
    throw SYNC_ERR_INSTANCE_DISABLED.create(id);
  }
  const types = direction === 'send' ? inst.sendTypes : inst.receiveAdminTypes;
  if (resourceType !== undefined && !types.includes(resourceType)) {
    throw SYNC_ERR_TYPE_NOT_SYNCED.create(id, resourceType);
  }
  return inst;
}

/** Policy refusals get their own code, so a client can tell them from plain mistakes. */
const POLICY_ERRORS = [SYNC_ERR_SECRET_REF_REFUSED, SYNC_ERR_ADDRESS_REFUSED, SYNC_ERR_CA_FILE_REFUSED] as const;

function checkInstance(
  id: string,
  input: unknown,
  config: InstancesConfig,
  policy: ConnectionPolicy | undefined,
): void {
  const parsed = instanceSchema.safeParse(input);
  const raw: RawProblem[] = parsed.success
    ? instanceProblems(parsed.data, config.global.adminTypes, policy)
    : parsed.error.issues.map((i) => ({ path: i.path.filter((k) => typeof k !== 'symbol'), message: i.message }));
  if (raw.length > 0) {
    const problems: ConfigProblem[] = raw.map((p) => ({
      path: p.path
        .map((k) => (typeof k === 'number' ? `[${k}]` : k))
        .join('.')
        .replace(/\.\[/g, '['),
      message: p.message,
      ...(p.code === undefined ? {} : { code: p.code }),
    }));
    const summary = problems.map((p) => `${p.path} ${p.message}`).join('; ');
    const refusal = POLICY_ERRORS.find((e) => problems.some((p) => p.code === e.code));
    throw (refusal ?? SYNC_ERR_INSTANCE_INVALID).createWith({ location: problems[0]?.path, problems }, [
      id === '' ? '(no id)' : id,
      summary,
    ]);
  }
}

function mustFind(config: InstancesConfig, id: string): InstanceRecord {
  const found = config.instances.find((i) => i.id === id);
  if (found === undefined) {
    throw SYNC_ERR_INSTANCE_UNKNOWN.create(id);
  }
  return found;
}

function toRecord(node: unknown): Record<string, unknown> {
  return isMap(node) ? (node.toJSON() as Record<string, unknown>) : {};
}

/**
 * RFC 7396 JSON merge patch.
 * @param target - the current object.
 * @param patch - the patch (`null` deletes).
 * @returns a new object.
 */
export function mergePatch(
  target: Readonly<Record<string, unknown>>,
  patch: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...target };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) {
      delete out[k];
    } else if (isPlainObject(v) && isPlainObject(out[k])) {
      out[k] = mergePatch(out[k], v);
    } else {
      out[k] = v;
    }
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

async function readStateWith(path: string, policy: ConnectionPolicy | undefined): Promise<State> {
  const s = await stat(path);
  const loaded = await loadInstancesFile(path, { policy });
  return { config: loaded.config, document: loaded.document, mtimeMs: s.mtimeMs, size: s.size };
}

/** Validates the whole new text, then writes it atomically. */
async function writeStateWith(path: string, doc: Document, policy: ConnectionPolicy | undefined): Promise<State> {
  const text = doc.toString();
  const loaded = parseInstances(text, { source: path, policy });
  await atomicWrite(path, text);
  const s = await stat(path);
  return { config: deepFreeze(loaded.config), document: loaded.document, mtimeMs: s.mtimeMs, size: s.size };
}
