/**
 * `scrub`: removes the record's own PHI from free text: names, identifiers, phone numbers,
 * address parts and birth dates found in the Patient and the other person resources of the
 * same input, plus patterns that are PHI in any record (dates, e-mail addresses, phone and
 * social security numbers, URLs, ages of 90 or more). Detection is only as good as that
 * dictionary, so the method fails closed: when the record's Patient is not part of the input
 * the text is removed, and so is a base64 attachment that is not `text/*`.
 */
import { z } from 'zod';
import { REMOVE, SecurityLabel } from './types.ts';
import type { ApplyContext, Processor, Target } from './types.ts';
import { FREE_TEXT_TYPES } from './accepted-types.ts';

export const scrubProcessor: Processor<Record<string, never>> = {
  method: 'scrub',
  options: z.strictObject({}),
  scope: 'value',
  label: SecurityLabel.REDACTED,
  accepts: (type) => FREE_TEXT_TYPES.has(type),
  describeAccepted: () => [...FREE_TEXT_TYPES].join(', '),
  apply(value, target, _o, ctx) {
    if (typeof value !== 'string') {
      return REMOVE;
    }
    switch (target.type) {
      case 'base64Binary':
        return scrubAttachment(value, target, ctx);
      case 'xhtml':
        return scrubXhtml(value, ctx) ?? REMOVE;
      default:
        return ctx.scrubText(value) ?? REMOVE;
    }
  },
};

function scrubAttachment(value: string, target: Target, ctx: ApplyContext): unknown {
  const contentType = target.parent.contentType;
  if (typeof contentType !== 'string' || !/^text\//i.test(contentType.trim())) {
    return REMOVE;
  }
  const text = Buffer.from(value, 'base64').toString('utf8');
  const scrubbed = ctx.scrubText(text);
  return scrubbed === undefined ? REMOVE : Buffer.from(scrubbed, 'utf8').toString('base64');
}

/** Scrubs the text between tags and the attribute values; the markup stays valid XHTML. */
function scrubXhtml(div: string, ctx: ApplyContext): string | undefined {
  let failed = false;
  const scrub = (s: string): string => {
    const r = ctx.scrubText(s);
    if (r === undefined) {
      failed = true;
      return '';
    }
    return r;
  };
  const attribute = (_a: string, name: string, pre: string, v: string, post: string): string =>
    name.startsWith('xmlns') ? _a : name + pre + scrub(v) + post;
  const out = div.replace(/(<[^>]*>)|([^<]+)/g, (_m, tag: string | undefined, text: string | undefined) =>
    tag !== undefined ? tag.replace(/([\w:.-]+)(\s*=\s*["'])([^"']*)(["'])/g, attribute) : scrub(text ?? ''),
  );
  return failed ? undefined : out;
}
