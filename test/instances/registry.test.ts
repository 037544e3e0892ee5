import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { openInstanceRegistry, parseInstances } from '../../src/instances/index.ts';
import type { InstanceRegistry } from '../../src/instances/index.ts';

const initial = `# top comment survives
version: 1
global:
  baseUrl: http://127.0.0.1:8090/
  auth: { type: basic, usernameEnv: FHIR_SYNC_SECRET_G_USER, passwordEnv: FHIR_SYNC_SECRET_G_PASS } # global auth
instances:
  # the first clinic
  - id: local-a
    baseUrl: http://127.0.0.1:8091/
    sendTypes: [Patient]
    receiveAdminTypes: [Organization]
`;

let dir: string;
let file: string;
let reg: InstanceRegistry;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'instances-'));
  file = join(dir, 'instances.yaml');
  await writeFile(file, initial);
  reg = await openInstanceRegistry(file);
});

describe('instance registry', () => {
  it('lists and gets normalized records', async () => {
    const list = await reg.list();
    expect(list.map((i) => i.id)).toEqual(['local-a']);
    expect(await reg.get('local-a')).toMatchObject({ fhirUrlPath: 'fhir', enabled: true });
    expect(await reg.get('nope')).toBeUndefined();
  });

  it('adds an instance, writes the file atomically and keeps comments', async () => {
    const rec = await reg.add({
      id: 'local-b',
      baseUrl: 'http://127.0.0.1:8092',
      sendTypes: ['Patient', 'Observation'],
      auth: { type: 'bearer', tokenEnv: 'FHIR_SYNC_SECRET_LOCAL_B_TOKEN' },
    });
    expect(rec).toMatchObject({ id: 'local-b', baseUrl: 'http://127.0.0.1:8092/', enabled: true });
    const text = await readFile(file, 'utf8');
    expect(text).toContain('# top comment survives');
    expect(text).toContain('# the first clinic');
    expect(text).toContain('FHIR_SYNC_SECRET_LOCAL_B_TOKEN');
    expect(parseInstances(text, { source: file }).config.instances).toHaveLength(2);
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const again = await openInstanceRegistry(file);
    expect((await again.list()).map((i) => i.id)).toEqual(['local-a', 'local-b']);
  });

  it('refuses duplicates, invalid input and inline secrets without writing', async () => {
    await expect(reg.add({ id: 'local-a', baseUrl: 'http://x/', sendTypes: ['Patient'] })).rejects.toMatchObject({
      code: 'SYNC_ERR_INSTANCE_EXISTS',
    });
    const bad = reg.add({
      id: 'c',
      baseUrl: 'http://x/',
      sendTypes: ['Patient'],
      auth: {
        type: 'basic',
        usernameEnv: 'FHIR_SYNC_SECRET_U',
        passwordEnv: 'FHIR_SYNC_SECRET_P',
        password: 's3cret-value',
      },
    });
    await expect(bad).rejects.toMatchObject({ code: 'SYNC_ERR_INSTANCE_INVALID' });
    const err = await bad.catch((e: unknown) => e);
    expect(JSON.stringify(err)).not.toContain('s3cret-value');
    expect((err as Error).message).not.toContain('s3cret-value');
    await expect(reg.add({ id: 'd', baseUrl: 'http://x/', sendTypes: ['Nope'] })).rejects.toMatchObject({
      code: 'SYNC_ERR_INSTANCE_INVALID',
      details: { problems: [{ path: 'sendTypes[0]', message: 'is not an R4 resource type' }] },
    });
    await expect(
      reg.add({ id: 'e', baseUrl: 'http://x/', sendTypes: ['Patient'], receiveAdminTypes: ['Patient'] }),
    ).rejects.toMatchObject({ code: 'SYNC_ERR_INSTANCE_INVALID' });
    expect(await readFile(file, 'utf8')).toBe(initial);
  });

  it('updates with a merge patch and resets fields with null', async () => {
    const rec = await reg.update('local-a', {
      enabled: false,
      references: { unsynced: 'drop' },
      receiveAdminTypes: null,
    });
    expect(rec.enabled).toBe(false);
    expect(rec.references).toEqual({ unsynced: 'drop', localOnlyAdmin: 'mask' });
    expect(rec.receiveAdminTypes).toEqual([]);
    await expect(reg.update('local-a', { id: 'other' })).rejects.toMatchObject({ code: 'SYNC_ERR_INSTANCE_INVALID' });
    await expect(reg.update('ghost', { enabled: true })).rejects.toMatchObject({ code: 'SYNC_ERR_INSTANCE_UNKNOWN' });
    await expect(reg.update('local-a', { schedule: 'not cron' })).rejects.toMatchObject({
      code: 'SYNC_ERR_INSTANCE_INVALID',
    });
    expect((await reg.get('local-a'))?.schedule).toBe('*/5 * * * *');
  });

  it('removes an instance', async () => {
    await reg.remove('local-a');
    expect(await reg.list()).toEqual([]);
    await expect(reg.remove('local-a')).rejects.toMatchObject({ code: 'SYNC_ERR_INSTANCE_UNKNOWN' });
  });

  it('refuses unregistered, disabled and unsynced types with coded errors', async () => {
    await expect(reg.requireEnabled('ghost')).rejects.toMatchObject({ code: 'SYNC_ERR_INSTANCE_UNKNOWN' });
    await expect(reg.requireEnabled('local-a', 'Observation')).rejects.toMatchObject({
      code: 'SYNC_ERR_TYPE_NOT_SYNCED',
    });
    await expect(reg.requireEnabled('local-a', 'Organization', 'receive')).resolves.toMatchObject({ id: 'local-a' });
    await reg.update('local-a', { enabled: false });
    await expect(reg.requireEnabled('local-a', 'Patient')).rejects.toMatchObject({
      code: 'SYNC_ERR_INSTANCE_DISABLED',
    });
  });

  it('picks up hand edits of the file and serializes concurrent mutations', async () => {
    await writeFile(file, initial.replace('sendTypes: [Patient]', 'sendTypes: [Patient, Encounter]'));
    expect((await reg.get('local-a'))?.sendTypes).toEqual(['Patient', 'Encounter']);
    const ids = ['x1', 'x2', 'x3', 'x4'];
    await Promise.all(ids.map((id) => reg.add({ id, baseUrl: 'http://127.0.0.1:9999/', sendTypes: ['Patient'] })));
    expect((await reg.list()).map((i) => i.id)).toEqual(['local-a', ...ids]);
  });

  it('notifies listeners after a change', async () => {
    const seen: number[] = [];
    reg.onChange((c) => seen.push(c.instances.length));
    await reg.add({ id: 'n', baseUrl: 'http://127.0.0.1:9999/', sendTypes: ['Patient'] });
    expect(seen).toEqual([2]);
  });
});
