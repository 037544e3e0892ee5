/**
 * `npm run bench`: runs every benchmark in bench/ one after the other, each in its own
 * Node process pinned to one core (taskset) when the machine has taskset, so figures are
 * per core and one benchmark's garbage does not skew the next. Benchmarks print figures;
 * nothing here asserts on time.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts')
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort();
const hasTaskset = spawnSync('taskset', ['--version']).status === 0;

let failed = 0;
for (const file of files) {
  const cmd = hasTaskset ? 'taskset' : process.execPath;
  const args = hasTaskset ? ['-c', '0', process.execPath, join(here, file)] : [join(here, file)];
  console.log(`\n### ${file}${hasTaskset ? ' (pinned to core 0)' : ''}`);
  const res = spawnSync(cmd, args, { stdio: 'inherit' });
  if (res.status !== 0) {
    failed++;
    console.log(`### ${file} exited with ${String(res.status ?? res.signal)}`);
  }
}
process.exit(failed === 0 ? 0 : 1);
