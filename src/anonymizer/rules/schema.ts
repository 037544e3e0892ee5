/**
 * The strict schema of a rules file. Unknown keys are errors everywhere (a typo must never be
 * ignored); every setting has a documented default that is filled in after validation. The
 * method-specific keys of a rule are checked by the method's processor (processors/*.ts).
 */
import { z } from 'zod';

/**
 * 3-digit ZIP prefixes whose ZCTAs together hold 20,000 people or fewer in the 2020 Census
 * (HRSA UDS+ list; HHS has not republished one). They generalise to `000`.
 */
export const CENSUS_2020_RESTRICTED_ZIP3: readonly string[] = [
  '036',
  '059',
  '102',
  '202',
  '203',
  '204',
  '205',
  '369',
  '556',
  '692',
  '753',
  '772',
  '821',
  '823',
  '878',
  '879',
  '884',
  '893',
];

const isoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'expected a date YYYY-MM-DD');

/** `settings:` of a rules file, defaults applied. */
export const settingsSchema = z.strictObject({
  /** @defaultValue false */
  allowListMode: z.boolean().default(false),
  /** @defaultValue 'fail' */
  unknownElements: z.enum(['fail', 'remove']).default('fail'),
  references: z
    .strictObject({
      /** @defaultValue ['Organization', 'Location'] */
      exemptTypes: z.array(z.string()).default(['Organization', 'Location']),
    })
    .default({ exemptTypes: ['Organization', 'Location'] }),
  dateShift: z
    .strictObject({
      /** @defaultValue 30 */
      maxDays: z.number().int().min(1).max(3650).default(30),
      /** @defaultValue true */
      keepTime: z.boolean().default(true),
    })
    .default({ maxDays: 30, keepTime: true }),
  ages: z
    .strictObject({
      /** @defaultValue 90 */
      threshold: z.number().int().min(1).max(150).default(90),
      /** No default: required when a rule generalises dates to a year. */
      referenceDate: isoDate.optional(),
    })
    .default({ threshold: 90 }),
  zip3: z
    .strictObject({
      /** @defaultValue the 2020 Census list */
      restrictedPrefixes: z
        .array(z.string().regex(/^\d{3}$/, 'expected three digits'))
        .default([...CENSUS_2020_RESTRICTED_ZIP3]),
    })
    .default({ restrictedPrefixes: [...CENSUS_2020_RESTRICTED_ZIP3] }),
  freeText: z
    .strictObject({
      /** @defaultValue '[REDACTED]' */
      replacement: z.string().min(1).max(64).default('[REDACTED]'),
      /** @defaultValue 3 */
      minTermLength: z.number().int().min(2).max(20).default(3),
    })
    .default({ replacement: '[REDACTED]', minTermLength: 3 }),
  marking: z
    .strictObject({
      /** @defaultValue true */
      securityLabels: z.boolean().default(true),
      /** @defaultValue true */
      tags: z.boolean().default(true),
    })
    .default({ securityLabels: true, tags: true }),
});

const scalar = z.union([z.string(), z.number(), z.boolean()]);
const oneOrMany = <T extends z.ZodType>(t: T): z.ZodUnion<[T, z.ZodArray<T>]> => z.union([t, z.array(t)]);
const itemCode = z.strictObject({ system: z.string().min(1).optional(), code: z.string().min(1) });

/** `select:` of a rule. Which keys may combine is checked semantically (rules/compile.ts). */
export const selectSchema = z.strictObject({
  type: oneOrMany(z.string().min(1)).optional(),
  element: z.string().min(1).optional(),
  where: z.record(z.string().min(1), oneOrMany(scalar)).optional(),
  path: z.string().min(1).optional(),
  in: oneOrMany(z.string().min(1)).optional(),
  questionnaire: z.string().min(1).optional(),
  linkId: oneOrMany(z.string().min(1)).optional(),
  itemCode: oneOrMany(itemCode).optional(),
  answerType: oneOrMany(z.string().min(1)).optional(),
  target: z.enum(['answer', 'item']).optional(),
});
export type SelectInput = z.output<typeof selectSchema>;

const category = z.enum(['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', 'P', 'Q', 'R']);

/** Keys every rule may have; any other key belongs to the method. */
export const RULE_BASE_KEYS: ReadonlySet<string> = new Set(['name', 'description', 'category', 'select', 'method']);

/** The common part of a rule. */
export const ruleBaseSchema = z.object({
  name: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$/, 'letters, digits, . _ - (max 80), starting with a letter or digit'),
  description: z.string().optional(),
  category: oneOrMany(category).optional(),
  select: selectSchema,
  method: z.string().min(1),
});
export type RuleBaseInput = z.output<typeof ruleBaseSchema>;

/** The top level of a rules file. */
export const documentSchema = z.strictObject({
  version: z.literal(1),
  profile: z.string().min(1),
  description: z.string().optional(),
  settings: settingsSchema.default(settingsSchema.parse({})),
  rules: z.array(z.unknown()).min(1, 'at least one rule is required'),
});
export type DocumentInput = z.output<typeof documentSchema>;
