/**
 * Where the service may connect when it talks to a configured FHIR server or token endpoint
 * (issue 10: SSRF). An operator registers `baseUrl`/`tokenUrl`, and the worker then sends
 * requests (and credentials) there, so a URL must never reach the cloud metadata service,
 * link-local addresses, or the service's own Redis and API.
 *
 * A policy is a deny list (always applied, built-in entries first) and an optional allow
 * list (when set, an address must also match it). Entries are address ranges, optionally
 * bound to a port (`127.0.0.1:6379`), or host names bound to a port (`redis:6379`).
 * Addresses are normalised before checking: URLs already turn `0x7f000001` and `127.1` into
 * `127.0.0.1` (WHATWG URL parsing of http/https hosts); IPv6 forms that embed an IPv4
 * address (`::ffff:7f00:1`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are checked as both.
 *
 * The same check runs at registration (the URL as written: literal addresses and well-known
 * names) and at connect time on every address DNS returns (fhir-client.ts), so a name that
 * later resolves somewhere forbidden is still refused.
 */
import ipaddr from 'ipaddr.js';
import type { IPv4, IPv6 } from 'ipaddr.js';

type Ip = IPv4 | IPv6;

/** One policy entry. */
export interface NetRule {
  /** As written (for messages and docs). */
  readonly label: string;
  /** Address ranges the entry covers (empty for a host-name entry). */
  readonly ranges: readonly (readonly [Ip, number])[];
  /** Host name (lower case) the entry covers, for names that are not addresses. */
  readonly host?: string;
  /** Only this port; undefined = every port. */
  readonly port?: number;
}

/** Deny entries always apply; when `allow` is set, an address must also match one of it. */
export interface NetPolicy {
  readonly deny: readonly NetRule[];
  readonly allow?: readonly NetRule[];
}

/** Named ranges usable in FHIR_SYNC_NET_ALLOW / FHIR_SYNC_NET_DENY. */
export const NET_KEYWORDS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  loopback: ['127.0.0.0/8', '::1/128'],
  private: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', 'fc00::/7'],
  'link-local': ['169.254.0.0/16', 'fe80::/10'],
  any: ['0.0.0.0/0', '::/0'],
});

/**
 * Always denied: link-local (169.254.169.254 is the AWS/GCP/Azure metadata service),
 * the IPv6 metadata endpoint of AWS, Alibaba's and Azure's metadata/wire-server addresses,
 * "this host" (0.0.0.0 connects to the local machine on Linux), multicast, reserved and
 * broadcast ranges, and the metadata host names.
 */
export const BUILTIN_DENY: readonly string[] = Object.freeze([
  'link-local',
  'fd00:ec2::254/128',
  '100.100.100.200/32',
  '168.63.129.16/32',
  '0.0.0.0/8',
  '::/128',
  '224.0.0.0/4',
  '240.0.0.0/4',
  'ff00::/8',
  'metadata.google.internal',
  'metadata.goog',
  'metadata',
  'instance-data',
]);

/**
 * Parses a comma-separated list of entries: a keyword (`loopback`, `private`, `link-local`,
 * `any`), an address or CIDR range (`10.0.0.0/8`, `fd00::/8`), or a host name; each
 * optionally with a port (`127.0.0.1:6379`, `[::1]:6379`, `loopback:8080`, `redis:6379`).
 * @param text - the list.
 * @returns the rules, or the entries that do not parse.
 */
export function parseNetRules(text: string): { rules: NetRule[]; problems: string[] } {
  const rules: NetRule[] = [];
  const problems: string[] = [];
  for (const raw of text.split(',')) {
    const entry = raw.trim();
    if (entry === '') {
      continue;
    }
    const rule = parseRule(entry);
    if (rule === undefined) {
      problems.push(`'${entry.slice(0, 80)}' is not an address, range, keyword or host name (with an optional :port)`);
    } else {
      rules.push(rule);
    }
  }
  return { rules, problems };
}

