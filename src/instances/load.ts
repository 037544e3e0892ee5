/**
 * Loading config/instances.yaml: parse (duplicate keys rejected), validate everything, attach
 * `line:column` to every problem, then deep-freeze. One pipeline for the file on disk, for
 * text given by the API, and for the registry's re-validation before it writes.
 */
import { readFile } from 'node:fs/promises';
import type { Document } from 'yaml';
import { SYNC_ERR_INSTANCES_FILE, SYNC_ERR_INSTANCES_INVALID } from '../shared/errors/index.ts';
import type { ConnectionPolicy } from '../shared/fhir-client.ts';
import { validateInstancesData } from './schema.ts';
import type { DocPath, RawProblem } from './schema.ts';
import type { ConfigProblem, InstancesConfig } from './types.ts';
import { deepFreeze } from '../shared/deep-freeze.ts';
import { parseYamlSource } from '../shared/yaml-source.ts';
import type { YamlSource } from '../shared/yaml-source.ts';

/** A parsed file: the YAML document (kept for comment-preserving edits) and its config. */
export interface LoadedInstances {
  readonly config: InstancesConfig;
  readonly document: Document;
}

/** Options of the loader. */
export interface LoadOptions {
  /** Network policy and CA directory the servers must respect. @defaultValue DEFAULT_CONNECTION_POLICY */
  readonly policy?: ConnectionPolicy;
}

/**
 * Reads, validates and freezes an instances file.
 * @param path - file path.
 * @param options - the connection policy.
 * @returns the frozen configuration and its YAML document.
 * @throws AppError SYNC_ERR_INSTANCES_FILE when unreadable, SYNC_ERR_INSTANCES_INVALID with
 *   `details.problems` when invalid.
 */
export async function loadInstancesFile(path: string, options: LoadOptions = {}): Promise<LoadedInstances> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw SYNC_ERR_INSTANCES_FILE.createWith(
      { location: path },
      [path, (err as NodeJS.ErrnoException).code ?? 'error'],
      { cause: err },
    );
  }
  return parseInstances(text, { ...options, source: path });
}

/**
 * Validates instances YAML text.
 * @param text - YAML text.
 * @param options - `source` names the text in messages (a file path); `policy` as for the file.
 * @returns the frozen configuration and its YAML document.
 * @throws AppError SYNC_ERR_INSTANCES_INVALID with `details.problems` (every problem, with line:column).
 */
export function parseInstances(text: string, options: LoadOptions & { source: string }): LoadedInstances {
  const src = parseYamlSource(text, { maxAliasCount: 0 });
  const problems: ConfigProblem[] = src.problems.map((p) => ({
    path: '',
    line: p.line,
    column: p.column,
    message: p.kind === 'duplicate-key' ? 'duplicate key' : p.detail,
  }));
  if (problems.length === 0) {
    const result = validateInstancesData(src.data ?? {}, options.policy);
    if (result.ok) {
      return { config: deepFreeze(result.config), document: src.document };
    }
    problems.push(...result.problems.map((p) => locate(src, p)));
  }
  throw invalid(options.source, problems);
}

/**
 * Builds the error for a list of problems.
 * @param source - file name or other label.
 * @param problems - every problem.
 * @returns an AppError whose message lists the problems and whose details carry them.
 */
export function invalid(source: string, problems: readonly ConfigProblem[]): Error {
  const summary = problems.map((p) => formatProblem(source, p)).join('; ');
  return SYNC_ERR_INSTANCES_INVALID.createWith({ location: source, problems }, [source, summary]);
}

/**
 * One problem as `file:line:column path message`.
 * @param source - file label.
 * @param p - the problem.
 * @returns a one-line description.
 */
export function formatProblem(source: string, p: ConfigProblem): string {
  const where = p.line === undefined ? source : `${source}:${p.line}:${p.column ?? 1}`;
  return `${where} ${p.path === '' ? '' : `${p.path} `}${p.message}${p.code === undefined ? '' : ` (${p.code})`}`;
}

function locate(src: YamlSource, p: RawProblem): ConfigProblem {
  const { line, column } = src.locate(p.path);
  return {
    path: formatPath(p.path),
    line,
    column,
    message: p.message,
    ...(p.code === undefined ? {} : { code: p.code }),
  };
}

function formatPath(path: DocPath): string {
  return path.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? k : `.${k}`)).join('');
}
