/** Shared pieces used by every area: the error catalogue and OperationOutcome helpers. */
export * from './errors/index.ts';
export * from './outcomes.ts';
export * from './fhir-client.ts';
export * from './atomic-write.ts';
