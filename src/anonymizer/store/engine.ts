/**
 * The rules store's adapter over the real de-identification engine (the rest of src/anonymizer;
 * imported module by module, since src/anonymizer/index.ts re-exports this folder).
 * Previews run with their own key, random per process unless given: a preview must never
 * hand out the pseudonyms or date shifts of real data, or the preview route would become an
 * oracle linking a known patient to their record on the global server.
 */
import { randomBytes } from 'node:crypto';
import { coverage } from '../coverage.ts';
import { createAnonymizer } from '../engine/anonymizer.ts';
import { makeKey } from '../engine/key.ts';
import type { DeidKey } from '../engine/key.ts';
import { loadRules } from '../rules/load.ts';
import type { CompiledRules } from '../rules/types.ts';
import { AppError, CFG_ERR_RULES_INVALID } from '../../shared/errors/index.ts';
import type { RulesEngine } from './types.ts';

/** Options of the engine adapter. */
export interface AnonymizerEngineOptions {
  /** Key for previews. @defaultValue a random key made once per process */
  readonly previewKey?: DeidKey;
}

/**
 * Builds the RulesEngine over src/anonymizer.
 * @param opts - preview key.
 * @returns the engine adapter.
 */
export function anonymizerRulesEngine(opts: AnonymizerEngineOptions = {}): RulesEngine<CompiledRules> {
  const key = opts.previewKey ?? makeKey('preview', randomBytes(32));
  return {
    load: (text, source) => {
      try {
        return loadRules(text, { source });
      } catch (err) {
        // The loader refuses bad files with coded problems; an exception it did not expect
        // (a compiler limit) is still a refusal of this file, not a server error (issue 10).
        if (err instanceof AppError) {
          throw err;
        }
        const problem = { message: `the rules could not be compiled (${err instanceof Error ? err.name : 'error'})` };
        throw CFG_ERR_RULES_INVALID.createWith(
          { location: source, problems: [problem] },
          [source, 1, problem.message],
          {
            cause: err,
          },
        );
      }
    },
    versionOf: (rules) => rules.version,
    previewAnonymizer: (rules) => createAnonymizer({ rules, key }),
    coverage: (rules) => coverage(rules),
  };
}
