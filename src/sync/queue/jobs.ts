/**
 * Job payloads on the queue: small, readonly, JSON-plain, discriminated by `kind`, carrying
 * references only (instance id, resource type, optional backfill range or quarantine record
 * ids): never a resource, never PHI. Checked when a worker takes a job, since Redis content
 * crosses a process boundary.
 *
 * Job ids: scheduled jobs use `sched.<kind>.<instance>.<type>` and are removed when done,
 * so a tick while one is still waiting or running is a no-op (several schedulers can run side
 * by side). Manual jobs get a unique id and are kept a while so their status can be read.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { SYNC_ERR_JOB_INVALID } from '../../shared/errors/index.ts';
import type { SyncJobData } from '../engine.ts';

const id = z.string().regex(/^[a-z0-9][a-z0-9-]{0,31}$/);
const type = z.string().regex(/^[A-Z][A-Za-z]{1,63}$/);
const requestedBy = z.string().min(1).max(200).optional();

const jobSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('pass'),
    instanceId: id,
    resourceType: type,
    requestedBy,
    range: z
      .strictObject({
        since: z.iso.datetime({ offset: true }).optional(),
        versionRange: z.strictObject({ lower: z.int().min(0), upper: z.int().min(0).optional() }).optional(),
      })
      .optional(),
  }),
  z.strictObject({ kind: z.literal('reverse'), instanceId: id, resourceType: type, requestedBy }),
  z.strictObject({ kind: z.literal('sweep'), instanceId: id, requestedBy }),
  z.strictObject({ kind: z.literal('reconcile'), instanceId: id, resourceType: type, requestedBy }),
  z.strictObject({
    kind: z.literal('quarantine-retry'),
    instanceId: z.union([id, z.literal('*')]),
    resourceType: type.optional(),
    ids: z
      .array(z.string().regex(/^[A-Za-z0-9\-.]{1,64}$/))
      .max(10_000)
      .optional(),
    requestedBy,
  }),
]);

/**
 * Checks a job payload.
 * @param data - what the queue holds.
 * @returns the payload.
 * @throws AppError SYNC_ERR_JOB_INVALID (never echoing values).
 */
export function parseJobData(data: unknown): SyncJobData {
  const parsed = jobSchema.safeParse(data);
  if (!parsed.success) {
    const where = parsed.error.issues.map((i) => i.path.join('.') || '(root)').join(', ');
    throw SYNC_ERR_JOB_INVALID.create(`bad field(s): ${where}`);
  }
  return parsed.data;
}

/**
 * Id of the scheduled job of (kind, instance, type); a sweep covers every type of its instance.
 * @param job - the payload.
 * @returns a deterministic id.
 */
export function scheduledJobId(
  job: Extract<SyncJobData, { kind: 'pass' | 'reverse' | 'sweep' | 'reconcile' }>,
): string {
  return job.kind === 'sweep'
    ? `sched.sweep.${job.instanceId}`
    : `sched.${job.kind}.${job.instanceId}.${job.resourceType}`;
}

/**
 * Id of a manual job.
 * @param job - the payload.
 * @param now - epoch ms.
 * @returns a unique id.
 */
export function manualJobId(job: SyncJobData, now: number): string {
  const type = 'resourceType' in job ? job.resourceType : undefined;
  return `manual.${job.kind}.${job.instanceId === '*' ? 'all' : job.instanceId}.${type ?? 'all'}.${now}.${randomBytes(3).toString('hex')}`;
}