function parseRule(entry: string): NetRule | undefined {
  const { target, port } = splitPort(entry);
  if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65_535)) {
    return undefined;
  }
  const ranges = rangesOf(target);
  if (ranges !== undefined) {
    return { label: entry, ranges, ...(port === undefined ? {} : { port }) };
  }
  if (/^[a-z0-9]([a-z0-9-]{0,62})(\.[a-z0-9]([a-z0-9-]{0,62}))*\.?$/i.test(target)) {
    return {
      label: entry,
      ranges: [],
      host: target.toLowerCase().replace(/\.$/, ''),
      ...(port === undefined ? {} : { port }),
    };
  }
  return undefined;
}

function splitPort(entry: string): { target: string; port?: number } {
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
  if (bracket !== null) {
    return { target: bracket[1]!, ...(bracket[2] === undefined ? {} : { port: Number(bracket[2]) }) };
  }
  const colons = entry.split(':').length - 1;
  if (colons === 1) {
    const [target, port] = entry.split(':') as [string, string];
    return { target, port: /^\d{1,5}$/.test(port) ? Number(port) : Number.NaN };
  }
  return { target: entry };
}

function rangesOf(target: string): (readonly [Ip, number])[] | undefined {
  const keyword = NET_KEYWORDS[target.toLowerCase()];
  if (keyword !== undefined) {
    return keyword.map((c) => ipaddr.parseCIDR(c));
  }
  if (target.includes('/')) {
    return ipaddr.isValidCIDR(target) ? [ipaddr.parseCIDR(target)] : undefined;
  }
  if (ipaddr.isValid(target) && (ipaddr.IPv6.isValid(target) || ipaddr.IPv4.isValidFourPartDecimal(target))) {
    const ip = ipaddr.parse(target);
    return [[ip, ip.kind() === 'ipv4' ? 32 : 128]];
  }
  return undefined;
}

/**
 * Builds a policy.
 * @param options - `allow`/`deny` lists (see {@link parseNetRules}) and extra deny rules
 *   (the service's own endpoints).
 * @returns the policy, or every problem found.
 */
export function createNetPolicy(options: { allow?: string; deny?: string; extraDeny?: readonly NetRule[] } = {}): {
  policy: NetPolicy;
  problems: string[];
} {
  const builtin = parseNetRules(BUILTIN_DENY.join(','));
  const deny = parseNetRules(options.deny ?? '');
  const allow = options.allow === undefined || options.allow.trim() === '' ? undefined : parseNetRules(options.allow);
  const policy: NetPolicy = {
    deny: [...builtin.rules, ...deny.rules, ...(options.extraDeny ?? [])],
    ...(allow === undefined ? {} : { allow: allow.rules }),
  };
  return {
    policy: Object.freeze(policy),
    problems: [...deny.problems.map((p) => `deny: ${p}`), ...(allow?.problems ?? []).map((p) => `allow: ${p}`)],
  };
}

/** The default policy: the built-in deny list, every other address allowed (loopback too). */
export const DEFAULT_NET_POLICY: NetPolicy = createNetPolicy().policy;

/**
 * Deny rules for one of the service's own endpoints (Redis, the API): the address and port
 * as given, and when the host is local (loopback, unspecified or `localhost`) the port on
 * every loopback address and on the given local interface addresses too, since a server
 * bound to 0.0.0.0 answers on all of them.
 * @param host - host name or address.
 * @param port - port.
 * @param localAddresses - this machine's interface addresses.
 * @returns the rules.
 */
export function ownEndpointRules(host: string, port: number, localAddresses: readonly string[]): NetRule[] {
  const label = `own endpoint ${host.includes(':') ? `[${host}]` : host}:${port}`;
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  const local = bare === 'localhost' || bare.endsWith('.localhost') || isLocalAddress(bare);
  const ranges: (readonly [Ip, number])[] = [];
  if (ipaddr.isValid(bare)) {
    const ip = normalize(ipaddr.parse(bare))[0]!;
    ranges.push([ip, ip.kind() === 'ipv4' ? 32 : 128]);
  }
  if (local) {
    ranges.push(...(NET_KEYWORDS.loopback ?? []).map((c) => ipaddr.parseCIDR(c)));
    for (const a of localAddresses) {
      if (ipaddr.isValid(a)) {
        const ip = ipaddr.parse(a);
        ranges.push([ip, ip.kind() === 'ipv4' ? 32 : 128]);
      }
    }
  }
  const rules: NetRule[] = [{ label, ranges, port }];
  if (!ipaddr.isValid(bare)) {
    rules.push({ label, ranges: [], host: bare, port });
  }
  return rules;
}

