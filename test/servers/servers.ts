/**
 * Lifecycle of the three HAPI FHIR test servers (global, local-a, local-b), shared by the
 * `npm run servers:*` CLI and the vitest global setup.
 */
import { readFile, rm } from 'node:fs/promises';
import { loadServersConfig } from './config.ts';
import type { ServerName, ServerSpec, ServersConfig } from './config.ts';
import { answersMetadata } from './health.ts';
import { needsBuild, runMavenBuild } from './maven.ts';
import { isServerProcess, launchServer, readPidRecord, sleep, stopProcess } from './process.ts';
import { markStartedByTests, releaseLease, startedByTests, takeLease, withStartLock } from './coordination.ts';

/** Base URLs of the running servers, as tests see them. */
export interface FhirServerUrls {
  readonly global: string;
  readonly localA: string;
  readonly localB: string;
  readonly localC: string;
}

/** Who asks for the servers: decides whether a test run may stop them later. */
export const Owner = { cli: 'cli', tests: 'tests' } as const;
export type Owner = (typeof Owner)[keyof typeof Owner];

/** I/O the lifecycle functions use; defaults print to the console. */
export interface LifecycleOptions {
  readonly config?: ServersConfig;
  /** Progress lines (which server, seconds elapsed). @defaultValue console.log */
  readonly log?: (line: string) => void;
}

/** Options of {@link startServers}. */
export interface StartOptions extends LifecycleOptions {
  /**
   * `cli`: the servers stay up until `servers:stop`. `tests`: servers launched now are stopped
   * by the last test run to finish. @defaultValue 'cli'
   */
  readonly owner?: Owner;
}

/** Outcome of {@link startServers}. */
export interface StartResult {
  readonly urls: FhirServerUrls;
  /** Servers this call launched; the others were already up. */
  readonly started: readonly ServerName[];
  /** Seconds from launch until /metadata answered, per launched server. */
  readonly startSeconds: Readonly<Partial<Record<ServerName, number>>>;
}

/** One line of {@link serverStatus}. */
export interface ServerState {
  readonly name: ServerName;
  readonly baseUrl: string;
  readonly pid: number | null;
  readonly processAlive: boolean;
  readonly answering: boolean;
}

const PROGRESS_EVERY_MS = 10_000;

/**
 * The base URLs from the configuration (ports may be overridden by env).
 * @param config - defaults to the environment's configuration
 */
export function serverUrls(config: ServersConfig = loadServersConfig()): FhirServerUrls {
  const url = (name: ServerName): string => config.servers.find((s) => s.name === name)!.baseUrl;
  return { global: url('global'), localA: url('local-a'), localB: url('local-b'), localC: url('local-c') };
}

/**
 * Builds the launcher if needed, then starts every server that does not already answer and
 * waits until all answer GET /fhir/metadata. Databases are wiped first unless keepData.
 * Only one process starts servers at a time; others wait and then reuse them.
 */
export async function startServers(options: StartOptions = {}): Promise<StartResult> {
  const config = options.config ?? loadServersConfig();
  const log = options.log ?? console.log;
  const owner = options.owner ?? Owner.cli;
  return withStartLock(
    config.stateDir,
    async () => {
      const result = await startMissing(config, log);
      if (owner === Owner.cli) {
        await markStartedByTests(config.stateDir, null);
      } else if (result.started.length > 0) {
        await markStartedByTests(config.stateDir, result.started);
      }
      return result;
    },
    (pid) => log(`[servers] waiting for process ${pid}, which is starting the servers…`),
  );
}

/**
 * Builds the launcher when its outputs are missing or stale. Tests that start a server of their
 * own call it: when the shared servers were already up, the run built nothing.
 * @param config - the servers configuration.
 * @param log - progress lines.
 */
export async function ensureLauncherBuilt(config: ServersConfig, log: (line: string) => void): Promise<void> {
  if (await needsBuild(config.hapiDir)) {
    log('[servers] building the HAPI FHIR launcher with Maven (an empty ~/.m2 downloads ~340 MB)…');
    const ms = await runMavenBuild(config.hapiDir, config.mavenBin);
    log(`[servers] build done in ${(ms / 1000).toFixed(0)} s`);
  }
}

async function startMissing(config: ServersConfig, log: (line: string) => void): Promise<StartResult> {
  const pending: ServerSpec[] = [];
  for (const spec of config.servers) {
    if (await answersMetadata(spec.baseUrl)) {
      log(`[servers] ${spec.name} already up at ${spec.baseUrl}`);
    } else {
      pending.push(spec);
    }
  }
  if (pending.length > 0) {
    await ensureLauncherBuilt(config, log);
  }
  const startSeconds = await launchAll(pending, config, log);
  return { urls: serverUrls(config), started: pending.map((s) => s.name), startSeconds };
}

