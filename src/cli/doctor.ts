/**
 * `fhir-sync doctor`: probes every registered server (read-only) and prints, per server,
 * whether it answers, whether the credentials work, its FHIR version and clock skew, and per
 * synced type the feed kind the service uses and why. Exit 0 when every server answered with
 * working credentials, 1 otherwise.
 *
 * `--write-probes` (never the default) also writes to the global: a few tagged `Basic`
 * resources, deleted afterwards, to learn whether it takes client-chosen ids, whether its
 * transactions are atomic and its bundle cap; the result is printed with the bundle shape the
 * service will use, and saved as the global's server profile (FHIR_SYNC_PROFILES_DIR) that
 * workers read at start.
 */
import { connectionPolicyOf, openInstanceRegistry, probeWrites, saveProfile } from '../instances/index.ts';
import type { WriteProbe } from '../instances/index.ts';
import { probeServer } from '../instances/probe.ts';
import type { ServerProbe } from '../instances/probe.ts';
import { parseEnv } from '../shared/env.ts';
import type { CliIo } from './main.ts';

/**
 * Runs the probes.
 * @param argv - arguments after `doctor` (none).
 * @param io - streams and environment.
 * @returns 0 when every server is usable, 1 when one is not, 2 for bad arguments.
 */
export default async function doctorCommand(argv: string[], io: CliIo): Promise<number> {
  const writeProbes = argv.length === 1 && argv[0] === '--write-probes';
  if (argv.length > 0 && !writeProbes) {
    io.stderr.write('Usage: fhir-sync doctor [--write-probes]\n');
    return 2;
  }
  // Probes read with the instances' own credentials: no service secret is needed.
  const settings = parseEnv(io.env, { needs: { auth: false, deidKey: false } });
  const policy = await connectionPolicyOf(settings.net, { redisUrl: settings.redisUrl });
  const config = await (await openInstanceRegistry(settings.instancesFile, { policy })).config();
  const options = { policy, env: io.env };
  const probes = await Promise.all([
    probeServer('global', config.global, config.global.feed, config.global.adminTypes, options),
    ...config.instances.map((i) =>
      probeServer(i.id, i, i.feed, [...new Set([...i.sendTypes, ...i.receiveAdminTypes])], options),
    ),
  ]);
  io.stdout.write(render(probes, writeProbes));
  const readOk = probes.every((p) => p.reachable && p.authOk && p.problem === undefined);
  if (!writeProbes || !readOk) {
    return readOk ? 0 : 1;
  }
  const found = await probeWrites(config.global, config.global.bundleSize, options);
  io.stdout.write(renderWrites(found, config.global.bundleSize));
  const dir = settings.profilesDir;
  const probedAt = new Date().toISOString();
  const fhirBase = (s: { baseUrl: string; fhirUrlPath: string }): string =>
    `${s.baseUrl}${s.fhirUrlPath}`.replace(/\/+$/, '');
  await saveProfile(dir, { version: 1, name: 'global', fhirBase: fhirBase(config.global), probedAt, write: found });
  for (const inst of config.instances) {
    const probe = probes.find((p) => p.name === inst.id);
    const feedKinds = Object.fromEntries(
      (probe?.types ?? []).flatMap((t) =>
        inst.feed.kind === 'auto' && (t.kind === 'fhir-history' || t.kind === 'search-lastupdated')
          ? [[t.resourceType, t.kind] as const]
          : [],
      ),
    );
    await saveProfile(dir, { version: 1, name: inst.id, fhirBase: fhirBase(inst), probedAt, feedKinds });
  }
  io.stdout.write(
    `Saved server profiles to ${dir}; workers started from now on use the global's bundle cap and, for feed.kind auto, the probed feed kinds.\n`,
  );
  return found.clientIds ? 0 : 1;
}

function renderWrites(w: WriteProbe, configured: number): string {
  const yes = (b: boolean | undefined): string => (b === undefined ? 'unknown' : b ? 'yes' : 'NO');
  const size = Math.min(configured, w.bundleCap ?? configured);
  const shape = !w.clientIds
    ? 'none: the global refuses client-chosen ids, and every write is a PUT to a pseudonymous id (SINK_ERR_CLIENT_IDS_REFUSED)'
    : `transactions of up to ${size} entries (${w.bundleCap === undefined ? 'configured bundleSize' : w.bundleCap < configured ? `the probed cap, below bundleSize ${configured}` : `bundleSize; the server took ${w.bundleCap}`}), ` +
      `PUT to pseudonymous ids, the cursor last in the same transaction` +
      (w.atomic === false
        ? '. WARNING: transactions are not atomic here: a failed page can leave part of it written (replays are idempotent)'
        : '');
  return [
    '',
    'Write probes (global, tagged Basic resources, deleted afterwards):',
    `  client-chosen ids: ${yes(w.clientIds)}`,
    `  transaction atomic: ${yes(w.atomic)}`,
    `  bundle cap: ${w.bundleCap === undefined ? 'unknown' : `accepts ${w.bundleCap} (searched up to ${configured})`}`,
    ...(w.problem === undefined ? [] : [`  problem: ${w.problem}`]),
    `Bundle shape used: ${shape}`,
    '',
  ].join('\n');
}

function render(probes: readonly ServerProbe[], writeProbes: boolean): string {
  const rows = probes.map((p) => [
    p.name,
    p.baseUrl,
    p.reachable ? 'yes' : 'NO',
    p.reachable ? (p.authOk ? 'ok' : 'REFUSED') : '-',
    p.fhirVersion ?? '-',
    p.clockSkewSeconds === undefined ? '-' : `${p.clockSkewSeconds} s`,
    p.problem ?? '',
  ]);
  const head = ['server', 'base URL', 'reachable', 'auth', 'FHIR', 'clock skew', 'problem'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]): string =>
    `${cells.map((c, i) => c.padEnd(widths[i]!)).join('  ')}`.trimEnd();
  const out = [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line), ''];
  for (const p of probes) {
    for (const t of p.types) {
      out.push(`${p.name} ${t.resourceType}: ${t.kind} (${t.why})`);
    }
  }
  out.push(
    '',
    writeProbes
      ? 'Not probed: ties on _lastUpdated (the feed handles them as it reads).'
      : 'Not probed (they need writes; run with --write-probes): transaction atomicity, bundle caps, client-chosen ids, ties.',
    'The engine learns bundle caps as it writes and stops with SINK_ERR_CLIENT_IDS_REFUSED where ids are refused.',
    '',
  );
  return out.join('\n');
}
