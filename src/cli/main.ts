/**
 * The `fhir-sync` command: a dispatcher over subcommands. Each subcommand lives in its own
 * module, loaded only when used (dynamic import), so `help` works even while a subcommand's
 * module is missing from a build, and starting one does not load the others' dependencies.
 * Exit codes: 0 done, 1 failed, 2 usage error.
 */
import { AppError } from '../shared/errors/index.ts';

/** Where a subcommand reads its environment and writes its output. */
export interface CliIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** A subcommand: arguments after its name in, exit code out. */
export type Subcommand = (argv: string[], io: CliIo) => Promise<number>;

const USAGE = `Usage: fhir-sync <command> [options]

Commands:
  serve [--roles api,worker,scheduler]   Run the service (same as npm start); roles default to all,
                                         or FHIR_SYNC_ROLES.
  sync <instance> <resourceType>         Run one sync pass of one type now and print its counts.
  doctor                                 Probe every registered server (read-only) and print what the
                                         service will use for each.
  deidentify [options]                   De-identify FHIR resources from files or stdin (see
                                         fhir-sync deidentify --help).
  rules validate <file>                  Check a rules file; every problem with line and column.
  rules coverage [file]                  Show what a rules file covers.
  help                                   This text.
`;

/** Subcommand name → module (relative to this file) exporting it as default, `run` or `main`. */
const MODULES: Readonly<Record<string, string>> = {
  serve: './serve.ts',
  sync: './sync.ts',
  doctor: './doctor.ts',
  deidentify: './deidentify.ts',
  rules: './rules.ts',
};

/**
 * Loads a subcommand module lazily.
 * @param name - subcommand name.
 * @returns the subcommand, or undefined when its module is not there.
 */
export async function loadSubcommand(name: string): Promise<Subcommand | undefined> {
  const path = MODULES[name];
  if (path === undefined) {
    return undefined;
  }
  const url = new URL(path, import.meta.url);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(url.href)) as Record<string, unknown>;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    const missing = code === 'ERR_MODULE_NOT_FOUND' && String((err as Error).message).includes(url.pathname);
    if (missing) {
      return undefined;
    }
    throw err;
  }
  const fn = [mod.default, mod.run, mod.main].find((f) => typeof f === 'function');
  return fn as Subcommand | undefined;
}

/**
 * Prints an error for a person: the catalogue code and message, and each problem with its
 * place. Never a stack or a foreign message (those may quote data).
 * @param err - what the subcommand threw.
 * @param io - where to write.
 */
export function printError(err: unknown, io: CliIo): void {
  if (err instanceof AppError) {
    io.stderr.write(`${err.code}: ${err.message}\n`);
    const problems = err.details.problems ?? err.details.items;
    if (Array.isArray(problems)) {
      for (const p of problems) {
        io.stderr.write(`  - ${typeof p === 'string' ? p : describeProblem(p)}\n`);
      }
    }
    return;
  }
  io.stderr.write(`internal error (${err instanceof Error ? err.name : typeof err})\n`);
}

function describeProblem(p: unknown): string {
  if (typeof p !== 'object' || p === null) {
    return String(p);
  }
  const r = p as Record<string, unknown>;
  const where = [r.location ?? r.path, r.line, r.column].filter((x) => x !== undefined && x !== '').join(':');
  const what = typeof r.message === 'string' ? r.message : typeof r.detail === 'string' ? r.detail : JSON.stringify(r);
  return where ? `${where}: ${what}` : what;
}

/**
 * Runs the command line.
 * @param argv - arguments after the program name.
 * @param io - streams and environment.
 * @returns the exit code.
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    io.stdout.write(USAGE);
    return 0;
  }
  if (MODULES[name] === undefined) {
    io.stderr.write(`Unknown command: ${name}\n\n${USAGE}`);
    return 2;
  }
  try {
    const sub = await loadSubcommand(name);
    if (!sub) {
      io.stderr.write(`The ${name} command is not available in this build.\n`);
      return 1;
    }
    return await sub(rest, io);
  } catch (err) {
    printError(err, io);
    return 1;
  }
}

if (import.meta.main) {
  process.exitCode = await runCli(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
  });
}
