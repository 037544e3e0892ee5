/**
 * `fhir-sync sync <instance> <resourceType> [--since <instant>] [--reverse] [--no-lock]`:
 * runs one pass now in this process (no queue) and prints its counts. With `--reconcile` it
 * runs a reconciliation instead (compare local and global, repair what the feed missed). With Redis reachable
 * (REDIS_URL) the pass takes the instance lock like a worker would; `--no-lock` skips it.
 * Logs (JSON lines) go to stderr, the summary to stdout.
 */
import { pino } from 'pino';
import { createAnonymizer, deidKeyFrom, loadRulesFile } from '../anonymizer/index.ts';
import { parseEnv } from '../shared/env.ts';
import { runJobOnce, runPassOnce } from '../sync/index.ts';
import { connectionPolicyOf, openInstanceRegistry } from '../instances/index.ts';
import type { CliIo } from './main.ts';

const USAGE =
  'Usage: fhir-sync sync <instance> <resourceType> [--since <ISO instant> | --reverse | --reconcile] [--no-lock]\n';

interface SyncArgs {
  readonly instanceId: string;
  readonly resourceType: string;
  readonly since?: string;
  readonly reverse: boolean;
  readonly reconcile: boolean;
  readonly lock: boolean;
}

/**
 * Parses the arguments.
 * @param argv - arguments after `sync`.
 * @returns the request, or undefined when they do not make one.
 */
export function parseSyncArgs(argv: readonly string[]): SyncArgs | undefined {
  const positional: string[] = [];
  let since: string | undefined;
  let reverse = false;
  let reconcile = false;
  let lock = true;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--since') {
      since = argv[++i];
      if (since === undefined || Number.isNaN(Date.parse(since))) {
        return undefined;
      }
    } else if (arg === '--reverse') {
      reverse = true;
    } else if (arg === '--reconcile') {
      reconcile = true;
    } else if (arg === '--no-lock') {
      lock = false;
    } else if (arg.startsWith('--')) {
      return undefined;
    } else {
      positional.push(arg);
    }
  }
  const [instanceId, resourceType] = positional;
  if (
    positional.length !== 2 ||
    instanceId === undefined ||
    resourceType === undefined ||
    [reverse, since !== undefined, reconcile].filter(Boolean).length > 1
  ) {
    return undefined;
  }
  return { instanceId, resourceType, reverse, reconcile, lock, ...(since !== undefined ? { since } : {}) };
}

/**
 * Runs one pass.
 * @param argv - arguments after `sync`.
 * @param io - streams and environment.
 * @returns 0 when the pass finished, 2 for bad arguments (failures throw to the dispatcher).
 */
export default async function syncCommand(argv: string[], io: CliIo): Promise<number> {
  const args = parseSyncArgs(argv);
  if (!args) {
    io.stderr.write(USAGE);
    return 2;
  }
  // A pass does a worker's job: it needs the key, not the API's auth.
  const settings = parseEnv(io.env, { needs: { auth: false, deidKey: true } });
  const key = deidKeyFrom(settings.deidKey!);
  const rules = loadRulesFile(settings.api.rulesFile);
  const logger = pino({ level: settings.logLevel, base: { service: 'fhir-sync', cli: 'sync' } }, pino.destination(2));
  // The same network policy and CA directory as the service (issue 10).
  const policy = await connectionPolicyOf(settings.net, { redisUrl: settings.redisUrl });
  const config = {
    instances: await openInstanceRegistry(settings.instancesFile, { policy }),
    clientOptions: { policy },
    logger,
    anonymizer: createAnonymizer({ rules, key }),
    key,
    redisUrl: args.lock ? settings.redisUrl : null,
    ...(settings.redisPrefix !== undefined ? { prefix: settings.redisPrefix } : {}),
  };
  if (args.reconcile) {
    const result = await runJobOnce(config, {
      kind: 'reconcile',
      instanceId: args.instanceId,
      resourceType: args.resourceType,
      requestedBy: 'cli',
    });
    const r = result.reconcile!;
    io.stdout.write(
      `reconcile ${r.instanceId}/${r.resourceType}: ${r.checked} checked, ${r.missing} missing, ${r.stale} stale, ` +
        `${r.repaired} repaired, ${r.quarantined} quarantined, ${r.durationMs} ms\n`,
    );
    return 0;
  }
  const summary = await runPassOnce(
    config,
    {
      instanceId: args.instanceId,
      resourceType: args.resourceType,
      direction: args.reverse ? 'reverse' : 'forward',
      ...(args.since !== undefined ? { range: { since: args.since } } : {}),
    },
    (p) => {
      io.stderr.write(
        `  pages ${p.pages}, resources ${p.resources}, deletes ${p.deletes}, quarantined ${p.quarantined}\n`,
      );
    },
  );
  io.stdout.write(
    `${summary.direction} pass ${summary.instanceId}/${summary.resourceType} (rules ${summary.rulesVersion}): ` +
      `${summary.pages} page(s), ${summary.resources} resource(s), ${summary.deletes} delete(s), ` +
      `${summary.quarantined} quarantined, ${summary.dependencies} dependencies, ${summary.durationMs} ms\n`,
  );
  return 0;
}
