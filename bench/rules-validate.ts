/**
 * Rules validation cost against file size (issue 10: linear in the number of problems): a 1 MB
 * rules file made of the shipped profile plus unknown keys (one problem each), and one plus
 * repeated keys, loaded and rejected with every problem located. Prints figures; asserts nothing.
 *
 * Run: `node bench/rules-validate.ts` (or `npm run bench -- rules`).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadRules } from '../src/anonymizer/index.ts';

const repo = fileURLToPath(new URL('../', import.meta.url));
const profile = readFileSync(join(repo, 'config/anonymization.yaml'), 'utf8');

function padded(kind: 'unknown' | 'duplicate', bytes: number): string {
  let out = profile;
  let i = 0;
  while (out.length < bytes) {
    out += kind === 'unknown' ? `unknown_key_${i++}: 1\n` : `version: 1\n`;
  }
  return out;
}

function problems(text: string): number {
  try {
    loadRules(text);
    return 0;
  } catch (err) {
    const details = (err as { details?: { problems?: unknown[] } }).details;
    return details?.problems?.length ?? -1;
  }
}

console.log('file          kind       problems   ms');
for (const size of [100_000, 1_000_000]) {
  for (const kind of ['unknown', 'duplicate'] as const) {
    const text = padded(kind, size);
    const start = performance.now();
    const n = problems(text);
    const ms = performance.now() - start;
    console.log(
      `${String(text.length).padStart(9)} B  ${kind.padEnd(9)}  ${String(n).padStart(8)}  ${ms.toFixed(0).padStart(5)}`,
    );
  }
}
