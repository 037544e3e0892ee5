/**
 * The de-identification rules, for compliance staff:
 * GET /rules (YAML, ETag = version), PUT /rules (validated; only a valid file replaces the
 * rules in use; 422 with line and column otherwise), GET /rules/versions (+ /{version}),
 * POST /rules/validate, POST /rules/preview (sample resources in, de-identified resources
 * and report out, with the rules in use or a draft; writes nothing) and GET /rules/coverage.
 * Preview bodies may hold PHI: they are never logged, audited or echoed in errors.
 */
import type { FastifyInstance } from 'fastify';
import type { Resource } from '@medplum/fhirtypes';
import {
  API_ERR_INPUT_TOO_DEEP,
  API_ERR_PREVIEW_FAILED,
  API_ERR_RULES_VERSION_NOT_FOUND,
  AppError,
} from '../../shared/errors/index.ts';
import { audited } from '../audit.ts';
import type { RequestAuditor } from '../audit.ts';
import { capItems, cut, problemItems, problemSchema } from '../problems.ts';
import { MAX_RESOURCE_DEPTH, nestsDeeperThan } from '../../shared/json-depth.ts';
import type { RulesStore } from '../../anonymizer/index.ts';
import { Role, READ_ROLES } from '../types.ts';
import { problemResponses } from '../schemas.ts';

/** Options of the rules routes. */
export interface RulesRoutesOptions {
  readonly rules: RulesStore;
  readonly audit: RequestAuditor;
  /**
   * Most resources one preview may carry.
   * @defaultValue 100
   */
  readonly maxPreviewResources?: number;
}

/** Media types accepted for a rules file body (text/plain is parsed by Fastify already). */
export const YAML_TYPES = ['application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml'] as const;

const versionInfoSchema = {
  type: 'object',
  required: ['version', 'rulesVersion', 'author', 'at', 'bytes'],
  properties: {
    version: { type: 'string', description: 'SHA-256 of the file text' },
    rulesVersion: { type: 'string', description: 'Version of the compiled rules, as stamped into meta.tag' },
    author: { type: 'string' },
    at: { type: 'string' },
    bytes: { type: 'integer' },
    status: { type: 'string', enum: ['proposed', 'approved', 'rejected'] },
    inUse: { type: 'boolean' },
    approvedBy: { type: 'string' },
    approvedAt: { type: 'string' },
    rejectedBy: { type: 'string' },
    rejectedAt: { type: 'string' },
  },
} as const;

const yamlBody = { type: 'string', maxLength: 1_048_576, description: 'The rules file (YAML)' } as const;
const consumes = [...YAML_TYPES, 'text/plain'];
const versionParam = {
  type: 'object',
  required: ['version'],
  properties: { version: { type: 'string', pattern: '^[0-9a-f]{64}$' } },
} as const;
const resourceSchema = {
  type: 'object',
  required: ['resourceType'],
  additionalProperties: true,
  properties: { resourceType: { type: 'string', pattern: '^[A-Z][A-Za-z]{1,63}$' } },
} as const;

const outcomeSchema = {
  type: 'object',
  required: ['ok', 'sourceType'],
  properties: {
    ok: { type: 'boolean' },
    sourceType: { type: 'string' },
    resource: { type: 'object', additionalProperties: true },
    pseudonymousId: { type: 'string' },
    code: { type: 'string' },
    location: { type: 'string' },
  },
} as const;

const reportSchema = {
  type: 'object',
  required: ['rules', 'paths'],
  properties: {
    rules: { type: 'object', additionalProperties: { type: 'integer' } },
    paths: { type: 'object', additionalProperties: { type: 'string' } },
  },
} as const;

/**
 * Deepest nesting a preview sample may have. Real FHIR stays far below (nested questionnaire
 * items, extensions of extensions); a sample thousands of levels deep only exhausts stacks.
 */
export const MAX_PREVIEW_DEPTH = MAX_RESOURCE_DEPTH;

interface PreviewBody {
  resource?: Resource;
  resources?: Resource[];
  rules?: string;
}

/**
 * Registers the /rules routes and the YAML body parser (in this plugin's scope only).
 * @param app - the encapsulated instance.
 * @param opts - rules store and auditor.
 */
export async function rulesRoutes(app: FastifyInstance, opts: RulesRoutesOptions): Promise<void> {
  app.addContentTypeParser([...YAML_TYPES], { parseAs: 'string' }, (_req, body, done) => done(null, body));
  registerReads(app, opts);
  registerReplace(app, opts);
  registerValidate(app, opts);
  registerPreview(app, opts);
  await Promise.resolve();
}

