import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { loadInstancesFile, parseInstances } from '../../src/instances/index.ts';
import type { ConfigProblem } from '../../src/instances/index.ts';
import { AppError } from '../../src/shared/errors/index.ts';

const base = `version: 1
global:
  baseUrl: http://127.0.0.1:8090
instances:
  - id: local-a
    baseUrl: http://127.0.0.1:8091/
    sendTypes: [Patient, Observation]
`;

function problemsOf(text: string): ConfigProblem[] {
  try {
    parseInstances(text, { source: 'x.yaml' });
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('SYNC_ERR_INSTANCES_INVALID');
    return (err as AppError).details.problems as ConfigProblem[];
  }
  throw new Error('expected invalid');
}

describe('instances.yaml loader', () => {
  it('takes an optional reconcileSchedule (cron checked), absent by default', () => {
    expect(parseInstances(base, { source: 'x.yaml' }).config.instances[0]!.reconcileSchedule).toBeUndefined();
    const withIt = base.replace(
      'sendTypes: [Patient, Observation]',
      "sendTypes: [Patient]\n    reconcileSchedule: '0 3 * * *'",
    );
    expect(parseInstances(withIt, { source: 'x.yaml' }).config.instances[0]!.reconcileSchedule).toBe('0 3 * * *');
    const bad = base.replace(
      'sendTypes: [Patient, Observation]',
      "sendTypes: [Patient]\n    reconcileSchedule: 'nope'",
    );
    expect(problemsOf(bad).map((p) => p.path)).toContain('instances[0].reconcileSchedule');
  });

  it('fills defaults and freezes', () => {
    const { config } = parseInstances(base, { source: 'x.yaml' });
    expect(config.global.baseUrl).toBe('http://127.0.0.1:8090/');
    expect(config.global.fhirUrlPath).toBe('fhir');
    expect(config.global.bundleSize).toBe(100);
    expect(config.global.adminTypes).toEqual(['Organization', 'Location']);
    const a = config.instances[0]!;
    expect(a).toMatchObject({
      id: 'local-a',
      enabled: true,
      feed: { kind: 'fhir-history' },
      schedule: '*/5 * * * *',
      receiveAdminTypes: [],
    });
    expect(a.references).toEqual({ unsynced: 'mask', localOnlyAdmin: 'mask' });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(a.sendTypes)).toBe(true);
    expect(() => (a.sendTypes as string[]).push('X')).toThrow();
  });

  it('loads the shipped config/instances.yaml', async () => {
    const { config } = await loadInstancesFile('config/instances.yaml');
    expect(config.instances.map((i) => i.id)).toEqual(['local-a', 'local-b']);
  });

  it('reports every problem with its line and column', () => {
    const text = `version: 1
global:
  baseUrl: ftp://x
  adminTypes: [Organization]
instances:
  - id: Local_A
    baseUrl: http://user:pw@127.0.0.1:8091/
    sendTypes: [Patient, Patiente, Patient, Organization]
    receiveAdminTypes: [Location]
    schedule: 'every minute'
    auth: { type: basic, usernameEnv: U, password: hunter2 }
  - id: b
    baseUrl: http://127.0.0.1:8092/
    sendTypes: [Basic]
  - id: b
    baseUrl: http://127.0.0.1:8093/
    sendTypes: [Patient]
`;
    const probs = problemsOf(text);
    const by = (path: string): ConfigProblem | undefined => probs.find((p) => p.path === path);
    expect(by('global.baseUrl')).toMatchObject({ line: 3, column: 12 });
    expect(by('instances[0].id')).toMatchObject({ line: 6 });
    expect(by('instances[0].baseUrl')?.message).toMatch(/credentials/);
    expect(by('instances[0].sendTypes[1]')).toMatchObject({ line: 8, message: 'is not an R4 resource type' });
    expect(by('instances[0].sendTypes[2]')?.message).toBe('is listed twice');
    expect(by('instances[0].schedule')).toMatchObject({ line: 10 });
    expect(by('instances[0].auth')).toBeDefined();
    // zod stops at the first failing layer; the second pass (semantic) runs once the shape is valid
    const messages = JSON.stringify(probs);
    expect(messages).not.toContain('hunter2');
    expect(messages).not.toContain('pw@');
  });

  it('runs semantic checks once the shape is valid', () => {
    const text = `version: 1
global:
  baseUrl: http://127.0.0.1:8090
  adminTypes: [Organization]
instances:
  - id: a
    baseUrl: http://127.0.0.1:8091/
    sendTypes: [Patient, Organization]
    receiveAdminTypes: [Location]
  - id: b
    baseUrl: http://127.0.0.1:8092/
    sendTypes: [Basic]
  - id: a
    baseUrl: http://127.0.0.1:8093/
    sendTypes: [Patient]
    references: { localOnlyAdmin: send }
`;
    const probs = problemsOf(text);
    expect(probs.map((p) => `${p.line}:${p.column} ${p.path} ${p.message}`)).toEqual([
      '8:26 instances[0].sendTypes[1] is an admin type: sending it requires references.localOnlyAdmin: send',
      '9:25 instances[0].receiveAdminTypes[0] is not one of global.adminTypes',
      '12:17 instances[1].sendTypes[0] is reserved for the engine state',
      '13:9 instances[2].id duplicates the id of instances[0]',
      '16:35 instances[2].references.localOnlyAdmin is send, but sendTypes lists no admin type',
    ]);
  });

  it('rejects duplicate keys and YAML syntax errors with positions', () => {
    const probs = problemsOf(`version: 1\nglobal:\n  baseUrl: http://x/\n  baseUrl: http://y/\n`);
    expect(probs[0]).toMatchObject({ line: 4, message: 'duplicate key' });
    expect(problemsOf('version: [1\n')[0]?.line).toBeDefined();
  });

  it('points a missing key at its parent', () => {
    const probs = problemsOf(`version: 1\nglobal:\n  fhirUrlPath: fhir\n`);
    expect(probs).toEqual([expect.objectContaining({ path: 'global.baseUrl', line: 3 })]);
  });

  it('names the file when it cannot be read', async () => {
    await expect(loadInstancesFile('/nonexistent/instances.yaml')).rejects.toMatchObject({
      code: 'SYNC_ERR_INSTANCES_FILE',
    });
  });

  it('keeps the shipped example in sync with the schema docs', async () => {
    const text = await readFile('config/instances.yaml', 'utf8');
    expect(text).not.toMatch(/password:|token:|secret:/i);
  });
});
