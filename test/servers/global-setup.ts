/**
 * vitest globalSetup of the `integration` project: reuses the three HAPI FHIR servers when they
 * already answer, otherwise starts them and stops (only) those it started at teardown.
 * Tests read the URLs through ./urls.ts.
 */
import type { TestProject } from 'vitest/node';
import { startServers, stopServers } from './servers.ts';
import type { FhirServerUrls } from './servers.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    fhirUrls: FhirServerUrls;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const { urls, started } = await startServers({ log: (line) => console.log(line) });
  project.provide('fhirUrls', urls);
  // Also for code outside vitest's inject (e.g. child processes spawned by a test).
  process.env.FHIR_GLOBAL_URL = urls.global;
  process.env.FHIR_LOCAL_A_URL = urls.localA;
  process.env.FHIR_LOCAL_B_URL = urls.localB;
  return async () => {
    if (started.length > 0) {
      await stopServers(started, { log: (line) => console.log(line) });
    }
  };
}
