/**
 * In-memory doubles of the services the API takes as options, and a builder that wires
 * them into `buildApp` with two static API keys per role. The doubles behave like the
 * contracts say (coded errors for unknown instances and types), so route tests exercise
 * the real status mapping.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry, Counter } from 'prom-client';
import { parseDocument, isMap, isSeq, isScalar } from 'yaml';
import type { Resource } from '@medplum/fhirtypes';
import type { FastifyInstance } from 'fastify';
import { buildApp, parseApiKeys } from '../../src/api/index.ts';
import type { ApiAuditEvent, AppOptions, AuthConfig, InstanceRecord } from '../../src/api/index.ts';
import { createFileRulesStore } from '../../src/anonymizer/index.ts';
import type { RulesEngine, RulesStore } from '../../src/anonymizer/index.ts';
import type { Anonymizer } from '../../src/anonymizer/types.ts';
import type { JobInfo, QuarantineItem, SyncControl, SyncRange, TypeStatus } from '../../src/sync/control.ts';
import { defineError } from '../../src/shared/errors/index.ts';

export const TEST_ERR_UNKNOWN_INSTANCE = defineError(
  'TEST_ERR_UNKNOWN_INSTANCE',
  'Instance %s is not registered',
  404,
  false,
);
export const TEST_ERR_TYPE_NOT_SYNCED = defineError(
  'TEST_ERR_TYPE_NOT_SYNCED',
  'Type %s is not synced for %s',
  422,
  false,
);
export const TEST_ERR_RULES = defineError('TEST_ERR_RULES', 'Rules not valid: %s problem(s)', 400, false);

/** Raw keys of the test principals (raw keys must be at least 24 characters). */
export const KEYS = {
  operator: 'operator-key-0123456789abcdef',
  compliance: 'compliance-key-0123456789abcdef',
  /** A second compliance user (four-eyes approval). */
  reviewer: 'reviewer-key-0123456789abcdef',
  viewer: 'viewer-key-0123456789abcdef',
} as const;

export function bearer(key: string): { authorization: string } {
  return { authorization: `Bearer ${key}` };
}

export function testAuth(): AuthConfig {
  const text = `ops:operator:${KEYS.operator},rules-team:compliance:${KEYS.compliance},review:compliance:${KEYS.reviewer},dash:viewer:${KEYS.viewer}`;
  return { apiKeys: parseApiKeys(text, 'test') };
}

/** A SyncControl double: instance `a` syncs Patient and Observation. */
export class FakeSync implements SyncControl {
  readonly triggers: { instanceId: string; resourceType: string; range?: SyncRange }[] = [];
  readonly jobs = new Map<string, JobInfo>();
  readonly configured = new Map<string, string[]>([['a', ['Patient', 'Observation']]]);
  quarantine: QuarantineItem[] = [];
  statusLines: TypeStatus[] = [];
  readiness: { redis: boolean; global: boolean } | 'hang' = { redis: true, global: true };
  #next = 1;

  readonly reconciles: { instanceId: string; resourceType: string }[] = [];
  readonly wakes: { instanceId: string; resourceType: string }[] = [];

