/**
 * Public face of src/sync: the engine that turns change feeds and the anonymizer into the
 * running service.
 *
 * - One pass (`runPass`, pass.ts): feed → de-identify → bundle → write → cursor, with the
 *   cursor committed on the target in the same transaction as the data (exactly once).
 * - Channels: forward (local → global, de-identified, pseudonymous ids) and reverse
 *   (global admin types → subscribing locals, same ids), with ownership marks against echo.
 * - The queue (bullmq, Redis only in ./queue/): scheduled and manual jobs, one unit of work
 *   per instance at a time across processes, progress, retries.
 * - SyncControl for the API, audit (`recordAudit`), metrics (`createSyncMetrics`).
 * - Process entry points: `startWorker`, `startScheduler`, `openSyncControl`, `runPassOnce`, `runJobOnce`.
 */
export type { SyncControl, SyncRange, JobInfo, JobProgress, JobState, TypeStatus, QuarantineItem } from './control.ts';
export { startWorker, startScheduler, openSyncControl, runJobOnce, runPassOnce } from './service.ts';
export type { Handle, SyncServiceConfig, EngineServiceConfig, WorkerServiceConfig } from './service.ts';
export { createSyncControl, jobFor } from './sync-control.ts';
export type { SyncControlDeps } from './sync-control.ts';
export { createSyncEngine, feedConfig, rangeCursorFor } from './engine.ts';
export type { SyncEngine, SyncEngineDeps, SyncJobData, JobResult, InstanceLockFn } from './engine.ts';
export type { ReconcileSummary } from './reconcile.ts';
export { runPass } from './pass.ts';
export type { PassDeps, PassRequest, PassSummary } from './pass.ts';
export { forwardChannel } from './channel.ts';
export type { Channel, RefPlan, TransformOutcome, ForwardChannelInput } from './channel.ts';
export { reverseChannel } from './reverse.ts';
export type { ReverseChannelInput } from './reverse.ts';
export { recordAudit, createAuditSink, auditEventResource } from './audit.ts';
export type { AuditInput, AuditDeps } from './audit.ts';
export { createSyncMetrics } from './metrics.ts';
export type { SyncMetrics, PassFigures } from './metrics.ts';
export { createFhirStore } from './fhir-store.ts';
export { latestPerResource } from './prepare.ts';
export type { FhirStore, FhirAnswer } from './fhir-store.ts';
export { sealingCodec, plainCodec } from './seal.ts';
export type { CursorCodec } from './seal.ts';
export { FROM_LOCAL_TAG, FROM_GLOBAL_TAG, STATE_TAG, SYNC_SYSTEM } from './marks.ts';
export { cursorId, quarantineId } from './state.ts';
export type { CursorState, QuarantineRecord, Direction } from './state.ts';
export { listQuarantineRecords, toQuarantineItem } from './quarantine.ts';
export { initSyncQueue } from './queue/queue.ts';
export type { SyncQueue, QueueSettings } from './queue/queue.ts';
export { initSyncWorker } from './queue/worker.ts';
export type { SyncWorker, WorkerSettings } from './queue/worker.ts';
export { startSyncScheduler, syncOrder, syncWaves } from './queue/scheduler.ts';
export type { SyncScheduler, SchedulerSettings } from './queue/scheduler.ts';
export { DEFAULT_RETRY } from './writer.ts';
export { PUSH_HEADER, PUSH_TAG, pushEndpoint, pushToken, pushTokenValid, reconcileSubscriptions } from './push.ts';
export type { PushSettings, PushReconcile } from './push.ts';
export type { RetryPolicy } from './writer.ts';