function isLocalAddress(a: string): boolean {
  if (!ipaddr.isValid(a)) {
    return false;
  }
  const range = ipaddr.process(a).range();
  return range === 'loopback' || range === 'unspecified';
}

/**
 * An address and the IPv4 addresses it embeds (mapped, NAT64, 6to4), all to be checked.
 * @param ip - a parsed address.
 * @returns the address forms to check.
 */
function normalize(ip: Ip): Ip[] {
  if (ip.kind() === 'ipv4') {
    return [ip];
  }
  const v6 = ip as IPv6;
  const bytes = v6.toByteArray();
  const range = v6.range();
  if (range === 'ipv4Mapped') {
    return [v6.toIPv4Address()];
  }
  if (range === 'rfc6052' || range === 'rfc6145') {
    return [v6, ipaddr.fromByteArray(bytes.slice(12, 16))];
  }
  if (range === '6to4') {
    return [v6, ipaddr.fromByteArray(bytes.slice(2, 6))];
  }
  // IPv4-compatible (::a.b.c.d, deprecated) addresses.
  if (bytes.slice(0, 12).every((b) => b === 0) && !(bytes[15]! <= 1 && bytes.slice(12, 15).every((b) => b === 0))) {
    return [v6, ipaddr.fromByteArray(bytes.slice(12, 16))];
  }
  return [v6];
}

function matches(rule: NetRule, forms: readonly Ip[], port: number): boolean {
  if (rule.port !== undefined && rule.port !== port) {
    return false;
  }
  return rule.ranges.some(([net, bits]) => forms.some((ip) => ip.kind() === net.kind() && ip.match(net, bits)));
}

/**
 * Whether the policy lets the service connect to an address.
 * @param policy - the policy.
 * @param address - an IPv4 or IPv6 address (as DNS or the URL gave it).
 * @param port - the port.
 * @returns undefined when allowed, else the label of the rule that refuses it.
 */
export function checkAddress(policy: NetPolicy, address: string, port: number): string | undefined {
  const bare = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  if (!ipaddr.isValid(bare)) {
    return 'not an address';
  }
  const forms = normalize(ipaddr.parse(bare));
  const denied = policy.deny.find((r) => matches(r, forms, port));
  if (denied !== undefined) {
    return denied.label;
  }
  if (policy.allow !== undefined && !policy.allow.some((r) => matches(r, forms, port))) {
    return 'not in the allow list';
  }
  return undefined;
}

/**
 * Whether the policy lets the service connect to a URL as written: a literal address is
 * checked as such, `localhost` as the loopback addresses, other names against the name
 * entries (their addresses are checked at connect time, after DNS).
 * @param policy - the policy.
 * @param url - an absolute http(s) URL.
 * @returns undefined when allowed, else why not.
 */
export function checkUrl(policy: NetPolicy, url: string | URL): string | undefined {
  let parsed: URL;
  try {
    parsed = typeof url === 'string' ? new URL(url) : url;
  } catch {
    return 'not a URL';
  }
  const port = parsed.port !== '' ? Number(parsed.port) : parsed.protocol === 'https:' ? 443 : 80;
  const host = parsed.hostname
    .replace(/^\[|\]$/g, '')
    .toLowerCase()
    .replace(/\.$/, '');
  if (ipaddr.isValid(host)) {
    return checkAddress(policy, host, port);
  }
  if (host === 'localhost' || host.endsWith('.localhost')) {
    return checkAddress(policy, '127.0.0.1', port) ?? checkAddress(policy, '::1', port);
  }
  const named = policy.deny.find((r) => r.host === host && (r.port === undefined || r.port === port));
  return named?.label;
}
