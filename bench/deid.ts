/**
 * De-identification throughput with the shipped profile over the Synthea bundles
 * (`<repo>/../shared/fhir-data/`, else the fixtures), on one thread: resources per second, and
 * the ratio to `JSON.parse` + `JSON.stringify` of the same data.
 *
 * Each bundle's entries are one batch of resources (as the sync engine passes them), so the
 * figures include per-batch work (fullUrl map, free-text dictionary). Goals (issue 4):
 * >= 10,000 resources/s and <= 3x parse+stringify. Prints figures; asserts nothing.
 *
 * The machine's load average is printed too: on a busy machine run it a few times and take the
 * median.
 *
 * Run: `node bench/deid.ts` (or `npm run bench -- deid`, which pins it to one core).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { createAnonymizer, loadRulesFile, makeKey } from '../src/anonymizer/index.ts';

const repo = fileURLToPath(new URL('../', import.meta.url));
const shared = join(repo, '../shared/fhir-data/smart-generated-sample-data-r4-synthea');
const dir = existsSync(shared) ? shared : join(repo, 'test/fixtures/anonymizer/synthea');
const texts = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => readFileSync(join(dir, f), 'utf8'));
const batches: Resource[][] = texts.map((t) =>
  ((JSON.parse(t) as Bundle).entry ?? []).map((e) => e.resource as Resource),
);
const entryTexts: string[][] = batches.map((b) => b.map((r) => JSON.stringify(r)));
const resources = batches.reduce((n, b) => n + b.length, 0);
const bytes = entryTexts.flat().reduce((n, t) => n + t.length, 0);

const rules = loadRulesFile(join(repo, 'config/anonymization.yaml'));
const anonymizer = createAnonymizer({ rules, key: makeKey('bench', 'benchmark-key-0123456789abcdefghij') });

// Every round uses a new instance id, so no pseudonym or date offset comes from the memo of an
// earlier round: each round pays the HMACs as a sync pass over new resources would.
let round = 0;

function deidOnly(): number {
  let failed = 0;
  round++;
  for (const batch of batches) {
    const { outcomes } = anonymizer.deidentify(batch, { instanceId: `bench-${round}` });
    failed += outcomes.filter((o) => !o.ok).length;
  }
  return failed;
}

function parseStringify(): number {
  let n = 0;
  for (const batch of entryTexts) {
    for (const t of batch) {
      n += JSON.stringify(JSON.parse(t) as unknown).length;
    }
  }
  return n;
}

function endToEnd(): number {
  let n = 0;
  round++;
  for (const batch of entryTexts) {
    const input = batch.map((t) => JSON.parse(t) as Resource);
    for (const o of anonymizer.deidentify(input, { instanceId: `bench-e2e-${round}` }).outcomes) {
      n += o.ok ? JSON.stringify(o.resource).length : 0;
    }
  }
  return n;
}

/**
 * Best (minimum) wall time of each function over `rounds` interleaved rounds, after a warm-up.
 * Interleaving and the minimum keep the ratio meaningful on a busy machine: noise only ever
 * adds time.
 */
function timeAll(fns: readonly (() => unknown)[], rounds = 9): number[] {
  fns.forEach((fn) => {
    fn();
    fn();
  });
  const best = fns.map(() => Number.POSITIVE_INFINITY);
  for (let r = 0; r < rounds; r++) {
    fns.forEach((fn, i) => {
      const t0 = process.hrtime.bigint();
      fn();
      best[i] = Math.min(best[i] as number, Number(process.hrtime.bigint() - t0) / 1e6);
    });
  }
  return best;
}

const loadBefore = loadavg()[0] as number;
const failed = deidOnly();
const [tDeid, tBase, tE2E] = timeAll([deidOnly, parseStringify, endToEnd]) as [number, number, number];
const perSec = (ms: number): string => Math.round((resources / ms) * 1000).toLocaleString('en-US');

process.stdout.write(
  [
    `deid: ${batches.length} bundles, ${resources} resources, ${(bytes / 1e6).toFixed(1)} MB of JSON, profile ${rules.profile} (${rules.rules.length} rules), ${failed} failed`,
    `deid: de-identify only          ${tDeid.toFixed(0)} ms  ${perSec(tDeid)} resources/s`,
    `deid: JSON.parse+stringify      ${tBase.toFixed(0)} ms  ${perSec(tBase)} resources/s`,
    `deid: parse+deid+stringify      ${tE2E.toFixed(0)} ms  ${perSec(tE2E)} resources/s`,
    `deid: ratio de-identify only / (parse+stringify)         = ${(tDeid / tBase).toFixed(2)}x  (goal <= 3x)`,
    `deid: ratio parse+deid+stringify / (parse+stringify)    = ${(tE2E / tBase).toFixed(2)}x`,
    `deid: load average (1 min) ${loadBefore.toFixed(2)} before, ${(loadavg()[0] as number).toFixed(2)} after (other work on the machine skews figures)`,
    '',
  ].join('\n'),
);
