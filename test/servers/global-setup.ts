/**
 * vitest globalSetup of the `integration` project: reuses the three HAPI FHIR servers when they
 * already answer, otherwise starts them. At teardown it stops the servers a test run started,
 * unless another test run is still using them; servers started with `npm run servers:start`
 * are never stopped here. Tests read the URLs through ./urls.ts.
 */
import type { TestProject } from 'vitest/node';
import { acquireForTests, releaseForTests } from './servers.ts';
import type { FhirServerUrls } from './servers.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    fhirUrls: FhirServerUrls;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const log = (line: string): void => console.log(line);
  const { urls } = await acquireForTests({ log });
  project.provide('fhirUrls', urls);
  // Also for code outside vitest's inject (e.g. child processes spawned by a test).
  process.env.FHIR_GLOBAL_URL = urls.global;
  process.env.FHIR_LOCAL_A_URL = urls.localA;
  process.env.FHIR_LOCAL_B_URL = urls.localB;
  process.env.FHIR_LOCAL_C_URL = urls.localC;
  return async () => {
    const stopped = await releaseForTests({ log });
    if (stopped.length > 0) {
      log(`[servers] stopped ${stopped.join(', ')}`);
    }
  };
}
