/**
 * `fhir-sync doctor --write-probes` against a real HAPI global: client-chosen ids accepted,
 * transactions atomic, the configured bundle size accepted; the profile is saved where
 * workers read it, and the probe resources are gone afterwards.
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bundle } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/main.ts';
import { bundleCapsOf, feedKindsOf, loadProfiles } from '../../src/instances/index.ts';
import { fhirUrls } from '../servers/urls.ts';
import { writeInstances } from '../sync/live.ts';

async function probesOnGlobal(global: string): Promise<number | undefined> {
  const res = await fetch(`${global}/Basic?_tag=urn:fhir-sync|probe&_summary=count`, {
    headers: { 'Cache-Control': 'no-cache' }, // HAPI reuses a search's results for 60 s otherwise
  });
  return ((await res.json()) as Bundle).total;
}

describe('fhir-sync doctor --write-probes (live)', () => {
  it('probes the global with writes, prints the bundle shape and saves a profile workers read', async () => {
    const urls = fhirUrls();
    const { path } = await writeInstances(
      urls.global,
      [{ id: 'dw-a', fhirBase: urls.localC, sendTypes: ['Patient'], feedKind: 'auto' }],
      {
        bundleSize: 40,
      },
    );
    const dir = await mkdtemp(join(tmpdir(), 'profiles-'));
    // Probes an earlier, interrupted run may have left on the shared global do not count.
    const before = await probesOnGlobal(urls.global);
    let out = '';
    const code = await runCli(['doctor', '--write-probes'], {
      stdout: { write: (s: string) => (out += s) },
      stderr: { write: () => undefined },
      env: { ...process.env, FHIR_SYNC_INSTANCES: path, FHIR_SYNC_PROFILES_DIR: dir },
    });
    expect(out).toContain('client-chosen ids: yes');
    expect(out).toContain('transaction atomic: yes');
    expect(out).toContain('bundle cap: accepts 40 (searched up to 40)');
    expect(out).toMatch(/Bundle shape used: transactions of up to 40 entries/);
    expect(code).toBe(0);
    const profile = JSON.parse(await readFile(join(dir, 'global.json'), 'utf8')) as Record<string, unknown>;
    expect(profile).toMatchObject({
      version: 1,
      name: 'global',
      write: { clientIds: true, atomic: true, bundleCap: 40 },
    });
    const profiles = await loadProfiles(dir);
    expect([...bundleCapsOf(profiles)]).toEqual([[urls.global.replace(/\/+$/, ''), 40]]);
    // The local without _history: auto's probed kind is saved for the workers.
    expect([...feedKindsOf(profiles)]).toEqual([[urls.localC.replace(/\/+$/, ''), { Patient: 'search-lastupdated' }]]);
    expect(out).toContain('dw-a Patient: search-lastupdated');
    // Cleaned up: this run left no probe Basic behind.
    expect(await probesOnGlobal(urls.global)).toBe(before);
  }, 120_000);
});
