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

/** Base URLs of the running servers, as tests see them. */
export interface FhirServerUrls {
  readonly global: string;
  readonly localA: string;
  readonly localB: string;
}

/** I/O the lifecycle functions use; defaults print to the console. */
export interface LifecycleOptions {
  readonly config?: ServersConfig;
  /** Progress lines (which server, seconds elapsed). @defaultValue console.log */
  readonly log?: (line: string) => void;
}

/** Outcome of {@link startServers}. */
export interface StartResult {
  readonly urls: FhirServerUrls;
  /** Servers this call launched (the caller owns them); the others were already up. */
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

const PROGRESS_EVERY_MS = 5000;

/**
 * The base URLs from the configuration (ports may be overridden by env).
 * @param config - defaults to the environment's configuration
 */
export function serverUrls(config: ServersConfig = loadServersConfig()): FhirServerUrls {
  const url = (name: ServerName): string => config.servers.find((s) => s.name === name)!.baseUrl;
  return { global: url('global'), localA: url('local-a'), localB: url('local-b') };
}

/**
 * Builds the launcher if needed, then starts every server that does not already answer and
 * waits until all answer GET /fhir/metadata. Databases are wiped first unless keepData.
 */
export async function startServers(options: LifecycleOptions = {}): Promise<StartResult> {
  const config = options.config ?? loadServersConfig();
  const log = options.log ?? console.log;
  const pending: ServerSpec[] = [];
  for (const spec of config.servers) {
    if (await answersMetadata(spec.baseUrl)) {
      log(`[servers] ${spec.name} already up at ${spec.baseUrl}`);
    } else {
      pending.push(spec);
    }
  }
  if (pending.length > 0 && (await needsBuild(config.hapiDir))) {
    log('[servers] building the HAPI FHIR launcher with Maven (first time downloads ~300 MB)…');
    const ms = await runMavenBuild(config.hapiDir, config.mavenBin);
    log(`[servers] build done in ${(ms / 1000).toFixed(0)} s`);
  }
  const launched = await Promise.all(pending.map((spec) => startOne(spec, config, log)));
  const startSeconds: Partial<Record<ServerName, number>> = {};
  launched.forEach((seconds, i) => (startSeconds[pending[i]!.name] = seconds));
  return { urls: serverUrls(config), started: pending.map((s) => s.name), startSeconds };
}

async function startOne(spec: ServerSpec, config: ServersConfig, log: (line: string) => void): Promise<number> {
  const existing = await readPidRecord(spec);
  if (existing !== null && (await isServerProcess(existing.pid, spec))) {
    // Launched earlier but not answering yet (still starting, or hung): replace it.
    await stopProcess(spec);
  }
  if (!config.keepData) {
    await rm(spec.dataDir, { recursive: true, force: true });
  }
  const started = Date.now();
  const pid = await launchServer(spec, config);
  log(`[servers] ${spec.name} launched (pid ${pid}, port ${spec.port}, log ${spec.logFile})`);
  await waitUntilUp(spec, pid, started, config, log);
  const seconds = Math.round((Date.now() - started) / 100) / 10;
  log(`[servers] ${spec.name} up at ${spec.baseUrl} after ${seconds} s`);
  return seconds;
}

async function waitUntilUp(
  spec: ServerSpec,
  pid: number,
  started: number,
  config: ServersConfig,
  log: (line: string) => void,
): Promise<void> {
  let nextProgress = started + PROGRESS_EVERY_MS;
  while (!(await answersMetadata(spec.baseUrl))) {
    const elapsed = Date.now() - started;
    if (!(await isServerProcess(pid, spec))) {
      throw new Error(`${spec.name} exited during startup; last log lines:\n${await logTail(spec.logFile)}`);
    }
    if (elapsed > config.startTimeoutMs) {
      await stopProcess(spec);
      throw new Error(
        `${spec.name} did not answer ${spec.baseUrl}/metadata within ${config.startTimeoutMs / 1000} s; ` +
          `stopped it. Last log lines:\n${await logTail(spec.logFile)}`,
      );
    }
    if (Date.now() >= nextProgress) {
      log(`[servers] ${spec.name} starting… ${Math.round(elapsed / 1000)} s`);
      nextProgress += PROGRESS_EVERY_MS;
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
