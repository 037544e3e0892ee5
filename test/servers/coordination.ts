/**
 * Coordination between several processes using the same test servers (two helpers running the
 * integration tests at once, or the CLI next to a test run):
 * - a start lock, so only one process launches servers at a time;
 * - leases, so a test run does not stop servers another run is still using;
 * - a marker telling whether the running servers were started by a test run (stop them when
 *   the last run ends) or by the CLI (leave them running).
 */
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { sleep } from './process.ts';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function pidIn(file: string): Promise<number | null> {
  try {
    const pid = Number((await readFile(file, 'utf8')).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/**
 * Runs `fn` while holding `<stateDir>/start.lock`; waits for a live holder, breaks a stale lock.
 * @param onWait - called once when another process holds the lock
 */
export async function withStartLock<T>(
  stateDir: string,
  fn: () => Promise<T>,
  onWait?: (pid: number) => void,
): Promise<T> {
  await mkdir(stateDir, { recursive: true });
  const lockFile = path.join(stateDir, 'start.lock');
  let reported = false;
  for (;;) {
    try {
      await writeFile(lockFile, `${process.pid}\n`, { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw err;
      }
      const holder = await pidIn(lockFile);
      if (holder === null || !isAlive(holder)) {
        await rm(lockFile, { force: true });
        continue;
      }
      if (!reported) {
        onWait?.(holder);
        reported = true;
      }
      await sleep(1000);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lockFile, { force: true });
  }
}

const leaseDir = (stateDir: string): string => path.join(stateDir, 'leases');

/** Records that this process uses the servers. */
export async function takeLease(stateDir: string): Promise<void> {
  await mkdir(leaseDir(stateDir), { recursive: true });
  await writeFile(path.join(leaseDir(stateDir), String(process.pid)), `${new Date().toISOString()}\n`);
}

/**
 * Drops this process's lease.
 * @returns how many other live processes still hold one (stale leases are removed)
 */
export async function releaseLease(stateDir: string): Promise<number> {
  await rm(path.join(leaseDir(stateDir), String(process.pid)), { force: true });
  let others = 0;
  for (const name of await readdir(leaseDir(stateDir)).catch(() => [] as string[])) {
    const pid = Number(name);
    if (Number.isInteger(pid) && isAlive(pid)) {
      others += 1;
    } else {
      await rm(path.join(leaseDir(stateDir), name), { force: true });
    }
  }
  return others;
}

const markerFile = (stateDir: string): string => path.join(stateDir, 'started-by-tests.json');

/** Servers that a test run launched and that the last test run to finish should stop. */
export async function startedByTests(stateDir: string): Promise<string[]> {
  try {
    const parsed: unknown = JSON.parse(await readFile(markerFile(stateDir), 'utf8'));
    return Array.isArray(parsed) ? parsed.filter((n): n is string => typeof n === 'string') : [];
  } catch {
    return [];
  }
}

/**
 * Adds servers to the started-by-tests list, or clears it (`null`), e.g. when the CLI takes
 * the running servers over so they outlive the test runs.
 */
export async function markStartedByTests(stateDir: string, names: readonly string[] | null): Promise<void> {
  if (names === null) {
    await rm(markerFile(stateDir), { force: true });
    return;
  }
  const merged = [...new Set([...(await startedByTests(stateDir)), ...names])];
  await writeFile(markerFile(stateDir), `${JSON.stringify(merged)}\n`);
}