  /** The coded refusal of an unknown instance or type, as the real control gives it. */
  #refusal(instanceId: string, resourceType: string): Error | undefined {
    const types = this.configured.get(instanceId);
    if (!types) {
      return TEST_ERR_UNKNOWN_INSTANCE.create(instanceId);
    }
    return types.includes(resourceType) ? undefined : TEST_ERR_TYPE_NOT_SYNCED.create(resourceType, instanceId);
  }

  triggerReconcile(instanceId: string, resourceType: string): Promise<{ jobId: string }> {
    const refused = this.#refusal(instanceId, resourceType);
    if (refused) {
      return Promise.reject(refused);
    }
    this.reconciles.push({ instanceId, resourceType });
    return Promise.resolve({ jobId: `reconcile:${instanceId}:${resourceType}:${this.#next++}` });
  }

  wake(instanceId: string, resourceType: string): Promise<{ jobId: string }> {
    const refused = this.#refusal(instanceId, resourceType);
    if (refused) {
      return Promise.reject(refused);
    }
    this.wakes.push({ instanceId, resourceType });
    return Promise.resolve({ jobId: `wake.${instanceId}.${resourceType}` });
  }

  triggerSync(instanceId: string, resourceType: string, range?: SyncRange): Promise<{ jobId: string }> {
    const types = this.configured.get(instanceId);
    if (!types) {
      return Promise.reject(TEST_ERR_UNKNOWN_INSTANCE.create(instanceId));
    }
    if (!types.includes(resourceType)) {
      return Promise.reject(TEST_ERR_TYPE_NOT_SYNCED.create(resourceType, instanceId));
    }
    this.triggers.push({ instanceId, resourceType, ...(range ? { range } : {}) });
    const id = `pass:${instanceId}:${resourceType}:${this.#next++}`;
    this.jobs.set(id, {
      id,
      kind: 'pass',
      instanceId,
      resourceType,
      state: 'waiting',
      progress: { pages: 0, resources: 0, deletes: 0, quarantined: 0 },
    });
    return Promise.resolve({ jobId: id });
  }
  getJob(jobId: string): Promise<JobInfo | undefined> {
    return Promise.resolve(this.jobs.get(jobId));
  }
  status(): Promise<TypeStatus[]> {
    return Promise.resolve(this.statusLines);
  }
  listQuarantine(filter?: { instanceId?: string; resourceType?: string }): Promise<QuarantineItem[]> {
    return Promise.resolve(
      this.quarantine.filter(
        (q) =>
          (filter?.instanceId === undefined || q.instanceId === filter.instanceId) &&
          (filter?.resourceType === undefined || q.resourceType === filter.resourceType),
      ),
    );
  }
  retryQuarantine(): Promise<{ jobId: string }> {
    return Promise.resolve({ jobId: `retry:${this.#next++}` });
  }
  ready(): Promise<{ redis: boolean; global: boolean }> {
    if (this.readiness === 'hang') {
      return new Promise(() => undefined);
    }
    return Promise.resolve(this.readiness);
  }
}

/** An instance registry double. */
export class FakeInstances {
  readonly records = new Map<string, InstanceRecord & Record<string, unknown>>([
    ['a', { id: 'a', baseUrl: 'http://a/' }],
  ]);
  list(): Promise<readonly InstanceRecord[]> {
    return Promise.resolve([...this.records.values()]);
  }
  get(id: string): Promise<InstanceRecord | undefined> {
    return Promise.resolve(this.records.get(id));
  }
  add(input: Readonly<Record<string, unknown>>): Promise<InstanceRecord> {
    const id = String(input.id);
    if (this.records.has(id)) {
      return Promise.reject(defineError('TEST_ERR_EXISTS', 'Instance %s exists', 409, false).create(id));
    }
    const rec = { ...input, id };
    this.records.set(id, rec);
    return Promise.resolve(rec);
  }
  update(id: string, patch: Readonly<Record<string, unknown>>): Promise<InstanceRecord> {
    const rec = this.records.get(id);
    if (!rec) {
      return Promise.reject(TEST_ERR_UNKNOWN_INSTANCE.create(id));
    }
    const next = { ...rec, ...patch, id };
    this.records.set(id, next);
    return Promise.resolve(next);
  }
  remove(id: string): Promise<void> {
    if (!this.records.delete(id)) {
      return Promise.reject(TEST_ERR_UNKNOWN_INSTANCE.create(id));
    }
    return Promise.resolve();
  }
}

/**
 * A small rules engine double: YAML with `rules: [{ path, method }]`, methods `redact` or
 * `keep`; every problem is reported with line and column, like the real loader.
 */
export interface TestRules {
  readonly rules: readonly { path: string; method: string }[];
}

