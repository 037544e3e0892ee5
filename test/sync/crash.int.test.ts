/**
 * Crash tests of the exactly-once cursor against the real servers:
 * - a worker process killed with SIGKILL at several points of a pass (before the first page,
 *   after a few pages, late in the pass), then a fresh worker: the global ends with exactly
 *   the expected set, every resource at version 1 (replays are identical PUTs);
 * - the global server stopped in the middle of a pass and started again (our own extra HAPI
 *   on a spare port, its database kept): nothing lost, the job completes by itself.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Basic } from '@medplum/fhirtypes';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeKey } from '../../src/anonymizer/index.ts';
import { cursorId, initSyncQueue } from '../../src/sync/index.ts';
import type { JobInfo, SyncQueue } from '../../src/sync/index.ts';
import { parseCursor } from '../../src/sync/state.ts';
import { loadServersConfig } from '../servers/config.ts';
import type { ServerName, ServerSpec } from '../servers/config.ts';
import { answersMetadata } from '../servers/health.ts';
import { launchServer, stopProcess } from '../servers/process.ts';
import { ensureLauncherBuilt } from '../servers/servers.ts';
import { fhirUrls } from '../servers/urls.ts';
import {
  FIXTURES,
  fixture,
  getJson,
  loadBundle,
  primeCursors,
  storeAt,
  testAnonymizer,
  uniq,
  waitFor,
  writeInstances,
} from './live.ts';

const urls = fhirUrls();
const run = uniq();
const prefix = `fhir-sync-crash-${run}`;
const secret = randomBytes(32);
const { anonymizer, codec } = testAnonymizer(makeKey('sync-test', secret));
const TYPE = 'Observation';
const children = new Set<ChildProcess>();
let redis: Redis;
let queue: SyncQueue;
const observations: string[] = [];
let since: Date;

function startWorkerProcess(instancesPath: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['test/sync/worker-process.ts'], {
    env: {
      ...process.env,
      SYNC_TEST_KEY_HEX: secret.toString('hex'),
      SYNC_TEST_INSTANCES: instancesPath,
      SYNC_TEST_PREFIX: prefix,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve(child));
  });
}

function kill(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

async function job(id: string): Promise<JobInfo> {
  return (await queue.getJob(id))!;
}

/** Every loaded Observation is on the global, once, at version 1; the cursor covers them all. */
async function expectExactSet(globalBase: string, instanceId: string): Promise<void> {
  const versions = new Map<string, string | undefined>();
  for (const id of observations) {
    const got = await getJson(`${globalBase}/${TYPE}/${anonymizer.pseudonymousId(instanceId, TYPE, id)}`);
    versions.set(id, got.status === 200 ? got.body.meta?.versionId : `HTTP ${got.status}`);
  }
  expect([...versions.values()].filter((v) => v !== '1')).toEqual([]);
  const quarantine = await getJson<{ total?: number; entry?: unknown[] }>(
    `${globalBase}/Basic?identifier=urn:fhir-sync:quarantine-scope|forward/${instanceId}/${TYPE}&_summary=count`,
  );
  expect(quarantine.body.total ?? 0).toBe(0);
  const cursor = await getJson<Basic>(`${globalBase}/Basic/${cursorId('forward', instanceId, TYPE)}`);
  expect(parseCursor(cursor.body).cursor).toBeDefined();
}

beforeAll(async () => {
  redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
  queue = initSyncQueue({ connection: redis, prefix, attempts: 30, backoffMs: 1000 });
  // `since` is back-dated 2 s for timestamp slack; wait that long first so writes of the
  // test file that ran just before (e.g. an Observation left dangling on purpose by the
  // server smoke tests) fall before it and are not part of this test's expected set.
  await new Promise((r) => setTimeout(r, 2500));
  since = new Date(Date.now() - 2000);
  for (const path of [FIXTURES.luigi, FIXTURES.buster, FIXTURES.liz]) {
    observations.push(...((await loadBundle(urls.localA, await fixture(path))).get(TYPE) ?? []));
  }
}, 120_000);

afterAll(async () => {
  for (const c of children) {
    c.kill('SIGKILL');
  }
  await queue?.queue.obliterate({ force: true });
  await queue?.close();
  const keys = await redis?.keys(`${prefix}:*`);
  if (keys !== undefined && keys.length > 0) {
    await redis.del(...keys);
  }
  redis?.disconnect();
});

