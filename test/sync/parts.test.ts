import { describe, expect, it } from 'vitest';
import { parseInstances } from '../../src/instances/index.ts';
import {
  auditEventResource,
  createSyncMetrics,
  feedConfig,
  jobFor,
  rangeCursorFor,
  syncOrder,
  syncWaves,
} from '../../src/sync/index.ts';
import { parseJobData, manualJobId, scheduledJobId } from '../../src/sync/queue/jobs.ts';
import { toQueueError } from '../../src/sync/queue/worker.ts';
import { backoffDelay } from '../../src/shared/backoff.ts';
import { SINK_ERR_UNAVAILABLE, SYNC_ERR_INSTANCE_UNKNOWN } from '../../src/shared/errors/index.ts';
import { UnrecoverableError } from 'bullmq';

const config = parseInstances(
  `version: 1
global: { baseUrl: 'http://g/' }
instances:
  - id: a
    baseUrl: http://a/
    sendTypes: [Observation, Patient]
    receiveAdminTypes: [Organization]
  - id: x
    baseUrl: http://x/
    feed: { kind: aidbox-changes }
    sendTypes: [Patient]
`,
  { source: 't' },
).config;
const [a, x] = config.instances as [(typeof config.instances)[number], (typeof config.instances)[number]];

describe('audit events', () => {
  it('carry who, what, when, outcome, targets and counts, nothing else', () => {
    const ev = auditEventResource({
      action: 'sync.pass',
      outcome: 'success',
      actor: { subject: 'fhir-sync-worker' },
      at: '2026-05-01T10:00:00.000Z',
      rulesVersion: 'r1',
      target: { instanceId: 'a', resourceType: 'Patient', since: undefined },
      counts: { resources: 12, deletes: 1 },
    });
    expect(ev).toMatchObject({
      resourceType: 'AuditEvent',
      action: 'E',
      recorded: '2026-05-01T10:00:00.000Z',
      outcome: '0',
      subtype: [{ code: 'sync.pass' }],
      agent: [{ who: { identifier: { value: 'fhir-sync-worker' } }, requestor: true }],
    });
    expect(ev.entity?.[0]?.detail).toEqual([
      { type: 'target.instanceId', valueString: 'a' },
      { type: 'target.resourceType', valueString: 'Patient' },
      { type: 'count.resources', valueString: '12' },
      { type: 'count.deletes', valueString: '1' },
      { type: 'rulesVersion', valueString: 'r1' },
    ]);
    const failed = auditEventResource({
      action: 'instance.remove',
      outcome: 'failure',
      actor: { subject: 'alice', roles: ['operator'] },
      at: 'x',
      failureCode: 'SYNC_ERR_INSTANCE_UNKNOWN',
    });
    expect(failed).toMatchObject({
      action: 'D',
      outcome: '8',
      outcomeDesc: 'SYNC_ERR_INSTANCE_UNKNOWN',
      agent: [{ role: [{ coding: [{ code: 'operator' }] }] }],
    });
  });
});

describe('metrics', () => {
  it('count passes by result and report the lag the last good pass measured', async () => {
    const m = createSyncMetrics();
    const figures = {
      instanceId: 'a',
      resourceType: 'Patient',
      direction: 'forward' as const,
      resources: 5,
      deletes: 1,
      quarantined: 2,
      dependencies: 3,
      durationMs: 1500,
      lagSeconds: 42,
    };
    m.passFinished(figures, 'ok', new Date(1_000_000));
    m.passFinished({ ...figures, resources: 0, lagSeconds: 7 }, 'failed', new Date(1_000_000));
    const text = await m.registry.metrics();
    expect(text).toContain(
      'fhir_sync_passes_total{instance="a",resource_type="Patient",direction="forward",result="ok"} 1',
    );
    expect(text).toContain(
      'fhir_sync_passes_total{instance="a",resource_type="Patient",direction="forward",result="failed"} 1',
    );
    expect(text).toContain('fhir_sync_resources_total{instance="a",resource_type="Patient",direction="forward"} 5');
    expect(text).toContain('fhir_sync_quarantined_total{instance="a",resource_type="Patient",direction="forward"} 4');
    expect(text).toContain('fhir_sync_lag_seconds{instance="a",resource_type="Patient",direction="forward"} 42');
    expect(text).toContain(
      'fhir_sync_pass_duration_seconds_count{instance="a",resource_type="Patient",direction="forward"} 2',
    );
  });
});

