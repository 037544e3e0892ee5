/**
 * `fhir-sync doctor` against the three running HAPI servers of config/instances.yaml.
 */
import { describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/main.ts';

describe('fhir-sync doctor (live)', () => {
  it('finds the global and both locals reachable, FHIR 4.0.1, and says which feed each type uses', async () => {
    let out = '';
    const code = await runCli(['doctor'], {
      stdout: { write: (s: string) => (out += s) },
      stderr: { write: () => undefined },
      env: { ...process.env, FHIR_SYNC_INSTANCES: 'config/instances.yaml' },
    });
    expect(code).toBe(0);
    for (const name of ['global', 'local-a', 'local-b']) {
      expect(out).toMatch(new RegExp(`^${name} +http://127\\.0\\.0\\.1:809\\d/ +yes +ok +4\\.0\\.1`, 'm'));
    }
    expect(out).toContain('local-a Patient: fhir-history');
  });
});
