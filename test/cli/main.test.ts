import { describe, expect, it } from 'vitest';
import { printError, runCli } from '../../src/cli/main.ts';
import type { CliIo } from '../../src/cli/main.ts';
import { defineError } from '../../src/shared/errors/index.ts';

function capture(env: Record<string, string> = {}): CliIo & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
    env,
    out: () => out,
    err: () => err,
  };
}

describe('fhir-sync dispatcher', () => {
  it('prints the usage for help and for no command', async () => {
    for (const argv of [[], ['help'], ['--help']]) {
      const io = capture();
      expect(await runCli(argv, io)).toBe(0);
      expect(io.out()).toContain('Usage: fhir-sync <command>');
      expect(io.out()).toContain('rules validate <file>');
    }
  });

  it('answers 2 and the usage for an unknown command', async () => {
    const io = capture();
    expect(await runCli(['frobnicate'], io)).toBe(2);
    expect(io.err()).toMatch(/^Unknown command: frobnicate\n/);
  });

  it('prints a coded error with each problem and its place, never a stack', () => {
    const E = defineError('TEST_ERR_CLI', 'Rules file %s has %s problem(s)', 400, false);
    const io = capture();
    printError(
      E.createWith({ problems: [{ line: 3, column: 7, message: 'unknown method', location: 'rules.yaml' }] }, [
        'rules.yaml',
        1,
      ]),
      io,
    );
    expect(io.err()).toBe('TEST_ERR_CLI: Rules file rules.yaml has 1 problem(s)\n  - rules.yaml:3:7: unknown method\n');
    const io2 = capture();
    printError(new TypeError('secret value "Jane"'), io2);
    expect(io2.err()).toBe('internal error (TypeError)\n');
  });
});

describe('fhir-sync sync arguments', () => {
  it('reads instance, type and options', async () => {
    const { parseSyncArgs } = await import('../../src/cli/sync.ts');
    expect(parseSyncArgs(['local-a', 'Patient'])).toEqual({
      instanceId: 'local-a',
      resourceType: 'Patient',
      reverse: false,
      reconcile: false,
      lock: true,
    });
    expect(parseSyncArgs(['--since', '2025-01-01T00:00:00Z', 'a', 'Observation', '--no-lock'])).toEqual({
      instanceId: 'a',
      resourceType: 'Observation',
      since: '2025-01-01T00:00:00Z',
      reverse: false,
      reconcile: false,
      lock: false,
    });
    expect(parseSyncArgs(['a', 'Organization', '--reverse'])?.reverse).toBe(true);
    expect(parseSyncArgs(['a', 'Observation', '--reconcile'])?.reconcile).toBe(true);
  });

  it('refuses incomplete or contradictory arguments', async () => {
    const { parseSyncArgs } = await import('../../src/cli/sync.ts');
    expect(parseSyncArgs(['a'])).toBeUndefined();
    expect(parseSyncArgs(['a', 'Patient', 'extra'])).toBeUndefined();
    expect(parseSyncArgs(['a', 'Patient', '--since', 'yesterday'])).toBeUndefined();
    expect(parseSyncArgs(['a', 'Organization', '--reverse', '--since', '2025-01-01'])).toBeUndefined();
    expect(parseSyncArgs(['a', 'Patient', '--frobnicate'])).toBeUndefined();
    expect(parseSyncArgs(['a', 'Patient', '--reconcile', '--since', '2025-01-01'])).toBeUndefined();
    expect(parseSyncArgs(['a', 'Patient', '--reconcile', '--reverse'])).toBeUndefined();
  });

  it('answers 2 with the usage for bad arguments', async () => {
    let err = '';
    const code = await runCli(['sync', 'only-one'], {
      stdout: { write: () => true },
      stderr: { write: (s: string) => (err += s) },
      env: {},
    });
    expect(code).toBe(2);
    expect(err).toMatch(/^Usage: fhir-sync sync/);
  });
});
