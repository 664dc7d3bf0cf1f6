import type { FastifyReply, FastifyRequest } from 'fastify';
import { ipSetBodySchema, ipSetNameParams } from '../../management/schemas.js';
import { sendEtag, writeCondition, type ManagementContext } from './context.js';

type SetRequest = FastifyRequest<{ Params: { name: string } }>;
type PutRequest = FastifyRequest<{
  Params: { name: string };
  Body: { ranges: string[]; description?: string };
}>;

/**
 * Named IP sets, resources of their own. Any signed-in caller may read them (registry owners name
 * them in rules); changing one changes every registry that names it, so writes need a role on `*`.
 */
export function registerIpSetRoutes(ctx: ManagementContext): void {
  const { ipSets, identities, route } = ctx;

  route({
    method: 'GET',
    url: '/api/ipSets',
    summary: 'List the named IP sets',
    tag: 'IP sets',
    responses: { 200: { description: 'IP sets' } },
    handler: async () => ({ value: await ipSets.list() }),
  });

  route({
    method: 'GET',
    url: '/api/ipSets/:name',
    summary: 'Show an IP set',
    tag: 'IP sets',
    params: ipSetNameParams,
    responses: { 200: { description: 'The IP set' } },
    handler: async (request: SetRequest, reply: FastifyReply) => {
      const { resource, etag } = await ipSets.get(request.params.name);
      sendEtag(reply, etag);
      return reply.send(resource);
    },
  });

  route({
    method: 'PUT',
    url: '/api/ipSets/:name',
    summary: 'Create or replace an IP set; every registry whose rules name it changes at once',
    tag: 'IP sets',
    params: ipSetNameParams,
    body: ipSetBodySchema,
    responses: {
      200: { description: 'Replaced' },
      201: { description: 'Created' },
      412: { description: 'If-Match did not match the ETag (PreconditionFailed)' },
    },
    handler: async (request: PutRequest, reply: FastifyReply) => {
      identities.authorize(request.principal, '*', 'Contributor');
      const result = await ipSets.put(request.params.name, request.body, writeCondition(request));
      sendEtag(reply, result.etag);
      return reply.code(result.created ? 201 : 200).send(result.resource);
    },
  });

  route({
    method: 'DELETE',
    url: '/api/ipSets/:name',
    summary: 'Delete an IP set that no registry names any more',
    tag: 'IP sets',
    params: ipSetNameParams,
    responses: { 204: { description: 'Deleted' }, 409: { description: 'Still named by a registry' } },
    handler: async (request: SetRequest, reply: FastifyReply) => {
      identities.authorize(request.principal, '*', 'Contributor');
      await ipSets.delete(request.params.name);
      return reply.code(204).send();
    },
  });
}
