/**
 * Base URLs of the real HAPI FHIR test servers for integration tests:
 * `import { fhirUrls } from '../servers/urls.ts'` then `fhirUrls().global` etc.
 */
import { inject } from 'vitest';
import type { FhirServerUrls } from './servers.ts';

export type { FhirServerUrls } from './servers.ts';

/**
 * The URLs provided by the global setup (or FHIR_*_URL env vars when run outside it).
 * @returns base URLs such as `http://127.0.0.1:8090/fhir`
 */
export function fhirUrls(): FhirServerUrls {
  const provided = inject('fhirUrls') as FhirServerUrls | undefined;
  if (provided !== undefined) {
    return provided;
  }
  const {
    FHIR_GLOBAL_URL: global,
    FHIR_LOCAL_A_URL: localA,
    FHIR_LOCAL_B_URL: localB,
    FHIR_LOCAL_C_URL: localC,
  } = process.env;
  if (global === undefined || localA === undefined || localB === undefined || localC === undefined) {
    throw new Error(
      'FHIR test server URLs unknown: run via `npx vitest run --project integration` ' +
        '(its global setup starts the servers) or set FHIR_GLOBAL_URL, FHIR_LOCAL_A_URL, FHIR_LOCAL_B_URL, FHIR_LOCAL_C_URL',
    );
  }
  return { global, localA, localB, localC };
}
