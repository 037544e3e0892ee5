/** Unit tests of the test-server configuration read from the environment. */
import { describe, expect, it } from 'vitest';
import { loadServersConfig } from './config.ts';

describe('loadServersConfig', () => {
  it('defaults to ports 8090-8093 under <repo>/.servers with a 768m heap', () => {
    const config = loadServersConfig({});
    expect(config.servers.map((s) => [s.name, s.baseUrl])).toEqual([
      ['global', 'http://127.0.0.1:8090/fhir'],
      ['local-a', 'http://127.0.0.1:8091/fhir'],
      ['local-b', 'http://127.0.0.1:8092/fhir'],
      ['local-c', 'http://127.0.0.1:8093/fhir'],
    ]);
    // Only local-c refuses _history; the other three keep HAPI's full behaviour.
    expect(config.servers.map((s) => s.noHistory)).toEqual([false, false, false, true]);
    expect(config.stateDir).toMatch(/[/\\]\.servers$/);
    expect(config.servers[0]!.dataDir).toBe(`${config.stateDir}/data/global`);
    expect(config.heap).toBe('768m');
    expect(config.keepData).toBe(false);
    expect(config.extraJvmOptions).toEqual([]);
  });

  it('takes ports, directory, heap, keep flag and JVM options from the environment', () => {
    const config = loadServersConfig({
      FHIR_GLOBAL_PORT: '9190',
      FHIR_LOCAL_A_PORT: '9191',
      FHIR_LOCAL_B_PORT: '9192',
      FHIR_LOCAL_C_PORT: '9193',
      FHIR_SERVERS_DIR: '/tmp/x-servers',
      FHIR_SERVER_HEAP: '1g',
      FHIR_KEEP_DATA: '1',
      FHIR_SERVER_JVM_OPTS: ' -XX:TieredStopAtLevel=4  -Dfoo=bar ',
    });
    expect(config.servers.map((s) => s.port)).toEqual([9190, 9191, 9192, 9193]);
    expect(config.servers[2]!.pidFile).toBe('/tmp/x-servers/local-b.pid');
    expect(config.heap).toBe('1g');
    expect(config.keepData).toBe(true);
    expect(config.extraJvmOptions).toEqual(['-XX:TieredStopAtLevel=4', '-Dfoo=bar']);
  });

  it('reports every invalid value at once', () => {
    const load = (): unknown =>
      loadServersConfig({ FHIR_GLOBAL_PORT: 'abc', FHIR_LOCAL_A_PORT: '70000', FHIR_SERVER_HEAP: 'lots' });
    expect(load).toThrow(/FHIR_GLOBAL_PORT[\s\S]*FHIR_LOCAL_A_PORT[\s\S]*FHIR_SERVER_HEAP/);
  });

  it('refuses two servers on the same port', () => {
    expect(() => loadServersConfig({ FHIR_LOCAL_A_PORT: '8090' })).toThrow(/ports must differ/);
  });

  it('returns a frozen configuration', () => {
    const config = loadServersConfig({});
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.servers[0])).toBe(true);
  });
});
