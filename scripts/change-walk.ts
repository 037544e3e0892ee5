/**
 * `node scripts/change-walk.ts`: how many source files one change walks through, from the
 * worker's job to the global server. One Patient is written to local A, then one sync job runs
 * it through the real engine (feed → de-identify → bundle → write) into the global; V8's
 * coverage of the job alone (after setup) says which files under src/ ran code beyond their
 * module body (importing a file is not walking through it). Needs the HAPI test servers (`npm run servers:start`).
 * Prints the count and the files. Environment: FHIR_GLOBAL_URL, FHIR_LOCAL_A_URL.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(import.meta.url), '..', '..');

if (process.env.CHANGE_WALK_CHILD !== '1') {
  const dir = mkdtempSync(join(tmpdir(), 'walk-'));
  const res = spawnSync(process.execPath, [fileURLToPath(import.meta.url)], {
    stdio: 'inherit',
    env: { ...process.env, CHANGE_WALK_CHILD: '1', NODE_V8_COVERAGE: dir },
  });
  if (res.status !== 0) {
    process.exit(res.status ?? 1);
  }
  const walked = new Set<string>();
  // The child writes a snapshot after its setup (rules and registry loaded) and resets the
  // counters: the last file holds the job alone.
  for (const f of readdirSync(dir).sort().slice(-1)) {
    const { result } = JSON.parse(readFileSync(join(dir, f), 'utf8')) as {
      result: { url: string; functions: { functionName: string; ranges: { count: number }[] }[] }[];
    };
    for (const script of result) {
      if (!script.url.startsWith('file://')) {
        continue;
      }
      const file = relative(root, fileURLToPath(script.url));
      // The first function is the module body; any other that ran means the walk went through.
      if (file.startsWith('src/') && script.functions.slice(1).some((fn) => (fn.ranges[0]?.count ?? 0) > 0)) {
        walked.add(file);
      }
    }
  }
  const files = [...walked].sort();
  console.log(`one change, worker job to global: ${files.length} files under src/`);
  for (const f of files) {
    console.log(`  ${f}`);
  }
} else {
  const { randomBytes } = await import('node:crypto');
  const { pino } = await import('pino');
  const { createAnonymizer, loadRulesFile, makeKey } = await import('../src/anonymizer/index.ts');
  const { parseInstances } = await import('../src/instances/index.ts');
  const sync = await import('../src/sync/index.ts');
  const GLOBAL = process.env.FHIR_GLOBAL_URL ?? 'http://127.0.0.1:8090/fhir';
  const LOCAL = process.env.FHIR_LOCAL_A_URL ?? 'http://127.0.0.1:8091/fhir';
  const rootOf = (u: string): string => u.replace(/\/fhir\/?$/, '/');
  const run = randomBytes(4).toString('hex');
  const id = `walk-${run}`;
  // The pass reads from just before this write, so other writes of the local stay out of it.
  const since = new Date(Date.now() - 1000).toISOString();
  const put = await fetch(`${LOCAL}/Patient/${id}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/fhir+json' },
    body: JSON.stringify({ resourceType: 'Patient', id, name: [{ family: 'Walker', given: ['Ada'] }] }),
  });
  if (!put.ok) {
    throw new Error(`local answered ${put.status}`);
  }
  const key = makeKey('walk', randomBytes(32));
  const anonymizer = createAnonymizer({ rules: loadRulesFile('config/anonymization.yaml'), key });
  const config = parseInstances(
    `version: 1
global: { baseUrl: '${rootOf(GLOBAL)}', bundleSize: 100 }
instances:
  - id: walk-${run}
    baseUrl: '${rootOf(LOCAL)}'
    feed: { kind: fhir-history, settleMs: 0 }
    sendTypes: [Patient]
`,
    { source: 'walk' },
  ).config;
  const engine = sync.createSyncEngine({
    config: () => Promise.resolve(config),
    anonymizer,
    codec: sync.sealingCodec(key.secret, key.id),
    logger: pino({ level: 'silent' }),
  });
  (await import('node:v8')).takeCoverage();
  const r = await engine.runJob(
    { kind: 'pass', instanceId: `walk-${run}`, resourceType: 'Patient', range: { since } },
    { lock: (_i: string, fn: (s: AbortSignal | undefined) => Promise<unknown>) => fn(undefined) } as never,
  );
  const written = (r.passes ?? []).reduce((n: number, p: { resources: number }) => n + p.resources, 0);
  if (written < 1) {
    throw new Error('the change did not reach the global');
  }
}
