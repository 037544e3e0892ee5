/**
 * The scheduler: one node-cron task per enabled instance (its `schedule`); each tick enqueues
 * the instance's reverse passes (admin data down first, so the forward passes see which admin
 * resources are global-owned) and then one sweep of its forward types: several channels at
 * once, started in dependency order (Organization, Location, Practitioner..., Patient,
 * Encounter, then clinical types; references resolve whatever the order, since a pass brings
 * missing dependencies along, but this order makes that rare). Jobs have deterministic ids, so
 * a tick while the previous job of the same (kind, instance[, type]) is pending adds nothing,
 * and several schedulers can run at once.
 * The configuration is re-read periodically: added, removed, disabled or re-scheduled
 * instances are picked up without a restart.
 */
import { createTask } from 'node-cron';
import type { ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';
import { AppError } from '../../shared/errors/index.ts';
import type { InstancesConfig, LocalInstance } from '../../instances/index.ts';
import type { SyncQueue } from './queue.ts';

/** Scheduler settings. */
export interface SchedulerSettings {
  readonly queue: Pick<SyncQueue, 'addScheduled'>;
  readonly config: () => Promise<InstancesConfig>;
  readonly logger: Logger;
  /** How often the configuration is re-read. @defaultValue 30000 */
  readonly reloadEveryMs?: number;
  /** IANA time zone of the cron expressions. @defaultValue the process's */
  readonly timezone?: string;
}

/** A running scheduler. */
export interface SyncScheduler {
  /** Enqueues one tick now: `instanceId` for its passes, `instanceId#reconcile` for its reconciliations. */
  tick(key: string): Promise<readonly string[]>;
  /** Re-reads the configuration and adjusts the cron tasks. */
  reconcile(): Promise<void>;
  /** Ids of instances with a running cron task. */
  scheduled(): readonly string[];
  close(): Promise<void>;
}

/** Sync order of common types; others come after, in `sendTypes` order. */
const TYPE_RANK: Readonly<Record<string, number>> = {
  Organization: 0,
  Location: 1,
  Practitioner: 2,
  PractitionerRole: 3,
  Medication: 4,
  Device: 4,
  Patient: 5,
  RelatedPerson: 6,
  Group: 6,
  Coverage: 7,
  EpisodeOfCare: 7,
  Encounter: 8,
  Condition: 9,
  Procedure: 9,
  Observation: 10,
  DiagnosticReport: 11,
  MedicationRequest: 11,
  Immunization: 11,
  AllergyIntolerance: 11,
  CarePlan: 12,
  CareTeam: 12,
  Claim: 13,
  ExplanationOfBenefit: 14,
  DocumentReference: 14,
  Provenance: 20,
};

/**
 * Rank of a type in the sync order (lower goes first).
 * @param type - a resource type.
 * @returns its rank; types the order does not list come after those it does.
 */
export function typeRank(type: string): number {
  return TYPE_RANK[type] ?? UNRANKED;
}

/**
 * Types in sync order.
 * @param types - an instance's types.
 * @returns a sorted copy (stable for equal ranks).
 */
export function syncOrder(types: readonly string[]): string[] {
  return types
    .map((t, i) => ({ t, i, r: TYPE_RANK[t] ?? UNRANKED }))
    .sort((a, b) => a.r - b.r || a.i - b.i)
    .map((x) => x.t);
}

/** Types up to this rank (Encounter) are referenced by most others. */
const HUB_RANK = 8;
/** Rank of types TYPE_RANK does not list. */
const UNRANKED = 15;

/**
 * Types in waves for a sweep: each hub type (admin types, Patient, Encounter...) alone, then one
 * wave per rank (types of one rank rarely reference each other). A wave starts when the previous
 * one has ended, so what a type references is on the target before its channel runs, and
 * channels side by side rarely pull each other's resources in as dependencies (a second write).
 * @param types - an instance's types.
 * @returns the waves, each in sync order.
 */
export function syncWaves(types: readonly string[]): string[][] {
  const waves: string[][] = [];
  let rank: number | undefined;
  for (const t of syncOrder(types)) {
    const r = TYPE_RANK[t] ?? UNRANKED;
    if (r <= HUB_RANK || r !== rank) {
      waves.push([]);
    }
    waves.at(-1)!.push(t);
    rank = r;
  }
  return waves;
}

/** Task key suffix of an instance's reconciliation schedule (ids cannot contain `#`). */
const RECONCILE_SUFFIX = '#reconcile';

/**
 * Starts the scheduler.
 * @param settings - queue, configuration source, logger.
 * @returns the handle (call `close` to stop every task).
 */
export async function startSyncScheduler(settings: SchedulerSettings): Promise<SyncScheduler> {
  const s: SchedulerState = { settings, tasks: new Map(), config: await settings.config() };
  const reconcile = (): Promise<void> => reconcileTasks(s);
  await reconcile();
  const reloader = setInterval(() => {
    reconcile().catch((err: unknown) =>
      settings.logger.error(
        { code: err instanceof AppError ? err.code : 'error' },
        'instances configuration not reloaded',
      ),
    );
  }, settings.reloadEveryMs ?? 30_000);
  reloader.unref();
  return {
    tick: async (key) => {
      const [instanceId, what] = key.split(RECONCILE_SUFFIX);
      const inst = s.config.instances.find((i) => i.id === instanceId && i.enabled);
      if (inst === undefined) {
        return [];
      }
      return what === undefined ? enqueue(settings, inst) : enqueueReconcile(settings, inst);
    },
    reconcile,
    scheduled: () => [...s.tasks.keys()],
    close: async () => {
      clearInterval(reloader);
      for (const t of s.tasks.values()) {
        await t.task.destroy();
      }
      s.tasks.clear();
    },
  };
}

/** A scheduler's cron tasks by key, and the configuration they were made from. */
interface SchedulerState {
  readonly settings: SchedulerSettings;
  readonly tasks: Map<string, { task: ScheduledTask; schedule: string }>;
  config: InstancesConfig;
}

async function enqueue(settings: SchedulerSettings, inst: LocalInstance): Promise<string[]> {
  const ids: string[] = [];
  for (const resourceType of syncOrder(inst.receiveAdminTypes)) {
    ids.push(await settings.queue.addScheduled({ kind: 'reverse', instanceId: inst.id, resourceType }));
  }
  // One sweep runs every sent type, several channels at once under the instance's lock.
  if (inst.sendTypes.length > 0) {
    ids.push(await settings.queue.addScheduled({ kind: 'sweep', instanceId: inst.id }));
  }
  return ids;
}

/** Reconciliation ticks (optional `reconcileSchedule`): one job per sent type. */
async function enqueueReconcile(settings: SchedulerSettings, inst: LocalInstance): Promise<string[]> {
  const ids: string[] = [];
  for (const resourceType of syncOrder(inst.sendTypes)) {
    ids.push(await settings.queue.addScheduled({ kind: 'reconcile', instanceId: inst.id, resourceType }));
  }
  return ids;
}

async function onTick(s: SchedulerState, key: string): Promise<void> {
  const { settings } = s;
  const [instanceId, what] = key.split(RECONCILE_SUFFIX);
  const inst = s.config.instances.find((i) => i.id === instanceId && i.enabled);
  if (inst === undefined) {
    return;
  }
  try {
    const ids = what === undefined ? await enqueue(settings, inst) : await enqueueReconcile(settings, inst);
    settings.logger.debug({ instanceId, jobs: ids.length }, 'scheduled passes enqueued');
  } catch (err) {
    settings.logger.error(
      { instanceId, code: err instanceof AppError ? err.code : 'error' },
      'could not enqueue scheduled passes',
    );
  }
}

/** Re-reads the configuration; stops the tasks whose schedule went away or changed, starts the new ones. */
async function reconcileTasks(s: SchedulerState): Promise<void> {
  s.config = await s.settings.config();
  const wanted = wantedSchedules(s.config);
  for (const [id, t] of s.tasks) {
    if (wanted.get(id) !== t.schedule) {
      await t.task.destroy();
      s.tasks.delete(id);
    }
  }
  for (const [id, schedule] of wanted) {
    if (!s.tasks.has(id)) {
      const task = createTask(schedule, () => onTick(s, id), {
        name: `fhir-sync:${id}`,
        noOverlap: true,
        timezone: s.settings.timezone,
      });
      await task.start();
      s.tasks.set(id, { task, schedule });
    }
  }
}

/** Cron expression by task key: each enabled instance's schedule, and its reconciliation schedule if any. */
function wantedSchedules(config: InstancesConfig): Map<string, string> {
  return new Map(
    config.instances
      .filter((i) => i.enabled)
      .flatMap((i) => [
        [i.id, i.schedule] as const,
        ...(i.reconcileSchedule === undefined ? [] : [[`${i.id}${RECONCILE_SUFFIX}`, i.reconcileSchedule] as const]),
      ]),
  );
}