function registerReads(app: FastifyInstance, opts: RulesRoutesOptions): void {
  app.get(
    '/rules',
    {
      config: { access: READ_ROLES },
      schema: {
        tags: ['rules'],
        summary: 'The rules file in use (YAML); ETag is its version',
        produces: ['application/yaml'],
        response: { 200: { type: 'string' }, ...problemResponses([]) },
      },
    },
    async (_request, reply) => {
      const snap = opts.rules.current();
      return reply.header('etag', `"${snap.version}"`).type('application/yaml; charset=utf-8').send(snap.text);
    },
  );
  registerVersionReads(app, opts);
  app.get(
    '/rules/coverage',
    {
      config: { access: READ_ROLES },
      schema: {
        tags: ['rules'],
        summary: 'Which resource types and elements the rules in use cover',
        response: { 200: { type: 'object', additionalProperties: true }, ...problemResponses([]) },
      },
    },
    (_request, reply) =>
      reply.send({ rulesVersion: opts.rules.current().rulesVersion, coverage: opts.rules.coverage() }),
  );
}

/** GET /rules/versions and GET /rules/versions/{version}: the history of accepted versions. */
function registerVersionReads(app: FastifyInstance, opts: RulesRoutesOptions): void {
  app.get(
    '/rules/versions',
    {
      config: { access: READ_ROLES },
      schema: {
        tags: ['rules'],
        summary: 'Every accepted version, newest first, with hash, author and time',
        response: {
          200: {
            type: 'object',
            required: ['current', 'versions'],
            properties: {
              current: { type: 'string' },
              approval: { type: 'string', enum: ['one-step', 'two-step'] },
              versions: { type: 'array', items: versionInfoSchema },
            },
          },
          ...problemResponses([]),
        },
      },
    },
    async () => {
      const current = opts.rules.current().version;
      const versions = (await opts.rules.history()).map((v) => ({ ...v, inUse: v.version === current }));
      // The version in use is marked once: on its newest approved entry.
      const first = versions.findIndex((v) => v.inUse && v.status !== 'proposed' && v.status !== 'rejected');
      return {
        current,
        approval: opts.rules.approval,
        versions: versions.map((v, i) => ({ ...v, inUse: i === first })),
      };
    },
  );
  app.get<{ Params: { version: string } }>(
    '/rules/versions/:version',
    {
      config: { access: READ_ROLES },
      schema: {
        tags: ['rules'],
        summary: 'The text of one accepted version (YAML)',
        params: versionParam,
        produces: ['application/yaml'],
        response: { 200: { type: 'string' }, ...problemResponses([400, 404]) },
      },
    },
    async (request, reply) => {
      const text = await opts.rules.versionText(request.params.version);
      if (text === undefined) {
        throw API_ERR_RULES_VERSION_NOT_FOUND.create(request.params.version);
      }
      return reply.header('etag', `"${request.params.version}"`).type('application/yaml; charset=utf-8').send(text);
    },
  );
}

