/**
 * Builds the Java launcher with Maven: compiles it and writes the runtime classpath to
 * `target/classpath.txt`. The servers then run from that plain classpath (no repackaged jar).
 */
import { spawn } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

/** Files the build produces; all must exist before a server can start. */
export function buildOutputs(hapiDir: string): { classpathFile: string; mainClassFile: string } {
  return {
    classpathFile: path.join(hapiDir, 'target', 'classpath.txt'),
    mainClassFile: path.join(
      hapiDir,
      'target',
      'classes',
      'dev',
      'fhirsync',
      'testserver',
      'TestServerApplication.class',
    ),
  };
}

/**
 * Whether the build outputs are missing or older than the pom or any source file.
 * @param hapiDir - the Maven project directory
 */
export async function needsBuild(hapiDir: string): Promise<boolean> {
  const { classpathFile, mainClassFile } = buildOutputs(hapiDir);
  const outputs = await Promise.all([mtimeOrNull(classpathFile), mtimeOrNull(mainClassFile)]);
  if (outputs.some((m) => m === null)) {
    return true;
  }
  const builtAt = Math.min(...(outputs as number[]));
  const inputs = [path.join(hapiDir, 'pom.xml'), ...(await listFiles(path.join(hapiDir, 'src')))];
  const newest = Math.max(...(await Promise.all(inputs.map(async (f) => (await mtimeOrNull(f)) ?? 0))));
  return newest > builtAt;
}

/**
 * Runs Maven (quiet, batch mode). Works on an empty ~/.m2: artifacts come from Maven Central.
 * @returns elapsed milliseconds
 */
export async function runMavenBuild(hapiDir: string, mavenBin: string): Promise<number> {
  const started = Date.now();
  const args = [
    '-B',
    '-q',
    '-Dstyle.color=never',
    'compile',
    'dependency:build-classpath',
    `-Dmdep.outputFile=${buildOutputs(hapiDir).classpathFile}`,
  ];
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(mavenBin, args, { cwd: hapiDir, stdio: 'inherit' });
    child.once('error', reject);
    child.once('exit', resolve);
  });
  if (code !== 0) {
    throw new Error(`Maven build of ${hapiDir} failed (exit code ${String(code)}); see the output above`);
  }
  return Date.now() - started;
}

async function mtimeOrNull(file: string): Promise<number | null> {
  try {
    return (await stat(file)).mtimeMs;
  } catch {
    return null;
  }
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}