export const testEngine: RulesEngine<TestRules> = {
  load(text, source) {
    const doc = parseDocument(text, { prettyErrors: false });
    const problems: { line?: number; column?: number; message: string }[] = [];
    for (const e of doc.errors) {
      problems.push({ line: e.linePos?.[0]?.line, column: e.linePos?.[0]?.col, message: e.code });
    }
    const pos = (range: readonly number[] | null | undefined): { line?: number; column?: number } => {
      if (!range || range[0] === undefined) {
        return {};
      }
      const before = text.slice(0, range[0]).split('\n');
      return { line: before.length, column: (before.at(-1)?.length ?? 0) + 1 };
    };
    const rules: { path: string; method: string }[] = [];
    if (problems.length === 0) {
      const list = isMap(doc.contents) ? doc.contents.get('rules', true) : undefined;
      if (!isSeq(list)) {
        problems.push({ ...pos(doc.contents?.range), message: 'rules must be a list' });
      } else {
        for (const item of list.items) {
          const method = isMap(item) ? item.get('method', true) : undefined;
          const path = isMap(item) ? item.get('path', true) : undefined;
          if (!isScalar(method) || !['redact', 'keep'].includes(String(method.value))) {
            problems.push({
              ...pos((method as { range?: number[] } | undefined)?.range ?? (item as { range?: number[] }).range),
              message: 'unknown method',
            });
          } else if (isScalar(path)) {
            rules.push({ path: String(path.value), method: String(method.value) });
          }
        }
      }
    }
    if (problems.length > 0) {
      throw TEST_ERR_RULES.createWith({ location: source, problems }, [problems.length]);
    }
    return { rules };
  },
  versionOf(rules) {
    return `t-${rules.rules.length}`;
  },
  previewAnonymizer(rules) {
    return fakeAnonymizer(rules);
  },
  coverage(rules) {
    return { paths: rules.rules.map((r) => r.path) };
  },
};

function fakeAnonymizer(rules: TestRules): Anonymizer {
  return {
    rulesVersion: 'test',
    keyId: 'preview',
    pseudonymousId: (_i, _t, id) => `p-${id}`,
    deidentify(resources, ctx) {
      const counts: Record<string, number> = {};
      const outcomes = resources.map((r) => {
        const out: Record<string, unknown> = { ...r, id: `${ctx.instanceId}-${r.id ?? 'x'}` };
        for (const rule of rules.rules) {
          const [type, field] = rule.path.split('.');
          if (type === r.resourceType && field && rule.method === 'redact' && field in out) {
            delete out[field];
            counts[rule.path] = (counts[rule.path] ?? 0) + 1;
          }
        }
        return { ok: true as const, sourceType: r.resourceType, resource: out as unknown as Resource };
      });
      return { outcomes, report: { rules: counts, paths: {} } };
    },
  };
}

export const RULES_V1 = 'rules:\n  - path: Patient.name\n    method: redact\n';
export const RULES_V2 =
  'rules:\n  - path: Patient.name\n    method: redact\n  - path: Patient.birthDate\n    method: redact\n';

export interface TestContext {
  app: FastifyInstance;
  sync: FakeSync;
  instances: FakeInstances;
  rules: RulesStore;
  audit: ApiAuditEvent[];
  metrics: Registry;
  dir: string;
  rulesFile: string;
  versionsDir: string;
}

/** Builds an app over fresh doubles and a temp rules directory. */
export async function setup(
  overrides: Partial<AppOptions> = {},
  store: { approval?: 'one-step' | 'two-step' } = {},
): Promise<TestContext> {
  const dir = await mkdtemp(join(tmpdir(), 'fhir-sync-api-'));
  const rulesFile = join(dir, 'anonymization.yaml');
  const versionsDir = join(dir, 'versions');
  await writeFile(rulesFile, RULES_V1);
  const rules =
    overrides.rules ?? (await createFileRulesStore({ file: rulesFile, versionsDir, engine: testEngine, ...store }));
  const sync = new FakeSync();
  const instances = new FakeInstances();
  const audit: ApiAuditEvent[] = [];
  const metrics = new Registry();
  new Counter({
    name: 'fhir_sync_passes_total',
    help: 'Passes',
    labelNames: ['instance', 'type'],
    registers: [metrics],
  })
    .labels('a', 'Patient')
    .inc(3);
  const app = await buildApp({
    sync,
    instances,
    metrics,
    audit: (e) => {
      audit.push(e);
      return Promise.resolve();
    },
    auth: testAuth(),
    rateLimit: false,
    // The fake registry keeps partial records; the real one's schema is tested over the real
    // registry (instances-registry.test.ts).
    instanceSchemas: {},
    ...overrides,
    rules,
  });
  return { app, sync, instances, rules, audit, metrics, dir, rulesFile, versionsDir };
}
