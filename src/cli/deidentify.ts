/**
 * `fhir-sync deidentify <file|-> [--rules <yaml>] [--instance <id>] [--report <file>]
 * [--questionnaire <file>]... [--related <file>]...`
 * Reads one resource, a Bundle or NDJSON and writes the de-identified result in the same shape
 * to stdout. The report (rule counts, element paths, failures: never values) goes to stderr,
 * or to `--report`. The key comes from the environment (DEID_HMAC_KEY + DEID_HMAC_KEY_ID, or
 * DEID_HMAC_KEY_FILE). A resource that fails is left out of the output and named in the
 * report by its pseudonymous id, code and element path; the exit code is then 1.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Questionnaire, Resource } from '@medplum/fhirtypes';
import { createAnonymizer, deidKeyFrom, loadRulesFile } from '../anonymizer/index.ts';
import { parseDeidKeyEnv } from '../shared/env.ts';
import type { DeidOutcome, DeidReport } from '../anonymizer/index.ts';
import type { CliIo } from './main.ts';
import { DEFAULT_RULES_PATH } from './rules.ts';

const USAGE = `Usage: fhir-sync deidentify <file|-> [options]
  <file>                    a FHIR resource, a Bundle, or NDJSON (one resource per line); - reads stdin
  --rules <yaml>            rules file (default ${DEFAULT_RULES_PATH})
  --instance <id>           source instance id that scopes the pseudonyms (default: cli)
  --report <file>           write the report there instead of stderr
  --questionnaire <file>    Questionnaire(s) for itemCode selectors (repeatable)
  --related <file>          resources whose PHI is scrubbed from free text but not output (repeatable)
Key: DEID_HMAC_KEY (+ DEID_HMAC_KEY_ID) or DEID_HMAC_KEY_FILE.
`;

/** Options of run, for tests. */
export interface DeidentifyDeps {
  /** Reads a file, `-` = stdin. @defaultValue fs.readFileSync */
  readonly readText?: (path: string) => string;
  readonly writeText?: (path: string, text: string) => void;
}

interface Input {
  readonly shape: 'json' | 'ndjson';
  readonly resources: Resource[];
}

/**
 * Runs `deidentify`.
 * @param argv - arguments after `deidentify`.
 * @param io - streams and environment.
 * @param deps - file access (tests).
 * @returns exit code: 0 all done, 1 some resource failed, 2 usage or input error.
 */
export function run(argv: string[], io: CliIo, deps: DeidentifyDeps = {}): Promise<number> {
  try {
    return Promise.resolve(execute(argv, io, deps));
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error('internal error'));
  }
}

export default run;

function execute(argv: string[], io: CliIo, deps: DeidentifyDeps): number {
  const readText = deps.readText ?? ((p: string) => readFileSync(p === '-' ? 0 : p, 'utf8'));
  const writeText = deps.writeText ?? ((p: string, t: string) => writeFileSync(p, t));
  let values;
  let positionals;
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        rules: { type: 'string' },
        instance: { type: 'string' },
        report: { type: 'string' },
        questionnaire: { type: 'string', multiple: true },
        related: { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    io.stderr.write(`${err instanceof Error ? err.message : 'bad arguments'}\n${USAGE}`);
    return 2;
  }
  if (values.help || positionals.length !== 1) {
    (values.help ? io.stdout : io.stderr).write(USAGE);
    return values.help ? 0 : 2;
  }
  // Only the key: a preview must not fail on settings of the service it does not start.
  const key = deidKeyFrom(parseDeidKeyEnv(io.env));
  const rules = loadRulesFile(values.rules ?? DEFAULT_RULES_PATH);
  const input = parseInput(readText(positionals[0] as string));
  if (typeof input === 'string') {
    io.stderr.write(`${input}\n`);
    return 2;
  }
  const questionnaires = (values.questionnaire ?? [])
    .flatMap((f) => parseInput(readText(f)))
    .flatMap((i) => (typeof i === 'string' ? [] : i.resources)) as Questionnaire[];
  const related = (values.related ?? [])
    .flatMap((f) => parseInput(readText(f)))
    .flatMap((i) => (typeof i === 'string' ? [] : i.resources));
  const anonymizer = createAnonymizer({ rules, key, questionnaires });
  const { outcomes, report } = anonymizer.deidentify(input.resources, {
    instanceId: values.instance ?? 'cli',
    related,
  });
  io.stdout.write(formatOutput(input, outcomes));
  const reportText =
    JSON.stringify(reportOf(anonymizer.rulesVersion, anonymizer.keyId, report, outcomes), null, 2) + '\n';
  if (values.report) {
    writeText(values.report, reportText);
  } else {
    io.stderr.write(reportText);
  }
  return outcomes.every((o) => o.ok) ? 0 : 1;
}

/** A JSON document (resource or Bundle) or NDJSON; a message when it is neither. */
function parseInput(text: string): Input | string {
  try {
    const doc = JSON.parse(text) as unknown;
    if (typeof doc === 'object' && doc !== null && !Array.isArray(doc)) {
      return { shape: 'json', resources: [doc as Resource] };
    }
    return 'Input is JSON but not a FHIR resource';
  } catch {
    // not one JSON document: NDJSON?
  }
  const resources: Resource[] = [];
  const lines = text.split(/\r?\n/);
  for (const [i, line] of lines.entries()) {
    if (line.trim() === '') {
      continue;
    }
    try {
      resources.push(JSON.parse(line) as Resource);
    } catch {
      return `Input is neither JSON nor NDJSON (line ${i + 1} does not parse)`;
    }
  }
  return { shape: 'ndjson', resources };
}

function formatOutput(input: Input, outcomes: readonly DeidOutcome[]): string {
  const ok = outcomes.flatMap((o) => (o.ok ? [o.resource] : []));
  if (input.shape === 'ndjson') {
    return ok.map((r) => JSON.stringify(r)).join('\n') + (ok.length > 0 ? '\n' : '');
  }
  return ok.length > 0 ? JSON.stringify(ok[0], null, 2) + '\n' : '';
}

function reportOf(rulesVersion: string, keyId: string, report: DeidReport, outcomes: readonly DeidOutcome[]): unknown {
  return {
    rulesVersion,
    keyId,
    resources: outcomes.length,
    failures: outcomes.flatMap((o, i) =>
      o.ok
        ? []
        : [
            {
              index: i,
              resourceType: o.sourceType,
              pseudonymousId: o.pseudonymousId,
              code: o.code,
              location: o.location,
            },
          ],
    ),
    ...report,
  };
}
