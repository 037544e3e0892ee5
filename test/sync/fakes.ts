/**
 * In-memory doubles for the engine's unit tests: a FHIR store with transaction semantics
 * like HAPI's (atomic, stale ifMatch → 409 HAPI-0989, referential integrity on write, HAPI-0535 duplicates,
 * identical PUT = no new version, versions per resource), a change feed over an array, and
 * a tiny anonymizer. Integration tests use the real servers instead.
 */
import { createHash } from 'node:crypto';
import type { Bundle, BundleEntry, Resource } from '@medplum/fhirtypes';
import type { Anonymizer, DeidOutcome } from '../../src/anonymizer/index.ts';
import type { Change, ChangeFeed, ChangePage } from '../../src/changes/index.ts';
import type { FhirAnswer, FhirStore } from '../../src/sync/fhir-store.ts';
import { collectReferences } from '../../src/sync/references.ts';
import { FEED_ERR_CONNECTION } from '../../src/shared/errors/index.ts';

interface Stored {
  resource?: Resource;
  version: number;
  deleted: boolean;
}

export interface FakeStore extends FhirStore {
  readonly data: Map<string, Stored>;
  /** Number of transactions received (attempts included). */
  transactions: number;
  /** Next N transactions fail this way before being looked at. */
  failures: ('503' | 'network' | 'commit-then-503')[];
  /** Ids whose PUT the server refuses with 422. */
  refuse: Set<string>;
  /** Referential integrity on write (HAPI default). */
  integrity: boolean;
  /** Hook run at the start of every transaction. */
  onTransaction?: (bundle: Bundle) => void;
  /** Every search received, in order. */
  readonly searches: { type: string; query: Readonly<Record<string, string>> }[];
  get(key: string): Resource | undefined;
  versions(key: string): number;
  put(resource: Resource): void;
}

const deepEqual = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

function withoutMeta(r: Resource | undefined): unknown {
  if (r === undefined) {
    return undefined;
  }
  const { meta, ...rest } = r;
  return { ...rest, tag: meta?.tag };
}

/** A store with HAPI-like transaction semantics. */
export function fakeStore(base = 'http://fake/fhir'): FakeStore {
  const data = new Map<string, Stored>();
  const searches: FakeStore['searches'] = [];
  const store: FakeStore = {
    base,
    data,
    searches,
    transactions: 0,
    failures: [],
    refuse: new Set(),
    integrity: true,
    get: (key) => {
      const s = data.get(key);
      return s?.deleted === false ? s.resource : undefined;
    },
    versions: (key) => data.get(key)?.version ?? 0,
    put: (resource) => {
      const key = `${resource.resourceType}/${resource.id}`;
      const prev = data.get(key);
      const version = (prev?.version ?? 0) + 1;
      data.set(key, {
        resource: { ...resource, meta: { ...resource.meta, versionId: String(version) } },
        version,
        deleted: false,
      });
    },
    async transaction(bundle) {
      await Promise.resolve();
      store.transactions++;
      store.onTransaction?.(bundle);
      const failure = store.failures.shift();
      if (failure === '503') {
        return { status: 503, body: undefined };
      }
      if (failure === 'network') {
        throw FEED_ERR_CONNECTION.create('/fhir', 'ECONNREFUSED');
      }
      const answer = apply(store, bundle.entry ?? []);
      if (failure === 'commit-then-503') {
        return { status: 503, body: undefined };
      }
      return answer;
    },
    read: (type, id) => Promise.resolve(store.get(`${type}/${id}`)),
    // One page of at most _count (default 20): enough paging for reconcile's tests.
    async *searchPages(type, query) {
      const all = await store.searchAll(type, query);
      const size = Number(query._count ?? '20');
      for (let i = 0; i < all.length; i += size) {
        yield all.slice(i, i + size);
      }
    },
    searchAll(type, query) {
      const ids = query._id?.split(',');
      const [tagSystem, tagCode] = (query._tag ?? '').split('|');
      const ident = query.identifier?.split('|');
      const patients = query.patient?.split(',').map((p) => (p.includes('/') ? p : `Patient/${p}`));
      const found = [...data.entries()]
        .filter(([k, s]) => k.startsWith(`${type}/`) && !s.deleted && s.resource !== undefined)
        .map(([, s]) => s.resource!)
        .filter((r) => ids === undefined || ids.includes(r.id!))
        .filter(
          (r) =>
            query._tag === undefined || (r.meta?.tag ?? []).some((t) => t.system === tagSystem && t.code === tagCode),
        )
        .filter(
          (r) =>
            ident === undefined ||
            ((r as { identifier?: { system?: string; value?: string }[] }).identifier ?? []).some(
              (i) => i.system === ident[0] && i.value === ident.slice(1).join('|'),
            ),
        )
        .filter(
          (r) =>
            patients === undefined ||
            patients.includes((r as { patient?: { reference?: string } }).patient?.reference ?? ''),
        );
      searches.push({ type, query });
      return Promise.resolve(found);
    },
    create(resource) {
      const id = `gen-${data.size + 1}`;
      store.put({ ...resource, id });
      return Promise.resolve(id);
    },
  };
  return store;
}

