/**
 * Starting and stopping one server JVM in the background, with a PID file so another command
 * (or another test run) can find it later.
 */
import { spawn } from 'node:child_process';
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ServerSpec, ServersConfig } from './config.ts';
import { buildOutputs } from './maven.ts';

const MAIN_CLASS = 'dev.fhirsync.testserver.TestServerApplication';

/** Contents of a server's PID file. */
export interface PidRecord {
  readonly pid: number;
  readonly port: number;
  readonly startedAt: string;
}

/**
 * Launches the JVM detached from this process, output appended to the server's log file.
 * @returns the PID of the new JVM
 */
export async function launchServer(spec: ServerSpec, config: ServersConfig): Promise<number> {
  await mkdir(path.dirname(spec.logFile), { recursive: true });
  await mkdir(spec.dataDir, { recursive: true });
  const argFile = await writeClasspathArgFile(config);
  const log = await open(spec.logFile, 'w');
  try {
    const child = spawn(config.javaBin, javaArgs(spec, config, argFile), {
      cwd: config.hapiDir,
      detached: true,
      stdio: ['ignore', log.fd, log.fd],
    });
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('spawn', () => resolve(child.pid ?? -1));
    });
    child.unref();
    const record: PidRecord = { pid, port: spec.port, startedAt: new Date().toISOString() };
    await writeFile(spec.pidFile, `${JSON.stringify(record)}\n`);
    return pid;
  } finally {
    await log.close();
  }
}

function javaArgs(spec: ServerSpec, config: ServersConfig, argFile: string): string[] {
  return [
    `-Xmx${config.heap}`,
    // Three servers share two cores: one GC thread each, and only the C1 JIT, which halves
    // the CPU spent starting up (measured ~77 s -> ~40 s per server) at some cost in peak speed.
    '-XX:+UseSerialGC',
    '-XX:TieredStopAtLevel=1',
    '-XX:ReservedCodeCacheSize=128m',
    ...config.extraJvmOptions,
    `@${argFile}`,
    MAIN_CLASS,
    `--port=${spec.port}`,
    `--data-dir=${spec.dataDir}`,
    `--name=${spec.name}`,
    ...(spec.noHistory ? ['--no-history=true'] : []),
  ];
}

/** Keeps the ~250-jar classpath out of the command line (and out of `ps`) via a java @argfile. */
async function writeClasspathArgFile(config: ServersConfig): Promise<string> {
  const { classpathFile } = buildOutputs(config.hapiDir);
  const deps = (await readFile(classpathFile, 'utf8')).trim();
  const classes = path.join(config.hapiDir, 'target', 'classes');
  const argFile = path.join(config.stateDir, 'java-classpath.args');
  await mkdir(config.stateDir, { recursive: true });
  await writeFile(argFile, `-cp\n"${classes}${path.delimiter}${deps}"\n`);
  return argFile;
}

/** Reads a PID file; null when absent or unreadable. */
export async function readPidRecord(spec: ServerSpec): Promise<PidRecord | null> {
  try {
    const parsed: unknown = JSON.parse(await readFile(spec.pidFile, 'utf8'));
    if (isPidRecord(parsed)) {
      return parsed;
    }
    return null;
  } catch {
    return null;
  }
}

function isPidRecord(value: unknown): value is PidRecord {
  const v = value as Partial<PidRecord> | null;
  return typeof v?.pid === 'number' && typeof v.port === 'number' && typeof v.startedAt === 'string';
}

/**
 * Whether the PID belongs to a live test server JVM for this server, so a stale PID that the
 * OS handed to another process is never signalled.
 */
export async function isServerProcess(pid: number, spec: ServerSpec): Promise<boolean> {
  try {
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    return cmdline.includes(MAIN_CLASS) && cmdline.includes(`--name=${spec.name}`);
  } catch {
    return false;
  }
}

/**
 * Stops the recorded JVM: SIGTERM, then SIGKILL if it has not exited in time.
 * @returns true when a running server was stopped
 */
export async function stopProcess(spec: ServerSpec, graceMs = 20_000): Promise<boolean> {
  const record = await readPidRecord(spec);
  if (record === null || !(await isServerProcess(record.pid, spec))) {
    await rm(spec.pidFile, { force: true });
    return false;
  }
  process.kill(record.pid, 'SIGTERM');
  if (!(await waitForExit(record.pid, spec, graceMs))) {
    process.kill(record.pid, 'SIGKILL');
    await waitForExit(record.pid, spec, 5000);
  }
  await rm(spec.pidFile, { force: true });
  return true;
}

async function waitForExit(pid: number, spec: ServerSpec, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!(await isServerProcess(pid, spec))) {
      return true;
    }
    await sleep(250);
  }
  return false;
}

/** Promise-based delay. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
