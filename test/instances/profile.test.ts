/** Server profiles: saved atomically, read back leniently (a hint, never required). */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bundleCapsOf, feedKindsOf, loadProfiles, saveProfile } from '../../src/instances/profile.ts';

describe('server profiles', () => {
  it('round-trips, ignores what is not a profile, and gives the caps by FHIR base', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'profiles-'));
    await saveProfile(dir, {
      version: 1,
      name: 'global',
      fhirBase: 'https://g.example/fhir',
      probedAt: '2026-12-05T00:00:00Z',
      write: { clientIds: true, atomic: true, bundleCap: 50 },
      feedKinds: { Patient: 'search-lastupdated' },
    });
    await writeFile(join(dir, 'junk.json'), '{"version": 2}');
    await writeFile(join(dir, 'broken.json'), '{');
    const profiles = await loadProfiles(dir);
    expect(profiles.map((p) => p.name)).toEqual(['global']);
    expect([...bundleCapsOf(profiles)]).toEqual([['https://g.example/fhir', 50]]);
    expect([...feedKindsOf(profiles)]).toEqual([['https://g.example/fhir', { Patient: 'search-lastupdated' }]]);
    expect(await loadProfiles(join(dir, 'absent'))).toEqual([]);
  });

  it('refuses a name that is not a registry id (no path tricks)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'profiles-'));
    await expect(saveProfile(dir, { version: 1, name: '../x', fhirBase: 'b', probedAt: 'now' })).rejects.toThrow();
  });
});
