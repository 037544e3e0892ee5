/**
 * Consistent rewriting of every way FHIR names a resource: `id`, Reference.reference
 * (relative, absolute, `urn:uuid:`, `urn:oid:`, conditional `Type?identifier=…`, `#contained`),
 * Bundle.entry.fullUrl and entry.request.url. All of them go through one function
 * `pseudonymousId(type, id)` = UUID(HMAC(key, `instance|Type|id`)), so a graph still resolves
 * after de-identification and across incremental batches.
 *
 * Absolute references lose their base URL (it names the clinic's server) and become relative;
 * history suffixes go (versions differ on the receiving server). Types exempted by the rules
 * (default Organization, Location: owned by the global server) keep their ids.
 */
import type { Pseudonymizer } from './pseudonym.ts';

/** Result of a rewrite: the new value, or why it cannot be rewritten. */
export type Rewrite = { readonly ok: true; readonly value: string } | { readonly ok: false; readonly reason: string };

/** Where `urn:uuid:` / `urn:oid:` fullUrls of the input point. */
export interface EntryTarget {
  readonly type: string;
  readonly id?: string;
}

/** Everything the rewriting depends on. */
export interface ReferenceEnv {
  readonly instanceId: string;
  readonly hmac: Pseudonymizer;
  readonly exemptTypes: ReadonlySet<string>;
  /** fullUrl of every Bundle entry in the input -> its resource type and id. */
  readonly fullUrls: ReadonlyMap<string, EntryTarget>;
  isResourceType(type: string): boolean;
  /**
   * Pseudonyms computed for this environment (one batch), by namespace and value: the resource
   * type for ids, and `#` (contained ids), `urn:` (unresolved URNs), `|value` (other values; no
   * resource type contains `#`, `:` or `|`). Saves the HMAC and the message string of every
   * repeat within the batch.
   */
  readonly cache: Map<string, Map<string, string>>;
  /** Identifier pseudonyms of this environment by system (`''` for none) and value. */
  readonly identifiers: Map<string, Map<string, string>>;
}

