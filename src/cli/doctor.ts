/**
 * `fhir-sync doctor`: probes every registered server (read-only) and prints, per server,
 * whether it answers, whether the credentials work, its FHIR version and clock skew, and per
 * synced type the feed kind the service uses and why. Exit 0 when every server answered with
 * working credentials, 1 otherwise.
 */
import { connectionPolicyFromEnv, openInstanceRegistry } from '../instances/index.ts';
import { probeServer } from '../instances/probe.ts';
import type { ServerProbe } from '../instances/probe.ts';
import { API_ERR_CONFIG } from '../shared/errors/index.ts';
import type { CliIo } from './main.ts';

/**
 * Runs the probes.
 * @param argv - arguments after `doctor` (none).
 * @param io - streams and environment.
 * @returns 0 when every server is usable, 1 when one is not, 2 for bad arguments.
 */
export default async function doctorCommand(argv: string[], io: CliIo): Promise<number> {
  if (argv.length > 0) {
    io.stderr.write('Usage: fhir-sync doctor\n');
    return 2;
  }
  const file = io.env.FHIR_SYNC_INSTANCES ?? 'config/instances.yaml';
  if (file === '') {
    throw API_ERR_CONFIG.create('FHIR_SYNC_INSTANCES is empty');
  }
  const policy = await connectionPolicyFromEnv(io.env, { redisUrl: io.env.REDIS_URL ?? 'redis://127.0.0.1:6379' });
  const config = await (await openInstanceRegistry(file, { policy })).config();
  const options = { policy, env: io.env };
  const probes = await Promise.all([
    probeServer('global', config.global, config.global.feed, config.global.adminTypes, options),
    ...config.instances.map((i) =>
      probeServer(i.id, i, i.feed, [...new Set([...i.sendTypes, ...i.receiveAdminTypes])], options),
    ),
  ]);
  io.stdout.write(render(probes));
  return probes.every((p) => p.reachable && p.authOk && p.problem === undefined) ? 0 : 1;
}

function render(probes: readonly ServerProbe[]): string {
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
    'Not probed (they need writes): ties on _lastUpdated, transaction atomicity, bundle caps, client-chosen ids.',
    'The engine learns bundle caps as it writes and stops with SINK_ERR_CLIENT_IDS_REFUSED where ids are refused.',
    '',
  );
  return out.join('\n');
}
