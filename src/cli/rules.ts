/**
 * `fhir-sync rules validate [<yaml>]` and `fhir-sync rules coverage [<yaml>]`.
 * validate: every problem of the file as `file:line:column CODE message`; exit 1 when any.
 * coverage: the PHI-capable elements no rule covers, per resource type and Safe Harbor
 * category (`--json` for the full report, `--fail-on-uncovered` to exit 1 when any element is uncovered,
 * reached only by conditional rules, kept by a keep rule or guarded only by scrubbing).
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { AppError } from '../shared/errors/index.ts';
import { coverage, loadRulesFile, SAFE_HARBOR_CATEGORIES } from '../anonymizer/index.ts';
import type { CompiledRules, CoverageReport, RulesProblem, SafeHarborCategory } from '../anonymizer/index.ts';
import type { CliIo } from './main.ts';

/** The rules file used when none is named. */
export const DEFAULT_RULES_PATH = fileURLToPath(new URL('../../config/anonymization.yaml', import.meta.url));

const USAGE = `Usage:
  fhir-sync rules validate [<rules.yaml>]                       check a rules file
  fhir-sync rules coverage [<rules.yaml>] [--json] [--fail-on-uncovered] [--type <ResourceType>]...
Without a file, ${DEFAULT_RULES_PATH} is used.
`;

/**
 * Runs `rules validate|coverage`.
 * @param argv - arguments after `rules`.
 * @param io - streams and environment.
 * @returns exit code: 0 ok, 1 problems (or uncovered elements with --fail-on-uncovered), 2 usage.
 */
export function run(argv: string[], io: CliIo): Promise<number> {
  try {
    return Promise.resolve(execute(argv, io));
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error('internal error'));
  }
}

export default run;

function execute(argv: string[], io: CliIo): number {
  const [action, ...rest] = argv;
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      options: {
        json: { type: 'boolean' },
        'fail-on-uncovered': { type: 'boolean' },
        type: { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    io.stderr.write(`${err instanceof Error ? err.message : 'bad arguments'}\n${USAGE}`);
    return 2;
  }
  if (parsed.values.help || (action !== 'validate' && action !== 'coverage') || parsed.positionals.length > 1) {
    (parsed.values.help ? io.stdout : io.stderr).write(USAGE);
    return parsed.values.help ? 0 : 2;
  }
  const path = parsed.positionals[0] ?? DEFAULT_RULES_PATH;
  let rules: CompiledRules;
  try {
    rules = loadRulesFile(path);
  } catch (err) {
    return printLoadError(err, path, io);
  }
  if (action === 'validate') {
    io.stdout.write(`OK ${path}: profile ${rules.profile}, ${rules.rules.length} rules, version ${rules.version}\n`);
    return 0;
  }
  const report = coverage(rules, parsed.values.type ? { resourceTypes: parsed.values.type } : {});
  io.stdout.write(parsed.values.json ? JSON.stringify(report, null, 2) + '\n' : formatCoverage(report));
  const t = report.totals;
  // Kept, scrub-only and conditional-only PHI-capable elements can all leave as they are.
  return parsed.values['fail-on-uncovered'] && t.uncovered + t.conditional + t.kept + t.scrubOnly > 0 ? 1 : 0;
}

function printLoadError(err: unknown, path: string, io: CliIo): number {
  if (!(err instanceof AppError)) {
    throw err;
  }
  const problems = err.details.problems as RulesProblem[] | undefined;
  if (!problems) {
    io.stderr.write(`${err.code}: ${err.message}\n`);
    return 1;
  }
  io.stderr.write(`${path}: ${problems.length} problem(s)\n`);
  for (const p of problems) {
    io.stderr.write(`${path}:${p.line}:${p.column} ${p.code} ${p.message}\n`);
  }
  return 1;
}

/**
 * Human-readable coverage: totals per category, then each resource type's uncovered elements.
 * @param report - coverage report.
 * @returns text.
 */
export function formatCoverage(report: CoverageReport): string {
  const lines: string[] = [
    `Coverage of ${report.profile} (version ${report.rulesVersion}) over ${report.resourceTypes} resource types`,
  ];
  if (report.allowListMode) {
    lines.push('allowListMode: every element no rule decides is dropped; nothing is uncovered.');
  }
  lines.push(
    `Uncovered PHI-capable elements: ${report.totals.uncovered}; reached only by conditional rules: ${report.totals.conditional}`,
    `Kept as they are by a keep rule: ${report.totals.kept}; structured identifiers only scrubbed: ${report.totals.scrubOnly}`,
  );
  for (const [cat, n] of Object.entries(report.totals.byCategory)) {
    lines.push(`  ${cat} ${SAFE_HARBOR_CATEGORIES[cat as SafeHarborCategory]}: ${n}`);
  }
  for (const [title, section] of [
    ['Uncovered', report.uncovered],
    ['Conditional only', report.conditional],
    ['Kept (keep rule)', report.kept],
    ['Scrub only', report.scrubOnly],
  ] as const) {
    for (const [type, byCat] of Object.entries(section)) {
      lines.push(`${title}: ${type}`);
      for (const [cat, paths] of Object.entries(byCat)) {
        lines.push(`  ${cat}: ${(paths ?? []).join(', ')}`);
      }
    }
  }
  return lines.join('\n') + '\n';
}
