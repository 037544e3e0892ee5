/**
 * Shared pieces used by every area: the error catalogue, the environment, the FHIR client, its
 * transport and request layer, backoff, atomic file writes, deep freezing and YAML with
 * positions. Modules import the file they need; this is the folder's map.
 */
export * from './errors/index.ts';
export * from './env.ts';
export * from './fhir-client.ts';
export * from './fhir-http.ts';
export * from './backoff.ts';
export * from './atomic-write.ts';
export * from './deep-freeze.ts';
export * from './yaml-source.ts';
