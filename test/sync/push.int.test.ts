/**
 * Push wake-up against real HAPI servers: the service (API, worker and scheduler roles) keeps a
 * rest-hook Subscription per sent type on the local; a change there is on the global within
 * seconds although no pass is ever scheduled (cron once a year) or triggered. A lost
 * notification changes nothing for the guarantee: the next pass (here a manual one, standing for
 * the schedule) carries what was missed, from the cursor.
 */
import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import type { Subscription } from '@medplum/fhirtypes';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAnonymizer, deidKeyFrom, loadRulesFile } from '../../src/anonymizer/index.ts';
import { parseDeidKeyEnv } from '../../src/shared/env.ts';
import type { Anonymizer } from '../../src/anonymizer/index.ts';
import { startService } from '../../src/main.ts';
import type { RunningService } from '../../src/main.ts';
import { sealingCodec } from '../../src/sync/index.ts';
import { stateId } from '../../src/sync/ids.ts';
import { fhirUrls } from '../servers/urls.ts';
import { getJson, primeCursors, serviceFiles, storeAt, waitFor } from './live.ts';

const run = randomBytes(4).toString('hex');
const INSTANCE = `push-${run}`;
const OPERATOR = randomBytes(16).toString('hex');
const urls = fhirUrls();
let service: RunningService;
let oracle: Anonymizer;
let serviceEnv: Record<string, string>;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function putPatient(id: string): Promise<void> {
  const res = await fetch(`${urls.localA}/Patient/${id}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/fhir+json' },
    body: JSON.stringify({ resourceType: 'Patient', id, name: [{ family: `Wake${run}` }] }),
  });
  expect(res.status).toBeLessThan(300);
}

const onGlobal = async (id: string): Promise<boolean> =>
  (await getJson(`${urls.global}/Patient/${oracle.pseudonymousId(INSTANCE, 'Patient', id)}`)).status === 200;

beforeAll(async () => {
  const port = await freePort();
  const { env } = await serviceFiles({
    name: 'push',
    globalBase: urls.global,
    instanceId: INSTANCE,
    localBase: urls.localA,
    sendTypes: ['Patient'],
    feed: '{ kind: fhir-history, settleMs: 0 }',
    apiKeys: `ops:operator+viewer:${OPERATOR}`,
    env: {
      API_PORT: String(port),
      FHIR_SYNC_PUBLIC_URL: `http://127.0.0.1:${port}`,
      FHIR_SYNC_PUSH_SECRET: randomBytes(32).toString('hex'),
      FHIR_SYNC_ROLES: 'api,worker,scheduler',
    },
  });
  const key = deidKeyFrom(parseDeidKeyEnv(env));
  oracle = createAnonymizer({ rules: loadRulesFile(env.RULES_FILE!), key });
  await primeCursors(storeAt(urls.global), sealingCodec(key.secret, key.id), INSTANCE, ['Patient'], new Date());
  serviceEnv = env;
  service = await startService({ env, logger: pino({ level: 'silent' }) });
}, 120_000);

afterAll(async () => {
  await service?.close();
  // Leave no Subscription behind on the shared local.
  await fetch(`${urls.localA}/Subscription/${stateId('push', INSTANCE, 'Patient')}`, { method: 'DELETE' });
});

describe('push wake-up', () => {
  const subscriptionUrl = `${urls.localA}/Subscription/${stateId('push', INSTANCE, 'Patient')}`;

  it('keeps an active rest-hook Subscription per sent type on the local, without payload', async () => {
    let sub: Subscription | undefined;
    await waitFor(
      async () => {
        sub = (await getJson<Subscription>(subscriptionUrl)).body;
        return sub?.status === 'active';
      },
      30_000,
      'subscription active',
    );
    expect(sub!.criteria).toBe('Patient?');
    expect(sub!.channel.type).toBe('rest-hook');
    expect(sub!.channel.payload).toBeUndefined();
    expect(sub!.channel.endpoint).toBe(`${service.url}/hooks/fhir/${INSTANCE}/Patient`);
    expect(sub!.channel.header?.[0]).toMatch(/^x-fhir-sync-token: [0-9a-f]{64}$/);
  });

  it('carries a change to the global with no scheduled or manual pass', async () => {
    const id = `wake-${run}-1`;
    await putPatient(id);
    await waitFor(() => onGlobal(id), 30_000, 'pushed change on the global');
  });

  it('catches up from the cursor after a lost notification', async () => {
    // A notification is lost: while the service is down, something else on its address accepts
    // the notification and drops it. (A refused or failed delivery is no loss: HAPI retries it
    // until it goes through. Changing the Subscription instead reaches HAPI's matcher at its own
    // pace: 30 s and more in CI.)
    const port = Number(new URL(service.url!).port);
    await service.close();
    const received: string[] = [];
    const sink = createHttpServer((req, res) => {
      received.push(req.url ?? '');
      req.resume();
      res.writeHead(200).end();
    });
    await new Promise<void>((r) => sink.listen(port, '127.0.0.1', r));
    const id = `wake-${run}-lost`;
    try {
      await putPatient(id);
      await waitFor(
        () => Promise.resolve(received.includes(`/hooks/fhir/${INSTANCE}/Patient`)),
        30_000,
        'the notification, dropped',
      );
    } finally {
      await new Promise((r) => sink.close(r));
    }
    service = await startService({ env: serviceEnv, logger: pino({ level: 'silent' }) });
    await sleep(5000);
    expect(await onGlobal(id), 'on the global before any pass').toBe(false);
    const res = await fetch(`${service.url}/sync/${INSTANCE}/Patient`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OPERATOR}`, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(res.status).toBe(202);
    await waitFor(() => onGlobal(id), 30_000, 'missed change after the next pass');
  });
});
