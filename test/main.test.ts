import { describe, expect, it } from 'vitest';
import { liveAnonymizer, rolesFlag, startService } from '../src/main.ts';
import type { Anonymizer } from '../src/anonymizer/index.ts';
import { checkEnv } from '../src/shared/env.ts';
import type { Env, ServiceRole } from '../src/shared/env.ts';

/** The roles a process runs: the --roles flag over FHIR_SYNC_ROLES, as the service reads them. */
function parseRoles(argv: readonly string[], env: Env): readonly ServiceRole[] {
  return checkEnv(env, { roles: rolesFlag(argv) }).settings.roles;
}

describe('roles of a process', () => {
  it('runs every role by default', () => {
    expect(parseRoles([], {})).toEqual(['api', 'worker', 'scheduler']);
    expect(parseRoles([], { FHIR_SYNC_ROLES: 'all' })).toEqual(['api', 'worker', 'scheduler']);
  });

  it('takes FHIR_SYNC_ROLES, and flags over it', () => {
    expect(parseRoles([], { FHIR_SYNC_ROLES: 'worker, api' })).toEqual(['api', 'worker']);
    expect(parseRoles(['--roles', 'scheduler'], { FHIR_SYNC_ROLES: 'api' })).toEqual(['scheduler']);
    expect(parseRoles(['--roles=worker,worker'], {})).toEqual(['worker']);
  });

  it('refuses an unknown role', () => {
    expect(() => parseRoles(['--roles', 'api,cron'], {})).toThrow(expect.objectContaining({ code: 'API_ERR_CONFIG' }));
  });
});

describe('boot configuration', () => {
  it('lists every problem before opening anything', async () => {
    const err = (await startService({
      env: {
        API_KEYS: 'x:admin:short',
        PORT: 'eighty',
        WORKER_CONCURRENCY: '0',
        SYNC_CHANNEL_CONCURRENCY: '1.5',
        SYNC_GLOBAL_CONCURRENCY: '65',
      },
    }).then(
      () => undefined,
      (e: unknown) => e,
    )) as { code: string; details: { problems: string[] } } | undefined;
    if (err === undefined) {
      throw new Error('startService accepted a broken configuration');
    }
    expect(err.code).toBe('API_ERR_CONFIG');
    expect(err.details.problems).toEqual(
      expect.arrayContaining([
        'WORKER_CONCURRENCY must be an integer from 1 to 64',
        'SYNC_CHANNEL_CONCURRENCY must be an integer from 1 to 32',
        'SYNC_GLOBAL_CONCURRENCY must be an integer from 1 to 64',
        'PORT must be an integer from 0 to 65535',
        'API_KEYS entry 1 (x): unknown role "admin" (operator, compliance, viewer)',
        'API_KEYS entry 1 (x): raw key shorter than 24 characters',
        expect.stringMatching(/^DEID_ERR_KEY_MISSING: /),
      ]),
    );
  });
});

describe('live anonymizer', () => {
  it('delegates every call to the anonymizer current at the time of the call', () => {
    const make = (v: string): Anonymizer => ({
      rulesVersion: v,
      keyId: 'k',
      pseudonymousId: (_i, _t, id) => `${v}-${id}`,
      deidentify: () => ({ outcomes: [], report: { rules: { [v]: 1 }, paths: {} } }),
    });
    let current = make('v1');
    const live = liveAnonymizer(() => current);
    expect([live.rulesVersion, live.pseudonymousId('a', 'Patient', '1')]).toEqual(['v1', 'v1-1']);
    current = make('v2');
    expect(live.rulesVersion).toBe('v2');
    expect(live.deidentify([], { instanceId: 'a' }).report.rules).toEqual({ v2: 1 });
  });
});