describe('jobs', () => {
  it('accept references only and name scheduled jobs deterministically', () => {
    expect(
      parseJobData({
        kind: 'pass',
        instanceId: 'a',
        resourceType: 'Patient',
        range: { since: '2026-01-01T00:00:00Z' },
      }),
    ).toBeDefined();
    expect(parseJobData({ kind: 'quarantine-retry', instanceId: '*' })).toBeDefined();
    for (const bad of [
      { kind: 'pass', instanceId: 'a', resourceType: 'Patient', resource: { name: 'Jane' } },
      { kind: 'pass', instanceId: 'A B', resourceType: 'Patient' },
      { kind: 'pass', instanceId: 'a', resourceType: 'patient' },
      { kind: 'nope' },
      'x',
    ]) {
      expect(() => parseJobData(bad)).toThrow(expect.objectContaining({ code: 'SYNC_ERR_JOB_INVALID' }));
    }
    try {
      parseJobData({ kind: 'pass', instanceId: 'a', resourceType: 'Patient', resource: { name: 'Jane' } });
    } catch (err) {
      expect((err as Error).message).not.toContain('Jane');
    }
    expect(scheduledJobId({ kind: 'reverse', instanceId: 'a', resourceType: 'Organization' })).toBe(
      'sched.reverse.a.Organization',
    );
    expect(scheduledJobId({ kind: 'sweep', instanceId: 'a' })).toBe('sched.sweep.a');
    expect(parseJobData({ kind: 'sweep', instanceId: 'a' })).toEqual({ kind: 'sweep', instanceId: 'a' });
    expect(() => parseJobData({ kind: 'sweep', instanceId: 'a', resourceType: 'Patient' })).toThrow();
    expect(manualJobId({ kind: 'quarantine-retry', instanceId: '*' }, 5)).toMatch(
      /^manual\.quarantine-retry\.all\.all\.5\.[0-9a-f]{6}$/,
    );
  });

  it('turn errors into coded queue errors: retryable stays, the rest is unrecoverable', () => {
    const retry = toQueueError(SINK_ERR_UNAVAILABLE.create('http://g', 3, 'HTTP 503'));
    expect(retry).not.toBeInstanceOf(UnrecoverableError);
    expect(retry.message).toMatch(/^SINK_ERR_UNAVAILABLE: /);
    expect(toQueueError(SYNC_ERR_INSTANCE_UNKNOWN.create('a'))).toBeInstanceOf(UnrecoverableError);
    const bug = toQueueError(new TypeError('Cannot read properties of Jane Doe'));
    expect(bug.message).toBe('SYNC_ERR_INTERNAL: Internal error in job (TypeError)');
  });

  it('back off exponentially with jitter, capped', () => {
    const queue = { baseDelayMs: 1000, maxDelayMs: 60_000 };
    expect(backoffDelay(queue, 1, () => 0.999)).toBeLessThanOrEqual(1000);
    expect(backoffDelay(queue, 4, () => 0.999)).toBeGreaterThan(7900);
    expect(backoffDelay(queue, 30, () => 0.999)).toBeLessThanOrEqual(60_000);
    expect(backoffDelay(queue, 30, () => 0.999)).toBeGreaterThan(59_000);
    const policy = { attempts: 5, baseDelayMs: 100, maxDelayMs: 1000 };
    expect(backoffDelay(policy, 1, () => 0.999)).toBeLessThanOrEqual(100);
    expect(backoffDelay(policy, 3, () => 0)).toBe(40);
    expect(backoffDelay(policy, 10, () => 0.999)).toBeLessThanOrEqual(1000);
  });
});

describe('scheduling order and manual triggers', () => {
  it('orders types so referenced ones come first', () => {
    expect(syncOrder(['Observation', 'Claim', 'Patient', 'Basic', 'Encounter', 'Organization'])).toEqual([
      'Organization',
      'Patient',
      'Encounter',
      'Observation',
      'Claim',
      'Basic',
    ]);
  });

  it('puts each hub type in its own wave, then one wave per rank', () => {
    expect(
      syncWaves(['Claim', 'Observation', 'Procedure', 'Patient', 'Condition', 'Encounter', 'Basic', 'Immunization']),
    ).toEqual([
      ['Patient'],
      ['Encounter'],
      ['Procedure', 'Condition'],
      ['Observation'],
      ['Immunization'],
      ['Claim'],
      ['Basic'],
    ]);
  });

  it('maps a trigger to a forward or reverse job, or refuses it', () => {
    expect(jobFor(a, 'Patient', undefined)).toEqual({ kind: 'pass', instanceId: 'a', resourceType: 'Patient' });
    expect(jobFor(a, 'Organization', undefined)).toEqual({
      kind: 'reverse',
      instanceId: 'a',
      resourceType: 'Organization',
    });
    expect(() => jobFor(a, 'Practitioner', undefined)).toThrow(
      expect.objectContaining({ code: 'SYNC_ERR_TYPE_NOT_SYNCED' }),
    );
    expect(() => jobFor(a, 'Patient', { since: 'yesterday' })).toThrow(
      expect.objectContaining({ code: 'SYNC_ERR_RANGE_UNSUPPORTED' }),
    );
    expect(() => jobFor(x, 'Patient', { since: '2026-01-01T00:00:00Z' })).toThrow(
      expect.objectContaining({ code: 'SYNC_ERR_RANGE_UNSUPPORTED' }),
    );
  });

  it('builds feed configs and instant cursors for timestamp feeds only', () => {
    expect(feedConfig(a.feed, 99)).toEqual({ kind: 'fhir-history', pageSize: 99 });
    expect(
      feedConfig({ kind: 'search-lastupdated', pageSize: 10, settleMs: 0, deletionsQuery: '_deleted=true' }, 99),
    ).toEqual({
      kind: 'search-lastupdated',
      pageSize: 10,
      settleMs: 0,
      deletionsQuery: '_deleted=true',
    });
    expect(rangeCursorFor(x.feed)).toBeUndefined();
    const make = rangeCursorFor(a.feed)!;
    expect(JSON.parse(make('2026-01-01T00:00:00+02:00')!)).toEqual({
      c: 1,
      f: 'ts',
      lo: '2025-12-31T22:00:00.000Z',
      seen: [],
    });
    expect(make('not a date')).toBeUndefined();
  });
});
