/**
 * Server profiles: what `fhir-sync doctor --write-probes` found about a server, saved as one
 * small JSON file per server (`FHIR_SYNC_PROFILES_DIR`, default `data/server-profiles`) so
 * that workers started later use it: the engine starts with the probed bundle cap instead of
 * learning it from a refused transaction, and `feed.kind: auto` uses the feed kinds found by
 * asking the server (a declared history that answers 405 is no history). A file is a hint, never required: a missing or
 * malformed one is ignored, and the engine still learns caps as it writes.
 */
import { mkdir, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { atomicWrite } from '../shared/atomic-write.ts';
import type { WriteProbe } from './write-probe.ts';

/** One server's saved profile. */
export interface ServerProfile {
  readonly version: 1;
  /** Registry name (`global` or an instance id). */
  readonly name: string;
  /** FHIR base URL (no credentials): the key the engine matches targets on. */
  readonly fhirBase: string;
  readonly probedAt: string;
  /** Write probes (the global only, `--write-probes`). */
  readonly write?: WriteProbe;
  /** Feed kind per synced type, as probed (locals). */
  readonly feedKinds?: Readonly<Record<string, 'fhir-history' | 'search-lastupdated'>>;
}

// The default directory (FHIR_SYNC_PROFILES_DIR) belongs to the environment's owner.
export { DEFAULT_PROFILES_DIR } from '../shared/env.ts';

/** Profiles are a few hundred bytes: anything larger is not ours. */
const MAX_PROFILE_BYTES = 16 * 1024;

/**
 * Saves a profile (atomically; replaces the previous one of the same server).
 * @param dir - the profiles directory.
 * @param profile - the profile.
 * @returns the file written.
 */
export async function saveProfile(dir: string, profile: ServerProfile): Promise<string> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(profile.name)) {
    throw new Error('profile name must be a registry id');
  }
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${profile.name}.json`);
  await atomicWrite(file, `${JSON.stringify(profile, null, 2)}\n`);
  return file;
}

/**
 * Reads every well-formed profile in a directory (none when it does not exist).
 * @param dir - the profiles directory.
 * @returns the profiles.
 */
export async function loadProfiles(dir: string): Promise<ServerProfile[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
  const out: ServerProfile[] = [];
  for (const name of names.slice(0, 1000)) {
    try {
      const text = await readFile(join(dir, name), 'utf8');
      const p = text.length <= MAX_PROFILE_BYTES ? (JSON.parse(text) as Partial<ServerProfile>) : undefined;
      if (p?.version === 1 && typeof p.fhirBase === 'string' && typeof p.name === 'string') {
        out.push(p as ServerProfile);
      }
    } catch {
      // not a profile: ignored (a hint only)
    }
  }
  return out;
}

/**
 * Bundle caps by FHIR base from profiles (the engine's initial caps).
 * @param profiles - loaded profiles.
 * @returns base → cap, for profiles that found one.
 */
export function bundleCapsOf(profiles: readonly ServerProfile[]): Map<string, number> {
  return new Map(
    profiles.flatMap((p) =>
      typeof p.write?.bundleCap === 'number' && Number.isInteger(p.write.bundleCap) && p.write.bundleCap >= 2
        ? [[p.fhirBase, p.write.bundleCap] as const]
        : [],
    ),
  );
}

/**
 * Probed feed kinds by FHIR base (what `auto` uses before the CapabilityStatement).
 * @param profiles - loaded profiles.
 * @returns base → (type → kind).
 */
export function feedKindsOf(
  profiles: readonly ServerProfile[],
): Map<string, Readonly<Record<string, 'fhir-history' | 'search-lastupdated'>>> {
  return new Map(profiles.flatMap((p) => (p.feedKinds === undefined ? [] : [[p.fhirBase, p.feedKinds] as const])));
}