/** Launches the servers side by side; if any fails, stops all of them and reports every failure. */
async function launchAll(
  specs: readonly ServerSpec[],
  config: ServersConfig,
  log: (line: string) => void,
): Promise<Partial<Record<ServerName, number>>> {
  const starting = new Map<ServerName, number>();
  const ticker = setInterval(() => {
    const now = Date.now();
    const parts = [...starting].map(([name, t]) => `${name} ${Math.round((now - t) / 1000)} s`);
    if (parts.length > 0) {
      log(`[servers] starting: ${parts.join(', ')}`);
    }
  }, PROGRESS_EVERY_MS);
  try {
    const results = await Promise.allSettled(specs.map((spec) => startOne(spec, config, log, starting)));
    const failures = results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []));
    if (failures.length > 0) {
      await stopServers(
        specs.map((s) => s.name),
        { config },
      );
      throw new Error(`Test servers failed to start (all stopped):\n${failures.join('\n')}`);
    }
    const seconds: Partial<Record<ServerName, number>> = {};
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') {
        seconds[specs[i]!.name] = r.value;
      }
    });
    return seconds;
  } finally {
    clearInterval(ticker);
  }
}

async function startOne(
  spec: ServerSpec,
  config: ServersConfig,
  log: (line: string) => void,
  starting: Map<ServerName, number>,
): Promise<number> {
  // Under the start lock nobody else is starting servers: a recorded JVM that does not answer
  // is left over from an interrupted start or hung, so it is replaced.
  await stopProcess(spec);
  if (!config.keepData) {
    await rm(spec.dataDir, { recursive: true, force: true });
  }
  const started = Date.now();
  starting.set(spec.name, started);
  try {
    const pid = await launchServer(spec, config);
    log(`[servers] ${spec.name} launched (pid ${pid}, port ${spec.port}, log ${spec.logFile})`);
    await waitUntilUp(spec, pid, started, config);
  } finally {
    starting.delete(spec.name);
  }
  const seconds = Math.round((Date.now() - started) / 100) / 10;
  log(`[servers] ${spec.name} up at ${spec.baseUrl} after ${seconds} s`);
  return seconds;
}

async function waitUntilUp(spec: ServerSpec, pid: number, started: number, config: ServersConfig): Promise<void> {
  while (!(await answersMetadata(spec.baseUrl))) {
    if (!(await isServerProcess(pid, spec))) {
      throw new Error(`${spec.name} exited during startup; last log lines:\n${await logTail(spec.logFile)}`);
    }
    if (Date.now() - started > config.startTimeoutMs) {
      throw new Error(
        `${spec.name} did not answer ${spec.baseUrl}/metadata within ${config.startTimeoutMs / 1000} s. ` +
          `Last log lines:\n${await logTail(spec.logFile)}`,
      );
    }
    await sleep(1000);
  }
}

async function logTail(file: string, lines = 25): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log file)';
  }
}

/**
 * Stops servers by their recorded PIDs.
 * @param names - which servers; all when omitted
 * @returns the servers that were running and have been stopped
 */
export async function stopServers(
  names?: readonly ServerName[],
  options: LifecycleOptions = {},
): Promise<ServerName[]> {
  const config = options.config ?? loadServersConfig();
  const targets = config.servers.filter((s) => names === undefined || names.includes(s.name));
  const stopped = await Promise.all(targets.map((spec) => stopProcess(spec)));
  if (names === undefined) {
    await markStartedByTests(config.stateDir, null);
  }
  return targets.filter((_, i) => stopped[i]).map((s) => s.name);
}

/** Whether each server's recorded process is alive and whether its port answers /metadata. */
export async function serverStatus(options: LifecycleOptions = {}): Promise<ServerState[]> {
  const config = options.config ?? loadServersConfig();
  return Promise.all(
    config.servers.map(async (spec) => {
      const record = await readPidRecord(spec);
      const processAlive = record !== null && (await isServerProcess(record.pid, spec));
      return {
        name: spec.name,
        baseUrl: spec.baseUrl,
        pid: record?.pid ?? null,
        processAlive,
        answering: await answersMetadata(spec.baseUrl),
      };
    }),
  );
}

/**
 * Start of a test run: registers this process as a user of the servers, then starts the
 * missing ones (those are stopped again by the last test run to finish).
 */
export async function acquireForTests(options: LifecycleOptions = {}): Promise<StartResult> {
  const config = options.config ?? loadServersConfig();
  await takeLease(config.stateDir);
  return startServers({ ...options, config, owner: Owner.tests });
}

/**
 * End of a test run: drops its lease; when no other run holds one, stops the servers that
 * test runs started (servers started with the CLI keep running).
 * @returns the servers stopped
 */
export async function releaseForTests(options: LifecycleOptions = {}): Promise<ServerName[]> {
  const config = options.config ?? loadServersConfig();
  // Under the start lock, so a run that is just reusing the servers cannot lose them midway.
  return withStartLock(config.stateDir, async () => {
    if ((await releaseLease(config.stateDir)) > 0) {
      return [];
    }
    const names = config.servers.map((s) => s.name);
    const ours = new Set(await startedByTests(config.stateDir));
    const toStop = names.filter((n) => ours.has(n));
    const stopped = toStop.length > 0 ? await stopServers(toStop, { config }) : [];
    await markStartedByTests(config.stateDir, null);
    return stopped;
  });
}
