import type { FastifyReply, FastifyRequest } from 'fastify';
import { ManagementError } from '../../errors/management.js';
import { isDataPlaneRole } from '../../auth/identities.js';
import { canonicalIpRanges } from '../../management/ip-ranges.js';
import type { DataPlaneRoleName, RoleName } from '../../store/types.js';
import { apiKeyBodySchema, registryNameParams, roleAssignmentBodySchema } from '../../management/schemas.js';
import { clientAddressOf } from '../guard.js';
import type { ManagementContext } from './context.js';

/** whoami, API keys and role assignments. */
export function registerIdentityRoutes(ctx: ManagementContext): void {
  const { identities, route } = ctx;

  route({
    method: 'GET',
    url: '/api/whoami',
    summary: 'The authenticated caller, its roles and the address Berth sees for it',
    tag: 'Identities',
    responses: { 200: { description: 'Caller' } },
    handler: async (request) => ({
      name: request.principal.name,
      kind: request.principal.kind,
      roles: request.principal.roles.map((r) => ({ registry: r.registry, role: r.role })),
      clientIp: clientAddressOf(request, ctx.trustedProxies).text,
    }),
  });

  route({
    method: 'POST',
    url: '/api/apiKeys',
    summary: 'Create an API key with a role on one registry or all (the key is shown once)',
    tag: 'Identities',
    body: apiKeyBodySchema,
    responses: { 201: { description: 'Created, with the key' } },
    handler: async (
      request: FastifyRequest<{
        Body: {
          name: string;
          role: RoleName;
          registry?: string;
          trustedService?: boolean;
          allowedIpRanges?: string[];
        };
      }>,
      reply: FastifyReply,
    ) => {
      const registry = request.body.registry ?? '*';
      // A trusted-service key bypasses the network rules of every registry that allows trusted
      // services, not just its own, so minting one needs Owner on all registries.
      if (request.body.trustedService) identities.authorize(request.principal, '*', 'Owner');
      const scope = registry === '*' ? '*' : await ctx.registryFor(request.principal, registry, 'Owner');
      if (scope === '*') identities.authorize(request.principal, '*', 'Owner');
      const ranges = request.body.allowedIpRanges && canonicalIpRanges(request.body.allowedIpRanges);
      const { id, key } = await identities.createApiKey(
        request.body.name,
        request.body.role,
        scope,
        request.body.trustedService ?? false,
        ranges,
      );
      return reply.code(201).send({
        id,
        name: request.body.name,
        role: request.body.role,
        registry: scope,
        trustedService: request.body.trustedService ?? false,
        ...(ranges ? { allowedIpRanges: ranges } : {}),
        key,
      });
    },
  });

  route({
    method: 'GET',
    url: '/api/apiKeys',
    summary: 'List API keys (never their secrets)',
    tag: 'Identities',
    responses: { 200: { description: 'Keys' } },
    handler: async (request) => {
      identities.authorize(request.principal, '*', 'Owner');
      const keys = await identities.listApiKeys();
      return {
        value: keys.map((k) => ({
          id: k.id,
          name: k.name,
          createdAt: k.createdAt.toISOString(),
          roles: k.roles.map((r) => ({ registry: r.registry, role: r.role })),
          ...(k.allowedNetworks ? { allowedIpRanges: k.allowedNetworks } : {}),
        })),
      };
    },
  });

  route({
    method: 'DELETE',
    url: '/api/apiKeys/:id',
    summary: 'Delete an API key',
    tag: 'Identities',
    params: { type: 'object', required: ['id'], properties: { id: { type: 'string' } } },
    responses: { 204: { description: 'Deleted' } },
    handler: async (request: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) => {
      identities.authorize(request.principal, '*', 'Owner');
      await identities.deleteApiKey(request.params.id);
      return reply.code(204).send();
    },
  });

  route({
    method: 'PUT',
    url: '/api/registries/:name/roleAssignments/:principal',
    summary: 'Give a user or API key a role on the registry',
    tag: 'Identities',
    params: {
      ...registryNameParams,
      required: ['name', 'principal'],
      properties: { ...registryNameParams.properties, principal: { type: 'string' } },
    },
    body: roleAssignmentBodySchema,
    responses: { 200: { description: 'Assigned' } },
    handler: async (
      request: FastifyRequest<{
        Params: { name: string; principal: string };
        Body: { role: RoleName | DataPlaneRoleName };
      }>,
    ) => {
      const registry = await ctx.registryFor(request.principal, request.params.name, 'Owner');
      if (
        !isDataPlaneRole(request.body.role) &&
        (request.params.principal === request.principal.id ||
          request.params.principal === request.principal.name)
      ) {
        throw new ManagementError('Conflict', 'You cannot change your own role.');
      }
      const assignment = await identities.assignRole(request.params.principal, registry, request.body.role);
      return { principalId: assignment.principalId, registry: assignment.registry, role: assignment.role };
    },
  });
}
