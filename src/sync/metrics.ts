/**
 * Prometheus metrics of the sync engine, on a registry created here (pass yours to share
 * one with the API's GET /metrics). Labels are only the instance id (validated
 * `[a-z0-9-]`), the resource type (validated R4 name), the direction and the result: never
 * resource ids, never values.
 *
 * Lag is "seconds since the feed of (instance, type) was last read to its end by a pass
 * that committed": the global server holds every change older than that (minus the feed's
 * settle window). It is computed at scrape time, so it grows between passes.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Direction } from './state.ts';

/** What a finished pass reports to the metrics. */
export interface PassFigures {
  readonly instanceId: string;
  readonly resourceType: string;
  readonly direction: Direction;
  readonly resources: number;
  readonly deletes: number;
  readonly quarantined: number;
  readonly dependencies: number;
  readonly durationMs: number;
  /** Newest change on the source minus the cursor's position at the end of the pass. */
  readonly lagSeconds?: number;
}

/** The engine's metrics. */
export interface SyncMetrics {
  readonly registry: Registry;
  /** Records a finished pass (`result` ok) or a failed one. */
  passFinished(figures: PassFigures, result: 'ok' | 'failed', at: Date): void;
  /** One transaction retried (5xx, 429, timeout, connection). */
  transactionRetried(instanceId: string, direction: Direction): void;
}

type Labels = 'instance' | 'resource_type' | 'direction';
const LABELS: Labels[] = ['instance', 'resource_type', 'direction'];

/**
 * Creates the metrics on a registry.
 * @param registry - where to register (a new one by default).
 * @returns the metrics handle.
 */
export function createSyncMetrics(registry: Registry = new Registry()): SyncMetrics {
  const passes = new Counter({
    name: 'fhir_sync_passes_total',
    help: 'Passes finished, by result.',
    labelNames: [...LABELS, 'result'],
    registers: [registry],
  });
  const resources = new Counter({
    name: 'fhir_sync_resources_total',
    help: 'Resources written (PUT) by passes.',
    labelNames: LABELS,
    registers: [registry],
  });
  const deletes = new Counter({
    name: 'fhir_sync_deletes_total',
    help: 'Deletions written by passes.',
    labelNames: LABELS,
    registers: [registry],
  });
  const quarantined = new Counter({
    name: 'fhir_sync_quarantined_total',
    help: 'Changes sent to quarantine.',
    labelNames: LABELS,
    registers: [registry],
  });
  const dependencies = new Counter({
    name: 'fhir_sync_dependencies_total',
    help: 'Referenced resources written along with the page that needed them.',
    labelNames: LABELS,
    registers: [registry],
  });
  const retries = new Counter({
    name: 'fhir_sync_transaction_retries_total',
    help: 'Transactions retried after 5xx/429/timeout/connection errors.',
    labelNames: ['instance', 'direction'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'fhir_sync_pass_duration_seconds',
    help: 'Duration of passes.',
    labelNames: LABELS,
    buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900],
    registers: [registry],
  });
  const lag = new Gauge({
    name: 'fhir_sync_lag_seconds',
    help: "Newest change on the source minus the committed cursor's position, as the last pass of (instance, type) measured it.",
    labelNames: LABELS,
    registers: [registry],
  });
  return {
    registry,
    passFinished: (f, result) => {
      const labels = { instance: f.instanceId, resource_type: f.resourceType, direction: f.direction };
      passes.inc({ ...labels, result });
      resources.inc(labels, f.resources);
      deletes.inc(labels, f.deletes);
      quarantined.inc(labels, f.quarantined);
      dependencies.inc(labels, f.dependencies);
      duration.observe(labels, f.durationMs / 1000);
      if (result === 'ok' && f.lagSeconds !== undefined) {
        lag.set(labels, f.lagSeconds);
      }
    },
    transactionRetried: (instanceId, direction) => retries.inc({ instance: instanceId, direction }),
  };
}
