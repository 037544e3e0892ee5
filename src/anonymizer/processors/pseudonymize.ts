/**
 * `pseudonymize`: replaces a value by a keyed HMAC-SHA256 pseudonym, shaped as a UUID. Where
 * the value names a resource, the element decides how: a resource `id`, Reference.reference
 * (every form), Bundle.entry.fullUrl and request.url are rewritten through the same
 * `pseudonymousId(type, id)`, so references still resolve; an Identifier.value is scoped by its
 * system (conditional references `Type?identifier=system|value` use the same function).
 */
import { z } from 'zod';
import { REMOVE, SecurityLabel } from './types.ts';
import type { Processor } from './types.ts';
import { TEXT_TYPES } from './accepted-types.ts';

export const pseudonymizeProcessor: Processor<Record<string, never>> = {
  method: 'pseudonymize',
  options: z.strictObject({}),
  scope: 'value',
  label: SecurityLabel.PSEUDED,
  accepts: (type) => TEXT_TYPES.has(type),
  describeAccepted: () => [...TEXT_TYPES].join(', '),
  apply(value, target, _o, ctx) {
    const s = String(value);
    if (target.isResourceId) {
      return ctx.resourceId(s);
    }
    // Dispatch on the key first: no string is built per value.
    const parentType = target.parentType;
    switch (target.key) {
      case 'reference':
        if (parentType === 'Reference') {
          return ctx.rewriteReference(s);
        }
        break;
      case 'fullUrl':
        if (parentType === 'BundleEntry') {
          return ctx.rewriteFullUrl(s) ?? REMOVE;
        }
        break;
      case 'url':
        if (parentType === 'BundleEntryRequest') {
          return ctx.rewriteRequestUrl(s);
        }
        break;
      case 'location':
        if (parentType === 'BundleEntryResponse') {
          return ctx.rewriteRequestUrl(s);
        }
        break;
      case 'system':
        if (parentType === 'Identifier') {
          return ctx.identifierSystem(s);
        }
        break;
      case 'value':
        if (parentType === 'Identifier') {
          const system = target.parent.system;
          return ctx.identifierValue(typeof system === 'string' ? system : undefined, s);
        }
        break;
    }
    const p = ctx.pseudonymizeValue(s);
    // DICOM UIDs and OIDs stay in their own syntax: the UUID as an OID under 2.25 (ISO/IEC 9834-8).
    if (target.type === 'oid' || target.key === 'uid') {
      const oid = `2.25.${BigInt('0x' + p.replace(/-/g, '')).toString()}`;
      return target.type === 'oid' ? `urn:oid:${oid}` : oid;
    }
    return target.type === 'uuid' ? `urn:uuid:${p}` : p;
  },
};