describe('a worker killed with SIGKILL in the middle of a pass', () => {
  // A worker left running by a failed case would take the next case's jobs from the shared
  // queue (with the wrong registry) and fail it too: stop every child after each case.
  afterEach(async () => {
    await Promise.all([...children].map((c) => kill(c)));
  });
  const points: { label: string; when: (j: JobInfo) => boolean }[] = [
    { label: 'as soon as the job is active', when: (j) => j.state === 'active' },
    { label: 'after 3 pages', when: (j) => j.progress.pages >= 3 },
    { label: 'after 12 pages', when: (j) => j.progress.pages >= 12 },
  ];
  for (const point of points) {
    it(`ends with exactly the expected set when killed ${point.label}`, async () => {
      const id = `k-${uniq()}`;
      const { path } = await writeInstances(urls.global, [
        { id, fhirBase: urls.localA, sendTypes: ['Patient', 'Encounter', TYPE], pageSize: 5 },
      ]);
      await primeCursors(storeAt(urls.global), codec, id, [TYPE], since);
      const first = await startWorkerProcess(path);
      const jobId = await queue.addManual({ kind: 'pass', instanceId: id, resourceType: TYPE });
      await waitFor(async () => point.when(await job(jobId)), 60_000, point.label, 20);
      const atKill = (await job(jobId)).progress;
      await kill(first);
      expect((await job(jobId)).state).not.toBe('completed');
      const second = await startWorkerProcess(path);
      await waitFor(
        async () => (await job(jobId)).state === 'completed',
        120_000,
        'the job to complete after the restart',
        200,
      );
      const done = await job(jobId);
      // The restarted pass resumed from the committed cursor, not from the start (at most the
      // page in flight at the kill is written again).
      expect(done.progress.pages).toBeGreaterThan(0);
      expect(done.progress.resources).toBeLessThanOrEqual(observations.length - atKill.resources + 5);
      await expectExactSet(urls.global, id);
      // One more pass finds nothing left to write.
      const again = await queue.addManual({ kind: 'pass', instanceId: id, resourceType: TYPE });
      await waitFor(async () => (await job(again)).state === 'completed', 60_000, 'the follow-up pass', 200);
      expect((await job(again)).progress.resources).toBe(0);
      await kill(second);
    }, 300_000);
  }
});

describe('the global server stopped during a pass', () => {
  let spec: ServerSpec | undefined;
  const serversConfig = loadServersConfig();

  afterAll(async () => {
    if (spec !== undefined) {
      await stopProcess(spec);
    }
  });

  it('loses nothing and completes by itself once the server is back', async () => {
    const port = 18_000 + Math.floor(Math.random() * 1000);
    const dir = await mkdtemp(join(tmpdir(), 'sync-own-global-'));
    spec = {
      name: `sync-global-${run}` as ServerName,
      port,
      baseUrl: `http://127.0.0.1:${port}/fhir`,
      dataDir: join(dir, 'data'),
      logFile: join(dir, 'server.log'),
      pidFile: join(dir, 'server.pid'),
      noHistory: false,
    };
    // The shared servers may have been up already, in which case this run built nothing.
    await ensureLauncherBuilt(serversConfig, () => undefined);
    await launchServer(spec, serversConfig);
    await waitFor(() => answersMetadata(spec!.baseUrl), serversConfig.startTimeoutMs, 'our own global server', 1000);

    const id = `g-${uniq()}`;
    const { path } = await writeInstances(spec.baseUrl, [
      { id, fhirBase: urls.localA, sendTypes: ['Patient', 'Encounter', TYPE], pageSize: 5 },
    ]);
    await primeCursors(storeAt(spec.baseUrl), codec, id, [TYPE], since);
    const worker = await startWorkerProcess(path);
    const jobId = await queue.addManual({ kind: 'pass', instanceId: id, resourceType: TYPE });
    await waitFor(async () => (await job(jobId)).progress.pages >= 3, 120_000, 'three pages', 20);
    await stopProcess(spec, 20_000);
    expect(await answersMetadata(spec.baseUrl)).toBe(false);
    await new Promise((r) => setTimeout(r, 3000));
    expect((await job(jobId)).state).not.toBe('completed');
    await launchServer(spec, serversConfig); // same database directory: the data written so far stays
    await waitFor(() => answersMetadata(spec!.baseUrl), serversConfig.startTimeoutMs, 'our global server back', 1000);
    await waitFor(async () => (await job(jobId)).state === 'completed', 300_000, 'the job to complete by itself', 500);
    await expectExactSet(spec.baseUrl, id);
    await kill(worker);
  }, 900_000);
});