const LITERAL = /^(?:(.+)\/)?([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/([A-Za-z0-9\-.]{1,64}))?$/;

/** A literal reference read by {@link parseLiteralReference}. */
export interface LiteralReference {
  readonly type: string;
  readonly id: string;
  /** What came before `Type/id` (a server's base URL), when anything did. */
  readonly base?: string;
}

/**
 * Reads `Type/id`, `Type/id/_history/v` or `<base>/Type/id[...]`: the one parser of literal
 * references (the sync reads the references it carries with it too).
 * @param ref - Reference.reference.
 * @returns type, id and base, or undefined for contained (`#x`), `urn:`, conditional and other forms.
 */
export function parseLiteralReference(ref: string): LiteralReference | undefined {
  const m = LITERAL.exec(ref);
  if (m === null) {
    return undefined;
  }
  return m[1] === undefined ? { type: m[2]!, id: m[3]! } : { type: m[2]!, id: m[3]!, base: m[1] };
}
const CONDITIONAL = /^(?:.*\/)?([A-Z][A-Za-z]+)\?(.*)$/;

/**
 * The pseudonymous id of a local (type, id); exempt types keep their id.
 * @param env - rewriting environment.
 * @param type - resource type.
 * @param id - local id.
 * @returns the UUID-shaped pseudonym.
 */
export function pseudonymousId(env: ReferenceEnv, type: string, id: string): string {
  if (env.exemptTypes.has(type)) {
    return id;
  }
  const byType = space(env, type);
  let p = byType.get(id);
  if (p === undefined) {
    p = env.hmac.uuid(`${env.instanceId}|${type}|${id}`);
    byType.set(id, p);
  }
  return p;
}

/**
 * The memo of one namespace of `env.cache`.
 * @param env - rewriting environment.
 * @param name - namespace (see ReferenceEnv.cache).
 * @returns value -> pseudonym.
 */
export function space(env: ReferenceEnv, name: string): Map<string, string> {
  let m = env.cache.get(name);
  if (!m) {
    m = new Map();
    env.cache.set(name, m);
  }
  return m;
}

/** Identifier systems that are public namespaces (HL7, national ids, DICOM), not a site's own URL. */
const PUBLIC_SYSTEM =
  /^(?:https?:\/\/(?:hl7\.org|terminology\.hl7\.org|loinc\.org|snomed\.info|www\.nlm\.nih\.gov|unitsofmeasure\.org)\/|urn:oid:2\.16\.840\.1\.113883\.|urn:ietf:rfc:3986$|urn:dicom:uid$)/;

/**
 * An identifier system as written on the global: public namespaces stay, a site's own system
 * (which may spell a clinic's host or even a patient's name) becomes `urn:uuid:` of a keyed
 * pseudonym. Conditional references use the same function, so they still match.
 * @param env - the batch's reference environment.
 * @param system - Identifier.system.
 * @returns the system to write.
 */
export function identifierSystem(env: ReferenceEnv, system: string): string {
  if (PUBLIC_SYSTEM.test(system)) {
    return system;
  }
  const memo = space(env, '|system');
  let p = memo.get(system);
  if (p === undefined) {
    p = `urn:uuid:${env.hmac.uuid(`${env.instanceId}|system|${system}`)}`;
    memo.set(system, p);
  }
  return p;
}

/**
 * Pseudonym of an identifier value, scoped by instance and identifier system. Conditional
 * references `Type?identifier=system|value` use the same function, so they still match.
 * @param env - rewriting environment.
 * @param system - Identifier.system (may be absent).
 * @param value - Identifier.value.
 * @returns UUID-shaped pseudonym.
 */
export function identifierPseudonym(env: ReferenceEnv, system: string | undefined, value: string): string {
  let bySystem = env.identifiers.get(system ?? '');
  if (!bySystem) {
    bySystem = new Map();
    env.identifiers.set(system ?? '', bySystem);
  }
  let p = bySystem.get(value);
  if (p === undefined) {
    p = env.hmac.uuid(`${env.instanceId}|identifier|${system ?? ''}|${value}`);
    bySystem.set(value, p);
  }
  return p;
}

/**
 * Pseudonym of a contained resource's local id (used for its `id` and every `#id`).
 * @param env - rewriting environment.
 * @param id - contained id.
 * @returns UUID-shaped pseudonym.
 */
export function containedPseudonym(env: ReferenceEnv, id: string): string {
  const memo = space(env, '#');
  let p = memo.get(id);
  if (p === undefined) {
    p = env.hmac.uuid(`${env.instanceId}|contained|${id}`);
    memo.set(id, p);
  }
  return p;
}

function urnPseudonym(env: ReferenceEnv, urn: string): string | undefined {
  const target = env.fullUrls.get(urn);
  if (target?.id !== undefined) {
    return env.exemptTypes.has(target.type) ? undefined : pseudonymousId(env, target.type, target.id);
  }
  if (target && env.exemptTypes.has(target.type)) {
    return undefined;
  }
  const memo = space(env, 'urn:');
  let p = memo.get(urn);
  if (p === undefined) {
    p = env.hmac.uuid(`${env.instanceId}|urn|${urn}`);
    memo.set(urn, p);
  }
  return p;
}

/**
 * Rewrites a Reference.reference.
 * @param env - rewriting environment.
 * @param ref - the reference string.
 * @returns the rewritten reference, or the reason it cannot be rewritten.
 */
export function rewriteReference(env: ReferenceEnv, ref: string): Rewrite {
  if (ref.startsWith('#')) {
    return ok(ref.length === 1 ? ref : '#' + containedPseudonym(env, ref.slice(1)));
  }
  if (ref.startsWith('urn:uuid:') || ref.startsWith('urn:oid:')) {
    const p = urnPseudonym(env, ref);
    return ok(p === undefined ? ref : 'urn:uuid:' + p);
  }
  const literal = LITERAL.exec(ref);
  if (literal && env.isResourceType(literal[2] as string)) {
    const type = literal[2] as string;
    return ok(`${type}/${pseudonymousId(env, type, literal[3] as string)}`);
  }
  const conditional = CONDITIONAL.exec(ref);
  if (conditional && env.isResourceType(conditional[1] as string)) {
    return rewriteConditional(env, conditional[1] as string, conditional[2] as string);
  }
  return { ok: false, reason: 'unrecognised reference form' };
}

/**
 * Rewrites `Type?identifier=system|value[&identifier=…]`; any other search parameter could
 * carry PHI that cannot be pseudonymised consistently, so it is refused.
 */
function rewriteConditional(env: ReferenceEnv, type: string, query: string): Rewrite {
  if (env.exemptTypes.has(type)) {
    return ok(`${type}?${query}`);
  }
  const parts: string[] = [];
  for (const param of query.split('&')) {
    const eq = param.indexOf('=');
    const name = eq < 0 ? param : param.slice(0, eq);
    if (name !== 'identifier' || eq < 0) {
      return { ok: false, reason: `conditional reference with parameter other than identifier` };
    }
    let token: string;
    try {
      token = decodeURIComponent(param.slice(eq + 1));
    } catch {
      return { ok: false, reason: 'conditional reference with bad URL encoding' };
    }
    const bar = token.indexOf('|');
    const system = bar < 0 ? undefined : token.slice(0, bar);
    const value = bar < 0 ? token : token.slice(bar + 1);
    if (value === '' || token.includes(',')) {
      return { ok: false, reason: 'conditional reference with empty or multiple identifier values' };
    }
    const pseudo = identifierPseudonym(env, system, value);
    parts.push(
      `identifier=${system === undefined ? '' : encodeURIComponent(identifierSystem(env, system)) + '|'}${pseudo}`,
    );
  }
  return ok(`${type}?${parts.join('&')}`);
}

/**
 * Rewrites Bundle.entry.fullUrl (always absolute: `urn:uuid:` after rewriting).
 * @param env - rewriting environment.
 * @param fullUrl - the entry's fullUrl.
 * @returns the new fullUrl; undefined to drop it (an exempt type's absolute URL names the site).
 */
export function rewriteFullUrl(env: ReferenceEnv, fullUrl: string): Rewrite | undefined {
  if (fullUrl.startsWith('urn:uuid:') || fullUrl.startsWith('urn:oid:')) {
    const p = urnPseudonym(env, fullUrl);
    return ok(p === undefined ? fullUrl : 'urn:uuid:' + p);
  }
  const literal = LITERAL.exec(fullUrl);
  if (literal && env.isResourceType(literal[2] as string)) {
    const type = literal[2] as string;
    return env.exemptTypes.has(type) ? undefined : ok('urn:uuid:' + pseudonymousId(env, type, literal[3] as string));
  }
  return { ok: false, reason: 'unrecognised fullUrl form' };
}

/**
 * Rewrites Bundle.entry.request.url (`Type`, `Type/id`, `Type/id/_history/v`, `Type?identifier=…`)
 * and entry.response.location.
 * @param env - rewriting environment.
 * @param url - the URL.
 * @returns the rewritten URL or the reason it cannot be rewritten.
 */
export function rewriteRequestUrl(env: ReferenceEnv, url: string): Rewrite {
  if (env.isResourceType(url) || /^(?:[A-Z][A-Za-z]+\/)?\$[A-Za-z][A-Za-z-]*$/.test(url)) {
    return ok(url); // create (`Type`) or an operation without parameters (`$op`, `Type/$op`)
  }
  const instanceOp = /^([A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64})\/(\$[A-Za-z][A-Za-z-]*)$/.exec(url);
  if (instanceOp) {
    const target = rewriteReference(env, instanceOp[1] as string);
    return target.ok ? ok(`${target.value}/${instanceOp[2] as string}`) : target;
  }
  return rewriteReference(env, url);
}

/**
 * The key a resource's date offset is derived from, when a reference points at a Patient.
 * @param env - rewriting environment.
 * @param ref - a Reference object.
 * @returns the patient key, or undefined when the reference does not name a Patient.
 */
export function patientKeyOfReference(env: ReferenceEnv, ref: unknown): string | undefined {
  if (typeof ref !== 'object' || ref === null) {
    return undefined;
  }
  const r = ref as { reference?: unknown; type?: unknown; identifier?: { system?: unknown; value?: unknown } };
  if (typeof r.reference === 'string') {
    return patientKeyOfString(env, r.reference);
  }
  if (r.type === 'Patient' && typeof r.identifier?.value === 'string') {
    const system = typeof r.identifier.system === 'string' ? r.identifier.system : undefined;
    return 'identifier:' + identifierPseudonym(env, system, r.identifier.value);
  }
  return undefined;
}

function patientKeyOfString(env: ReferenceEnv, s: string): string | undefined {
  if (s.startsWith('urn:')) {
    const target = env.fullUrls.get(s);
    return target?.type === 'Patient' && target.id !== undefined ? patientKey(env, target.id) : undefined;
  }
  const literal = LITERAL.exec(s);
  if (literal) {
    return literal[2] === 'Patient' ? patientKey(env, literal[3] as string) : undefined;
  }
  const conditional = CONDITIONAL.exec(s);
  if (conditional?.[1] === 'Patient') {
    const rewritten = rewriteConditional(env, 'Patient', conditional[2] as string);
    return rewritten.ok ? 'conditional:' + rewritten.value : undefined;
  }
  return undefined;
}

/**
 * The patient key of a Patient id: its pseudonym (the same for the Patient and every resource
 * referring to it). Other kinds of keys carry a prefix (`identifier:`, `conditional:`, `Self/`),
 * which a UUID never has.
 * @param env - rewriting environment.
 * @param id - the Patient's local id.
 * @returns the key.
 */
export function patientKey(env: ReferenceEnv, id: string): string {
  return pseudonymousId(env, 'Patient', id);
}

function ok(value: string): Rewrite {
  return { ok: true, value };
}