function apply(store: FakeStore, entries: readonly BundleEntry[]): FhirAnswer {
  const urls = entries.map((e) => e.request?.url);
  if (new Set(urls).size !== urls.length) {
    return outcome(400, 'HAPI-0535: Transaction bundle contains multiple resources with ID');
  }
  const staged = new Map<string, Stored>(store.data);
  const responses: { status: string; etag?: string }[] = [];
  // HAPI order: DELETE first, then PUT; responses keep request order.
  const order = entries.map((e, i) => ({ e, i })).sort((a, b) => rank(a.e) - rank(b.e));
  const out = new Array<{ status: string; etag?: string }>(entries.length);
  for (const { e, i } of order) {
    const url = e.request!.url;
    const prev = staged.get(url);
    if (e.request!.method === 'DELETE') {
      if (prev === undefined || prev.deleted) {
        out[i] = { status: '204 No Content' };
      } else {
        staged.set(url, { version: prev.version + 1, deleted: true });
        out[i] = { status: '204 No Content', etag: `W/"${prev.version + 1}"` };
      }
      continue;
    }
    const resource = e.resource!;
    if (store.refuse.has(resource.id!)) {
      return outcome(422, 'HAPI-1234: refused by the server');
    }
    if (e.request!.ifMatch !== undefined && e.request!.ifMatch !== `W/"${prev?.version ?? 0}"`) {
      // HAPI's answer to a stale ifMatch: 409 HAPI-0550/HAPI-0989.
      return outcome(
        409,
        'HAPI-0550: HAPI-0989: Trying to update Basic/x/_history/1 but this is not the current version',
      );
    }
    if (prev !== undefined && !prev.deleted && deepEqual(withoutMeta(prev.resource), withoutMeta(resource))) {
      out[i] = { status: '200 OK', etag: `W/"${prev.version}"` };
      continue;
    }
    const version = (prev?.version ?? 0) + 1;
    staged.set(url, {
      resource: { ...resource, meta: { ...resource.meta, versionId: String(version) } },
      version,
      deleted: false,
    });
    out[i] = { status: prev === undefined ? '201 Created' : '200 OK', etag: `W/"${version}"` };
  }
  if (store.integrity) {
    for (const [, s] of staged) {
      if (s.deleted || s.resource === undefined) {
        continue;
      }
      for (const ref of collectReferences(s.resource)) {
        const target = staged.get(`${ref.type}/${ref.id}`);
        if (!ref.absolute && (target === undefined || target.deleted)) {
          return outcome(400, 'HAPI-1094: Resource not found, specified in path');
        }
      }
    }
  }
  for (const [k, v] of staged) {
    store.data.set(k, v);
  }
  responses.push(...out);
  return {
    status: 200,
    body: { resourceType: 'Bundle', type: 'transaction-response', entry: responses.map((r) => ({ response: r })) },
  };
}

function rank(e: BundleEntry): number {
  return e.request?.method === 'DELETE' ? 0 : 1;
}

function outcome(status: number, diagnostics: string): FhirAnswer {
  return {
    status,
    body: { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'processing', diagnostics }] },
  };
}

/** A feed over a growing array of changes; the cursor is the count delivered, as a string. */
export function arrayFeed(changes: Change[], pageSize = 3): ChangeFeed & { changes: Change[] } {
  return {
    kind: 'fake',
    changes,
    async *pages(resourceType: string, cursor: string | undefined, options = {}): AsyncIterable<ChangePage> {
      const size = options.pageSize ?? pageSize;
      let at = cursor === undefined ? 0 : Number(JSON.parse(cursor).n);
      const mine = (): Change[] => changes.filter((c) => c.resourceType === resourceType);
      while (at < mine().length) {
        await Promise.resolve();
        const page = mine().slice(at, at + size);
        at += page.length;
        yield { changes: page, cursor: JSON.stringify({ n: at }) };
      }
    },
  };
}

/** The fake anonymizer's pseudonym: scoped by instance, UUID-ish. */
export function fakePseudo(instanceId: string, type: string, id: string): string {
  const h = createHash('sha256').update(`${instanceId}|${type}|${id}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * A tiny anonymizer: names and telecom removed, references pseudonymised (except exempt
 * types), fails resources whose `language` is `fail`.
 */
export function fakeAnonymizer(exempt: readonly string[] = []): Anonymizer {
  const rewrite = (value: unknown, instanceId: string): unknown => {
    if (Array.isArray(value)) {
      return value.map((v) => rewrite(v, instanceId));
    }
    if (typeof value === 'object' && value !== null) {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) {
        if (k === 'name' || k === 'telecom' || k === 'display') {
          continue;
        }
        if (k === 'reference' && typeof v === 'string') {
          const m = /^([A-Z][A-Za-z]+)\/(.+)$/.exec(v);
          out[k] = m !== null && !exempt.includes(m[1]!) ? `${m[1]}/${fakePseudo(instanceId, m[1]!, m[2]!)}` : v;
          continue;
        }
        out[k] = rewrite(v, instanceId);
      }
      return out;
    }
    return value;
  };
  return {
    rulesVersion: 'rules-test',
    keyId: 'k-test',
    pseudonymousId: (instanceId, type, id) => (exempt.includes(type) ? id : fakePseudo(instanceId, type, id)),
    deidentify(resources, ctx) {
      const outcomes: DeidOutcome[] = resources.map((r) => {
        const pid = fakePseudo(ctx.instanceId, r.resourceType, r.id!);
        if ((r as { language?: string }).language === 'fail') {
          return {
            ok: false,
            sourceType: r.resourceType,
            pseudonymousId: pid,
            code: 'DEID_ERR_TEST',
            location: `${r.resourceType}.language`,
          };
        }
        const out = rewrite(r, ctx.instanceId) as Resource;
        return {
          ok: true,
          sourceType: r.resourceType,
          resource: { ...out, id: exempt.includes(r.resourceType) ? r.id : pid },
        };
      });
      return { outcomes, report: { rules: {}, paths: {} } };
    },
  };
}

/** A resource change. */
export function changed(resource: Resource): Change {
  return { kind: 'resource', resourceType: resource.resourceType, id: resource.id!, resource };
}

/** A deletion change. */
export function deleted(resourceType: string, id: string): Change {
  return { kind: 'deletion', resourceType, id };
}