function registerReplace(app: FastifyInstance, opts: RulesRoutesOptions): void {
  app.put<{ Body: string; Headers: { 'if-match'?: string } }>(
    '/rules',
    {
      config: { access: [Role.compliance] },
      schema: {
        tags: ['rules'],
        summary: 'Replace the rules file (only when valid); 422 lists each problem with line and column',
        description: 'Send If-Match with the ETag of GET /rules to refuse the save (412) if someone saved meanwhile.',
        consumes,
        headers: { type: 'object', properties: { 'if-match': { type: 'string', maxLength: 200 } } },
        body: yamlBody,
        response: {
          200: savedSchema,
          202: {
            ...savedSchema,
            description: 'Proposed (two-step approval): in use once another compliance user approves it',
          },
          ...problemResponses([400, 412, 413, 415, 422]),
        },
      },
    },
    async (request, reply) => {
      const ifMatch = request.headers['if-match']?.replace(/^W\//, '').replace(/"/g, '').trim();
      const result = await save(opts, request, request.body, ifMatch);
      return reply
        .code(result.status === 'proposed' ? 202 : 200)
        .header('etag', `"${result.status === 'proposed' ? opts.rules.current().version : result.version}"`)
        .send(result);
    },
  );
  registerDecisions(app, opts);
}

const savedSchema = {
  ...versionInfoSchema,
  required: [...versionInfoSchema.required, 'changed'],
  properties: { ...versionInfoSchema.properties, changed: { type: 'boolean' } },
} as const;

/** Saves a text: in use at once (one-step) or proposed (two-step); audited either way. */
async function save(
  opts: RulesRoutesOptions,
  request: Parameters<typeof audited>[1],
  text: string,
  ifMatch: string | undefined,
  revertOf?: string,
): Promise<Awaited<ReturnType<RulesStore['replace']>>> {
  const before = opts.rules.current();
  const action =
    revertOf !== undefined ? 'rules.revert' : opts.rules.approval === 'two-step' ? 'rules.propose' : 'rules.replace';
  return audited(
    opts.audit,
    request,
    {
      action,
      rulesVersion: before.rulesVersion,
      target: { previousVersion: before.version, ...(revertOf === undefined ? {} : { revertOf }) },
    },
    () =>
      opts.rules.replace(text, {
        author: request.principal?.subject ?? 'unknown',
        ...(ifMatch ? { ifMatch } : {}),
      }),
    (r) => ({
      rulesVersion: r.rulesVersion,
      target: { version: r.version, changed: r.changed ? 1 : 0 },
      counts: { bytes: r.bytes },
    }),
  );
}

/** Four-eyes decisions and revert: POST /rules/versions/{version}/approve|reject|revert. */
function registerDecisions(app: FastifyInstance, opts: RulesRoutesOptions): void {
  const decide = (name: 'approve' | 'reject', summary: string): void => {
    app.post<{ Params: { version: string } }>(
      `/rules/versions/:version/${name}`,
      {
        config: { access: [Role.compliance] },
        schema: {
          tags: ['rules'],
          summary,
          params: versionParam,
          response: { 200: versionInfoSchema, ...problemResponses([400, 403, 404, 409, 422]) },
        },
      },
      async (request) => {
        const { version } = request.params;
        const by = request.principal?.subject ?? 'unknown';
        return audited(
          opts.audit,
          request,
          { action: `rules.${name}`, rulesVersion: opts.rules.current().rulesVersion, target: { version } },
          () => (name === 'approve' ? opts.rules.approve(version, by) : opts.rules.reject(version, by)),
          (r) => ({ rulesVersion: r.rulesVersion, target: { version: r.version } }),
        );
      },
    );
  };
  decide('approve', 'Put a proposed version in use (by another compliance user than its author)');
  decide('reject', 'Reject a proposed version');
  app.post<{ Params: { version: string } }>(
    '/rules/versions/:version/revert',
    {
      config: { access: [Role.compliance] },
      schema: {
        tags: ['rules'],
        summary: 'Save an earlier version again (proposed in two-step mode)',
        params: versionParam,
        response: { 200: savedSchema, 202: savedSchema, ...problemResponses([400, 403, 404, 412, 422]) },
      },
    },
    async (request, reply) => {
      const { version } = request.params;
      const text = await opts.rules.versionText(version);
      if (text === undefined) {
        throw API_ERR_RULES_VERSION_NOT_FOUND.create(version);
      }
      const result = await save(opts, request, text, undefined, version);
      return reply.code(result.status === 'proposed' ? 202 : 200).send(result);
    },
  );
}

function registerValidate(app: FastifyInstance, opts: RulesRoutesOptions): void {
  app.post<{ Body: string }>(
    '/rules/validate',
    {
      config: { access: [Role.compliance] },
      schema: {
        tags: ['rules'],
        summary: 'Check a rules file without saving it',
        consumes,
        body: yamlBody,
        response: {
          200: {
            type: 'object',
            required: ['valid'],
            properties: {
              valid: { type: 'boolean' },
              version: { type: 'string' },
              rulesVersion: { type: 'string' },
              code: { type: 'string' },
              errors: problemSchema.properties.errors,
            },
          },
          ...problemResponses([400, 413, 415]),
        },
      },
    },
    (request, reply) => {
      const check = opts.rules.check(request.body);
      return reply.send(
        check.ok
          ? { valid: true, version: check.version, rulesVersion: check.rulesVersion }
          : { valid: false, code: check.error.code, errors: capItems(problemItems(check.error)) },
      );
    },
  );
}

function registerPreview(app: FastifyInstance, opts: RulesRoutesOptions): void {
  const max = opts.maxPreviewResources ?? 100;
  app.post<{ Body: PreviewBody }>(
    '/rules/preview',
    {
      config: { access: [Role.compliance] },
      schema: {
        tags: ['rules'],
        summary: 'De-identify sample resources with the rules in use or a draft; writes nothing',
        description:
          'Give `resource` or `resources` (one batch: free text is scrubbed across it). With `rules`, a draft ' +
          'rules file is used instead of the one in use. Previews use their own key and instance id, so their ' +
          'pseudonyms never match the real ones.',
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            resource: resourceSchema,
            resources: { type: 'array', minItems: 1, maxItems: max, items: resourceSchema },
            rules: yamlBody,
          },
          oneOf: [{ required: ['resource'] }, { required: ['resources'] }],
        },
        response: {
          200: {
            type: 'object',
            required: ['rulesVersion', 'outcomes', 'report'],
            properties: {
              rulesVersion: { type: 'string' },
              outcomes: { type: 'array', items: outcomeSchema },
              report: reportSchema,
            },
          },
          ...problemResponses([400, 413, 415, 422]),
        },
      },
    },
    (request, reply) => {
      const { resource, resources, rules } = request.body;
      const batch = resources ?? (resource ? [resource] : []);
      if (nestsDeeperThan(batch, MAX_PREVIEW_DEPTH + 1)) {
        throw API_ERR_INPUT_TOO_DEEP.create('preview sample', MAX_PREVIEW_DEPTH);
      }
      let result: ReturnType<RulesStore['preview']>;
      try {
        result = opts.rules.preview(batch, rules);
      } catch (err) {
        // Coded refusals (invalid draft rules) keep their answer; anything the engine did not
        // expect is a 422 about the sample, never a 500 (issue 10).
        if (err instanceof AppError) {
          throw err;
        }
        throw API_ERR_PREVIEW_FAILED.createWith({}, [err instanceof Error ? err.name : 'error'], { cause: err });
      }
      const outcomes = result.outcomes.map((o) =>
        o.ok || o.location === undefined ? o : { ...o, location: cut(o.location, 300) },
      );
      return reply.send({ ...result, outcomes });
    },
  );
}
