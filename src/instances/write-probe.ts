/**
 * Write probes of the global server (`fhir-sync doctor --write-probes`, never by default):
 * whether it accepts client-chosen ids, whether a transaction is atomic, and the largest
 * transaction it accepts up to the configured bundle size. They write only `Basic` resources
 * tagged `urn:fhir-sync|probe` under fresh UUIDs and delete them afterwards; they never touch
 * data. What they find is saved as a server profile (profile.ts) that the engine reads.
 */
import { randomUUID } from 'node:crypto';
import type { Basic, Bundle, BundleEntry } from '@medplum/fhirtypes';
import { createFhirClient } from '../shared/fhir-client.ts';
import type { FhirClientOptions } from '../shared/fhir-client.ts';
import { fhirRequest } from '../shared/fhir-http.ts';
import { toFhirConnection } from './connection.ts';
import type { ServerConnection } from './types.ts';

/** What the write probes found. */
export interface WriteProbe {
  /** A PUT to a new client-chosen id creates it. */
  readonly clientIds: boolean;
  /** A transaction with one failing entry leaves nothing written; undefined when not testable. */
  readonly atomic?: boolean;
  /** Largest transaction accepted, at most `upTo` (the configured bundle size). */
  readonly bundleCap?: number;
  /** Why a probe could not run (status only). */
  readonly problem?: string;
}

const PROBE_TAG = { system: 'urn:fhir-sync', code: 'probe' } as const;

type Poster = (bundle: Bundle) => Promise<{ status: number; body: unknown }>;

/**
 * Runs the write probes against one server.
 * @param server - its connection (the global).
 * @param upTo - the configured bundle size: the cap is searched up to it.
 * @param options - client options.
 * @returns the findings.
 */
export async function probeWrites(
  server: ServerConnection,
  upTo: number,
  options: FhirClientOptions = {},
): Promise<WriteProbe> {
  const client = createFhirClient(toFhirConnection(server), options);
  const post: Poster = async (bundle) => {
    const answer = await fhirRequest(client, client.fhirUrl().toString(), { method: 'POST', body: bundle });
    return { status: answer.status, body: answer.body };
  };
  return runWriteProbes(post, upTo);
}

/**
 * The probes over any transaction poster (tests give recorded answer shapes).
 * @param post - POSTs a transaction, answers status and parsed body.
 * @param upTo - the configured bundle size.
 * @returns the findings.
 */
export async function runWriteProbes(post: Poster, upTo: number): Promise<WriteProbe> {
  const written = new Set<string>();
  try {
    const id = randomUUID();
    const first = await post(transaction([put(id)]));
    if (!entriesOk(first, 1)) {
      return { clientIds: false, problem: `HTTP ${first.status} to a PUT of a new client-chosen id` };
    }
    written.add(id);
    const atomic = await probeAtomic(post, id, written);
    const bundleCap = await probeCap(post, upTo, written);
    return {
      clientIds: true,
      ...(atomic === undefined ? {} : { atomic }),
      ...(bundleCap === undefined ? {} : { bundleCap }),
    };
  } finally {
    await cleanUp(post, [...written]);
  }
}

/**
 * One good entry and one the server must refuse: a PUT to the first probe resource with a
 * stale `If-Match` (the precondition every cursor commit relies on).
 */
async function probeAtomic(post: Poster, existing: string, written: Set<string>): Promise<boolean | undefined> {
  const good = randomUUID();
  written.add(good);
  const stale: BundleEntry = {
    ...put(existing),
    request: { method: 'PUT', url: `Basic/${existing}`, ifMatch: 'W/"999999"' },
  };
  const answer = await post(transaction([put(good), stale]));
  if (answer.status < 400 && entriesOk(answer, 2)) {
    return undefined; // the server ignored the precondition: nothing learned about atomicity
  }
  // Refused whole or in part: atomic when the good entry did not land either.
  const check = await post({
    resourceType: 'Bundle',
    type: 'batch',
    entry: [{ request: { method: 'GET', url: `Basic?_id=${good}` } }],
  });
  const found = (check.body as Bundle | undefined)?.entry?.[0]?.resource as Bundle | undefined;
  if (check.status >= 400 || found === undefined) {
    return undefined;
  }
  return (found.total ?? found.entry?.length ?? 0) === 0;
}

/** Largest accepted size, by halving from `upTo` (accepted at once: the cap is not below it). */
async function probeCap(post: Poster, upTo: number, written: Set<string>): Promise<number | undefined> {
  let lo = 0; // largest accepted
  let hi = upTo + 1; // smallest refused
  let size = upTo;
  for (let tries = 0; tries < 12 && hi - lo > 1; tries++) {
    const ids = Array.from({ length: size }, () => randomUUID());
    ids.forEach((i) => written.add(i));
    const answer = await post(transaction(ids.map(put)));
    if (entriesOk(answer, size)) {
      lo = size;
    } else if (answer.status >= 400 && answer.status < 500) {
      hi = size;
    } else {
      return lo === 0 ? undefined : lo;
    }
    size = Math.floor((lo + hi) / 2);
  }
  return lo === 0 ? undefined : lo;
}

async function cleanUp(post: Poster, ids: readonly string[]): Promise<void> {
  // Small bundles: a capped server must not refuse the clean-up. A failed clean-up leaves
  // only tagged probe Basics, which the next run does not depend on.
  for (let i = 0; i < ids.length; i += 20) {
    const chunk = transaction(
      ids.slice(i, i + 20).map((id) => ({ request: { method: 'DELETE' as const, url: `Basic/${id}` } })),
    );
    // A busy server may refuse a transaction for a moment (a lock conflict under load): try
    // again before leaving probes behind.
    for (let attempt = 1; attempt <= 3; attempt++) {
      const answer = await post(chunk).catch(() => undefined);
      if (answer !== undefined && answer.status < 400) {
        break;
      }
      await new Promise((r) => setTimeout(r, 250 * attempt));
    }
  }
}

function basic(id: string): Basic {
  return { resourceType: 'Basic', id, meta: { tag: [{ ...PROBE_TAG }] }, code: { coding: [{ ...PROBE_TAG }] } };
}

function put(id: string): BundleEntry {
  return { resource: basic(id), request: { method: 'PUT', url: `Basic/${id}` } };
}

function transaction(entry: BundleEntry[]): Bundle {
  return { resourceType: 'Bundle', type: 'transaction', entry };
}

function entriesOk(answer: { status: number; body: unknown }, n: number): boolean {
  if (answer.status >= 300) {
    return false;
  }
  const entries = (answer.body as Bundle | undefined)?.entry ?? [];
  return entries.length === n && entries.every((e) => /^2\d\d/.test(e.response?.status ?? ''));
}
