/**
 * Builds the Java launcher with Maven: compiles it and writes the runtime classpath to
 * `target/classpath.txt`. The servers then run from that plain classpath (no repackaged jar).
 */
import { spawn } from 'node:child_process';
import { readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Files the build produces; all must exist before a server can start. */
export function buildOutputs(hapiDir: string): { classpathFile: string; mainClassFile: string; stampFile: string } {
  return {
    // Touched after each successful build: Maven skips unchanged outputs, so their own times
    // cannot tell whether the build is current.
    stampFile: path.join(hapiDir, 'target', 'build.stamp'),
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
  const { classpathFile, mainClassFile, stampFile } = buildOutputs(hapiDir);
  const outputs = await Promise.all([mtimeOrNull(classpathFile), mtimeOrNull(mainClassFile), mtimeOrNull(stampFile)]);
  if (outputs.some((m) => m === null)) {
    return true;
  }
  const builtAt = outputs[2]!;
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
  let output = '';
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(mavenBin, args, { cwd: hapiDir, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('close', resolve);
  });
  // Debian's Maven prints colour resets even in quiet, colourless mode.
  output = output.replace(ANSI_ESCAPE, '').trim();
  if (code !== 0) {
    throw new Error(`Maven build of ${hapiDir} failed (exit code ${String(code)}):\n${output}`);
  }
  if (output !== '') {
    console.log(output);
  }
  await writeFile(buildOutputs(hapiDir).stampFile, `${new Date().toISOString()}\n`);
  return Date.now() - started;
}

// eslint-disable-next-line no-control-regex -- matching terminal escape sequences is the point
const ANSI_ESCAPE = /\u001b\[[0-9;]*m/g;

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
