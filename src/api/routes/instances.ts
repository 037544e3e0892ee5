/**
 * The instance registry over HTTP: GET|POST /instances, GET|PATCH|DELETE /instances/{id}.
 * The registry (src/instances) owns the record shape, validates every change and persists
 * it to its YAML file; its coded errors (invalid field, duplicate id, unknown id) become the
 * answer through the catalogue status. Reads are open to every role, changes to operators,
 * and every change is audited (ids only).
 */
import type { FastifyInstance } from 'fastify';
import { API_ERR_INSTANCE_NOT_FOUND } from '../../shared/errors/index.ts';
import { audited } from '../audit.ts';
import type { RequestAuditor } from '../audit.ts';
import type { RulesStore } from '../../anonymizer/index.ts';
import type { InstanceRegistryLike } from '../types.ts';
import { Role, READ_ROLES } from '../types.ts';
import { instanceIdSchema, problemResponses } from '../schemas.ts';

/** Options of the instance routes. */
export interface InstanceRoutesOptions {
  readonly instances: InstanceRegistryLike;
  readonly rules: RulesStore;
  readonly audit: RequestAuditor;
  /** JSON schema of one instance record as the registry returns it. */
  readonly recordSchema?: object;
  /** JSON schema of the POST body (a full record) and of the PATCH body (some fields). */
  readonly createSchema?: object;
  readonly patchSchema?: object;
}

const looseRecord = {
  type: 'object',
  required: ['id'],
  additionalProperties: true,
  properties: { id: instanceIdSchema },
} as const;
const looseBody = { type: 'object', additionalProperties: true } as const;
const idParams = { type: 'object', required: ['id'], properties: { id: instanceIdSchema } } as const;

type Body = Record<string, unknown>;

/**
 * Registers the /instances routes.
 * @param app - the encapsulated instance.
 * @param opts - registry, rules store, auditor and optional record schemas.
 */
export async function instanceRoutes(app: FastifyInstance, opts: InstanceRoutesOptions): Promise<void> {
  // PATCH bodies are JSON merge patches (RFC 7396); plain application/json is accepted too.
  app.addContentTypeParser(
    'application/merge-patch+json',
    { parseAs: 'string' },
    app.getDefaultJsonParser('error', 'error'),
  );
  const record = opts.recordSchema ?? looseRecord;
  registerReads(app, opts, record);
  registerWrites(app, opts, record);
  await Promise.resolve();
}

/** The audit record of a change to one instance. */
function auditOf(opts: InstanceRoutesOptions, action: string, id: string | undefined): Parameters<typeof audited>[2] {
  return {
    action,
    rulesVersion: opts.rules.current().rulesVersion,
    target: { instanceId: id },
  };
}

/** GET /instances and GET /instances/{id}: every role. */
function registerReads(app: FastifyInstance, opts: InstanceRoutesOptions, record: object): void {
  const tags = ['instances'];
  app.get(
    '/instances',
    {
      config: { access: READ_ROLES },
      schema: {
        tags,
        summary: 'Registered local instances',
        response: {
          200: { type: 'object', required: ['instances'], properties: { instances: { type: 'array', items: record } } },
          ...problemResponses([]),
        },
      },
    },
    async () => ({ instances: await opts.instances.list() }),
  );
  app.get<{ Params: { id: string } }>(
    '/instances/:id',
    {
      config: { access: READ_ROLES },
      schema: {
        tags,
        summary: 'One instance',
        params: idParams,
        response: { 200: record, ...problemResponses([400, 404]) },
      },
    },
    async (request) => {
      const found = await opts.instances.get(request.params.id);
      if (!found) {
        throw API_ERR_INSTANCE_NOT_FOUND.create(request.params.id);
      }
      return found;
    },
  );
}

/** POST, PATCH and DELETE: operators only, each audited. */
function registerWrites(app: FastifyInstance, opts: InstanceRoutesOptions, record: object): void {
  const tags = ['instances'];
  app.post<{ Body: Body }>(
    '/instances',
    {
      config: { access: [Role.operator] },
      schema: {
        tags,
        summary: 'Register an instance',
        body: opts.createSchema ?? looseBody,
        response: { 201: record, ...problemResponses([400, 409, 413, 415, 422]) },
      },
    },
    async (request, reply) => {
      const id = typeof request.body.id === 'string' ? request.body.id : undefined;
      const created = await audited(opts.audit, request, auditOf(opts, 'instance.add', id), () =>
        opts.instances.add(request.body),
      );
      return reply
        .code(201)
        .header('location', `/instances/${encodeURIComponent(created.id)}`)
        .send(created);
    },
  );
  app.patch<{ Params: { id: string }; Body: Body }>(
    '/instances/:id',
    {
      config: { access: [Role.operator] },
      schema: {
        tags,
        summary: 'Change some fields of an instance (JSON merge patch: null resets a field to its default)',
        consumes: ['application/merge-patch+json', 'application/json'],
        params: idParams,
        body: opts.patchSchema ?? looseBody,
        response: { 200: record, ...problemResponses([400, 404, 413, 415, 422]) },
      },
    },
    async (request) => {
      const { id } = request.params;
      return audited(opts.audit, request, auditOf(opts, 'instance.update', id), () =>
        opts.instances.update(id, request.body),
      );
    },
  );
  app.delete<{ Params: { id: string } }>(
    '/instances/:id',
    {
      config: { access: [Role.operator] },
      schema: {
        tags,
        summary: 'Remove an instance from the registry (its data on the global server stays)',
        params: idParams,
        response: { 204: { type: 'null' }, ...problemResponses([400, 404]) },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      await audited(opts.audit, request, auditOf(opts, 'instance.remove', id), () => opts.instances.remove(id));
      return reply.code(204).send();
    },
  );
}
