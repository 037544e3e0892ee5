/**
 * From a configured server to the shared FHIR client factory's connection shape
 * (src/shared/fhir-client.ts reads the referenced environment variables).
 */
import type { FhirConnection } from '../shared/fhir-client.ts';
import type { ServerConnection } from './types.ts';

/**
 * The connection of a configured server.
 * @param server - the global server or a local instance.
 * @returns what `createFhirClient` takes.
 */
export function toFhirConnection(server: ServerConnection): FhirConnection {
  return {
    baseUrl: server.baseUrl,
    fhirPath: server.fhirUrlPath,
    auth: server.auth,
    timeoutMs: server.timeoutMs,
    ...(server.maxResponseBytes === undefined ? {} : { maxResponseBytes: server.maxResponseBytes }),
    ...(server.tls === undefined ? {} : { tls: server.tls }),
  };
}
