/**
 * Where the four HAPI FHIR test servers live: names, ports, directories and JVM settings, read
 * once from the environment so the CLI and the vitest global setup agree on them.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The fixed roles of the test servers. */
export const ServerName = {
  global: 'global',
  localA: 'local-a',
  localB: 'local-b',
  /** A local that refuses `_history` (like servers without history): exercises `_lastUpdated` feeds. */
  localC: 'local-c',
} as const;
export type ServerName = (typeof ServerName)[keyof typeof ServerName];

/** Everything needed to start, find and stop one server. */
export interface ServerSpec {
  readonly name: ServerName;
  readonly port: number;
  /** FHIR base URL, e.g. `http://127.0.0.1:8090/fhir`. */
  readonly baseUrl: string;
  /** H2 database directory; deleted before each start unless `keepData`. */
  readonly dataDir: string;
  readonly logFile: string;
  readonly pidFile: string;
  /** Started with `--no-history`: `_history` answers 405 and is absent from the CapabilityStatement. */
  readonly noHistory: boolean;
}

/** Settings shared by all servers. */
export interface ServersConfig {
  readonly servers: readonly ServerSpec[];
  /** Root of PIDs, logs and data (git-ignored). @defaultValue `<repo>/.servers` */
  readonly stateDir: string;
  /** Maven project of the Java launcher. */
  readonly hapiDir: string;
  /** Maximum heap per server. @defaultValue `768m` */
  readonly heap: string;
  /** Keep the databases of a previous run (FHIR_KEEP_DATA=1). @defaultValue false */
  readonly keepData: boolean;
  /** How long to wait for /fhir/metadata after launch. @defaultValue 300 s */
  readonly startTimeoutMs: number;
  /** Extra JVM options, appended after the defaults so they win (FHIR_SERVER_JVM_OPTS). */
  readonly extraJvmOptions: readonly string[];
  readonly javaBin: string;
  readonly mavenBin: string;
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const defaultPorts: Readonly<Record<ServerName, number>> = {
  global: 8090,
  'local-a': 8091,
  'local-b': 8092,
  'local-c': 8093,
};

const portEnv: Readonly<Record<ServerName, string>> = {
  global: 'FHIR_GLOBAL_PORT',
  'local-a': 'FHIR_LOCAL_A_PORT',
  'local-b': 'FHIR_LOCAL_B_PORT',
  'local-c': 'FHIR_LOCAL_C_PORT',
};

/**
 * Reads the configuration from the environment; every bad value is reported at once.
 * @param env - usually `process.env`
 * @returns the frozen configuration
 */
export function loadServersConfig(env: NodeJS.ProcessEnv = process.env): ServersConfig {
  const problems: string[] = [];
  const stateDir = path.resolve(env.FHIR_SERVERS_DIR ?? path.join(repoRoot, '.servers'));
  const servers = Object.values(ServerName).map((name) => serverSpec(name, readPort(env, name, problems), stateDir));
  const ports = new Set(servers.map((s) => s.port));
  if (ports.size !== servers.length) {
    problems.push(`ports must differ: ${servers.map((s) => `${s.name}=${s.port}`).join(', ')}`);
  }
  const heap = env.FHIR_SERVER_HEAP ?? '768m';
  if (!/^\d+[kmg]$/i.test(heap)) {
    problems.push(`FHIR_SERVER_HEAP must look like 768m or 1g, got "${heap}"`);
  }
  const timeoutS = Number(env.FHIR_START_TIMEOUT_S ?? '300');
  if (!Number.isFinite(timeoutS) || timeoutS <= 0) {
    problems.push(`FHIR_START_TIMEOUT_S must be a positive number of seconds`);
  }
  if (problems.length > 0) {
    throw new Error(`Invalid test server settings:\n  - ${problems.join('\n  - ')}`);
  }
  return Object.freeze({
    servers: Object.freeze(servers),
    stateDir,
    hapiDir: path.join(repoRoot, 'test', 'servers', 'hapi'),
    heap,
    keepData: env.FHIR_KEEP_DATA === '1' || env.FHIR_KEEP_DATA === 'true',
    startTimeoutMs: timeoutS * 1000,
    extraJvmOptions: Object.freeze((env.FHIR_SERVER_JVM_OPTS ?? '').split(/\s+/).filter((o) => o !== '')),
    javaBin: env.JAVA ?? 'java',
    mavenBin: env.MVN ?? 'mvn',
  });
}

function readPort(env: NodeJS.ProcessEnv, name: ServerName, problems: string[]): number {
  const raw = env[portEnv[name]];
  if (raw === undefined || raw === '') {
    return defaultPorts[name];
  }
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    problems.push(`${portEnv[name]} must be a port number (1-65535), got "${raw}"`);
    return defaultPorts[name];
  }
  return port;
}

function serverSpec(name: ServerName, port: number, stateDir: string): ServerSpec {
  return Object.freeze({
    name,
    port,
    baseUrl: `http://127.0.0.1:${port}/fhir`,
    dataDir: path.join(stateDir, 'data', name),
    logFile: path.join(stateDir, 'logs', `${name}.log`),
    pidFile: path.join(stateDir, `${name}.pid`),
    noHistory: name === ServerName.localC,
  });
}
