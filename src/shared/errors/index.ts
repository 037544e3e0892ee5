/**
 * The one error catalogue. Each area keeps its entries in its own file here (so the codes
 * live in one folder and one namespace), grouped by prefix:
 * CFG_ERR_* configuration, DEID_ERR_* de-identification, FEED_ERR_* change feeds,
 * SINK_ERR_* writing to FHIR servers, SYNC_ERR_* engine/queue, API_ERR_* HTTP.
 * A retired code is never reused.
 */
export * from './define.ts';
export * from './sync.ts';
export * from './api.ts';
export * from './feed.ts';
export * from './config.ts';
export * from './deid.ts';
export * from './family.ts';
