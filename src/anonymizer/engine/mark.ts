/**
 * Marking of de-identified resources: v3 ObservationValue security labels for the methods
 * that fired (PSEUDED, REDACTED, MASKED, ABSTRED; https://hl7.org/fhir/R4/security-labels.html)
 * and two tags naming the rules version and the key id, so a receiver can tell which rules and
 * which key produced a resource (and re-run it when either changes).
 */
import type { SecurityLabel } from '../processors/types.ts';
import type { RulesSettings } from '../rules/types.ts';

/** Code system of the security labels. */
export const SECURITY_LABEL_SYSTEM = 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue';
/** meta.tag system whose code is the rules version (hash). */
export const RULES_VERSION_TAG_SYSTEM = 'urn:fhir-sync:deid:rules-version';
/** meta.tag system whose code is the key id. */
export const KEY_ID_TAG_SYSTEM = 'urn:fhir-sync:deid:key-id';

const DISPLAY: Readonly<Record<SecurityLabel, string>> = {
  PSEUDED: 'pseudonymized',
  REDACTED: 'redacted',
  MASKED: 'masked',
  ABSTRED: 'abstracted',
};

const LABEL_ORDER = Object.keys(DISPLAY) as SecurityLabel[];

interface Coding {
  system?: unknown;
  code?: unknown;
}

/**
 * Builds the marker the walker calls on each top-level and Bundle entry resource.
 * @param settings - marking switches.
 * @param rulesVersion - hash of the rules.
 * @param keyId - id of the HMAC key.
 * @returns a function that returns the resource with its meta extended.
 */
export function createMarker(
  settings: RulesSettings,
  rulesVersion: string,
  keyId: string,
): (out: Record<string, unknown>, labels: ReadonlySet<SecurityLabel>) => Record<string, unknown> {
  const { securityLabels, tags } = settings.marking;
  // Shared, frozen codings: every resource carries the same ones.
  const ours = [
    Object.freeze({ system: RULES_VERSION_TAG_SYSTEM, code: rulesVersion }),
    Object.freeze({ system: KEY_ID_TAG_SYSTEM, code: keyId }),
  ];
  const labelCodings = new Map(
    (Object.keys(DISPLAY) as SecurityLabel[]).map((code) => [
      code,
      Object.freeze({ system: SECURITY_LABEL_SYSTEM, code, display: DISPLAY[code] }),
    ]),
  );
  // The added security codings of each set of labels, in code order (bit i = LABEL_ORDER[i]).
  const byMask = new Map<number, readonly Coding[]>();
  const codingsOf = (labels: ReadonlySet<SecurityLabel>): readonly Coding[] => {
    let mask = 0;
    for (const l of labels) {
      mask |= 1 << LABEL_ORDER.indexOf(l);
    }
    let codings = byMask.get(mask);
    if (!codings) {
      codings = [...labels].sort().map((code) => labelCodings.get(code) as Coding);
      byMask.set(mask, codings);
    }
    return codings;
  };
  return (out, labels) => {
    if (!tags && (!securityLabels || labels.size === 0)) {
      return out;
    }
    const meta = { ...((out.meta as Record<string, unknown> | undefined) ?? {}) };
    if (securityLabels && labels.size > 0) {
      const existing = Array.isArray(meta.security) ? (meta.security as Coding[]) : [];
      const codings = codingsOf(labels);
      meta.security =
        existing.length === 0
          ? codings.slice()
          : [
              ...existing,
              ...codings.filter((l) => !existing.some((c) => c.system === SECURITY_LABEL_SYSTEM && c.code === l.code)),
            ];
    }
    if (tags) {
      const existing = Array.isArray(meta.tag) ? (meta.tag as Coding[]) : [];
      meta.tag =
        existing.length === 0
          ? ours.slice()
          : [
              ...existing.filter((c) => c.system !== RULES_VERSION_TAG_SYSTEM && c.system !== KEY_ID_TAG_SYSTEM),
              ...ours,
            ];
    }
    return withMeta(out, meta);
  };
}

/** Puts meta where FHIR JSON usually has it: after resourceType and id. */
function withMeta(out: Record<string, unknown>, meta: Record<string, unknown>): Record<string, unknown> {
  if ('meta' in out) {
    out.meta = meta;
    return out;
  }
  const result: Record<string, unknown> = {};
  for (const k of ['resourceType', 'id']) {
    if (k in out) {
      result[k] = out[k];
    }
  }
  result.meta = meta;
  for (const [k, v] of Object.entries(out)) {
    if (!(k in result)) {
      result[k] = v;
    }
  }
  return result;
}
