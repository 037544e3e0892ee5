/**
 * Free-text scrubbing cost against note size, through the shipped profile: one Observation whose
 * `note.text` is 10 KB, 100 KB or 1 MB, de-identified in a batch with its Patient (so the
 * record's own names feed the dictionary). Two texts per size: clinical prose, and one long
 * token with no spaces (the worst case of the e-mail pattern before issue 10 made it linear).
 * Goal (issue 10): a 1 MB note in <= 100 ms. Prints figures; asserts nothing.
 *
 * Run: `node bench/scrub.ts` (or `npm run bench -- scrub`).
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Observation, Patient, Resource } from '@medplum/fhirtypes';
import { createAnonymizer, loadRulesFile, makeKey } from '../src/anonymizer/index.ts';

const repo = fileURLToPath(new URL('../', import.meta.url));
const rules = loadRulesFile(join(repo, 'config/anonymization.yaml'));
const anonymizer = createAnonymizer({ rules, key: makeKey('bench', 'benchmark-key-0123456789abcdefghij') });

const patient: Patient = {
  resourceType: 'Patient',
  id: 'p1',
  name: [{ family: 'Hoeger', given: ['Buster'] }],
  telecom: [{ system: 'phone', value: '555-201-7788' }],
  birthDate: '1951-03-04',
};
const sentence =
  'Buster Hoeger seen on 2024-03-05 for BP 120/80; call 555-201-7788 or buster@example.org. Follow-up in 3 weeks. ';

function note(kind: 'prose' | 'token', size: number): string {
  const unit = kind === 'prose' ? sentence : 'a1.';
  return unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
}

function observation(text: string): Observation {
  return {
    resourceType: 'Observation',
    id: 'o1',
    status: 'final',
    code: { text: 'Note' },
    subject: { reference: 'Patient/p1' },
    note: [{ text }],
  };
}

let round = 0;
function timeOnce(text: string): number {
  const batch: Resource[] = [patient, observation(text)];
  const start = performance.now();
  const { outcomes } = anonymizer.deidentify(batch, { instanceId: `bench-scrub-${round++}` });
  const ms = performance.now() - start;
  if (outcomes.length !== 2) {
    throw new Error('unexpected outcome count');
  }
  return ms;
}

console.log('note size  text   median ms (5 runs)  MB/s');
for (const kind of ['prose', 'token'] as const) {
  for (const size of [10_000, 100_000, 1_000_000]) {
    const text = note(kind, size);
    timeOnce(text); // warm-up
    const times = Array.from({ length: 5 }, () => timeOnce(text)).sort((a, b) => a - b);
    const median = times[2] ?? 0;
    console.log(
      `${String(size).padStart(9)}  ${kind.padEnd(5)}  ${median.toFixed(1).padStart(18)}  ${(size / 1e6 / (median / 1000)).toFixed(1).padStart(5)}`,
    );
  }
}
