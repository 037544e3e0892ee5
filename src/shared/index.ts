/** Shared pieces used by every area: the error catalogue, the FHIR client factory, atomic file writes. */
export * from './errors/index.ts';
export * from './fhir-client.ts';
export * from './atomic-write.ts';
