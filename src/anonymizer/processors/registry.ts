/**
 * The one map of de-identification methods. Registering a name twice, or looking up a name
 * that is not there, throws: a rules file can only use what is registered here.
 */
import { dateShiftProcessor } from './date-shift.ts';
import { generalizeProcessor } from './generalize.ts';
import { keepProcessor } from './keep.ts';
import { maskProcessor } from './mask.ts';
import { pseudonymizeProcessor } from './pseudonymize.ts';
import { redactProcessor } from './redact.ts';
import { removeProcessor } from './remove.ts';
import { scrubProcessor } from './scrub.ts';
import { substituteProcessor } from './substitute.ts';
import type { Processor } from './types.ts';

/** A registry of processors by method name. */
export interface ProcessorRegistry {
  get(method: string): Processor | undefined;
  /** Like get, but throws for an unknown method. */
  require(method: string): Processor;
  methods(): readonly string[];
}

/**
 * Builds a registry; duplicate method names throw.
 * @param processors - the processors to register.
 * @returns the frozen registry.
 */
export function createRegistry(processors: readonly Processor<never>[]): ProcessorRegistry {
  const map = new Map<string, Processor>();
  for (const p of processors) {
    if (map.has(p.method)) {
      throw new Error(`Processor ${p.method} is registered twice`);
    }
    map.set(p.method, p);
  }
  const methods = [...map.keys()];
  return Object.freeze({
    get: (m: string) => map.get(m),
    require(m: string): Processor {
      const p = map.get(m);
      if (!p) {
        throw new Error(`No processor for method ${m}`);
      }
      return p;
    },
    methods: () => methods,
  });
}

/** The built-in methods. */
export const PROCESSORS: ProcessorRegistry = createRegistry([
  keepProcessor,
  removeProcessor,
  redactProcessor,
  pseudonymizeProcessor,
  dateShiftProcessor,
  generalizeProcessor,
  substituteProcessor,
  maskProcessor,
  scrubProcessor,
] as unknown as Processor<never>[]);
