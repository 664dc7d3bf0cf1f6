import type { FastifyReply, FastifyRequest } from 'fastify';
import { ManagementError } from '../../errors/management.js';
import {
  generateCredentialsBodySchema,
  registryNameParams,
  scopeMapBodySchema,
  tokenBodySchema,
  tokenPasswordParams,
} from '../../management/schemas.js';
import { toScopeMapResource, toTokenResource } from '../../management/tokens.js';
import type { ManagementContext } from './context.js';

const childParams = (child: string) => ({
  type: 'object',
  required: ['name', child],
  properties: { ...registryNameParams.properties, [child]: { type: 'string', maxLength: 100 } },
});

/** The last segment of an ARM id (`/registries/r/scopeMaps/m` → `m`), or the value itself. */
function lastSegment(value: string): string {
  return value.slice(value.lastIndexOf('/') + 1);
}

/** Scope maps, repository-scoped tokens and their passwords (ACR's shapes and verbs). */
export function registerTokenRoutes(ctx: ManagementContext): void {
  const { route, tokens } = ctx;
  const modeOf = (request: FastifyRequest) => (request.method === 'PATCH' ? 'update' : 'upsert');

  route({
    method: 'GET',
    url: '/api/registries/:name/scopeMaps',
    summary: 'List scope maps (system and user-defined)',
    tag: 'Tokens',
    params: registryNameParams,
    responses: { 200: { description: 'Scope maps' } },
    handler: async (request: FastifyRequest<{ Params: { name: string } }>) => {
      const registry = await ctx.registryFor(request.principal, request.params.name, 'Reader');
      return { value: (await tokens.listScopeMaps(registry)).map((m) => toScopeMapResource(registry, m)) };
    },
  });

  route({
    method: 'GET',
    url: '/api/registries/:name/scopeMaps/:scopeMapName',
    summary: 'Show a scope map',
    tag: 'Tokens',
    params: childParams('scopeMapName'),
    responses: { 200: { description: 'Scope map' } },
    handler: async (request: FastifyRequest<{ Params: { name: string; scopeMapName: string } }>) => {
      const registry = await ctx.registryFor(request.principal, request.params.name, 'Reader');
      return toScopeMapResource(registry, await tokens.getScopeMap(registry, request.params.scopeMapName));
    },
  });

  for (const method of ['PUT', 'PATCH'] as const) {
    route({
      method,
      url: '/api/registries/:name/scopeMaps/:scopeMapName',
      summary: method === 'PUT' ? 'Create or replace a scope map' : 'Update a scope map',
      tag: 'Tokens',
      params: childParams('scopeMapName'),
      body: scopeMapBodySchema,
      responses: { 200: { description: 'Updated' }, 201: { description: 'Created' } },
      handler: async (
        request: FastifyRequest<{
          Params: { name: string; scopeMapName: string };
          Body: { properties?: { description?: string; actions?: string[] } };
        }>,
        reply: FastifyReply,
      ) => {
        const registry = await ctx.registryFor(request.principal, request.params.name, 'Owner');
        const props = request.body.properties ?? {};
        const { map, created } = await tokens.putScopeMap(
          registry,
          request.params.scopeMapName,
          {
            ...(props.description !== undefined ? { description: props.description } : {}),
            ...(props.actions !== undefined ? { actions: props.actions } : {}),
          },
          modeOf(request),
        );
        return reply.code(created ? 201 : 200).send(toScopeMapResource(registry, map));
      },
    });
  }

  route({
    method: 'DELETE',
    url: '/api/registries/:name/scopeMaps/:scopeMapName',
    summary: 'Delete a scope map no token uses',
    tag: 'Tokens',
    params: childParams('scopeMapName'),
    responses: { 204: { description: 'Deleted' } },
    handler: async (
      request: FastifyRequest<{ Params: { name: string; scopeMapName: string } }>,
      reply: FastifyReply,
    ) => {
      const registry = await ctx.registryFor(request.principal, request.params.name, 'Owner');
      await tokens.deleteScopeMap(registry, request.params.scopeMapName);
      return reply.code(204).send();
    },
  });

  route({
    method: 'GET',
    url: '/api/registries/:name/tokens',
    summary: 'List tokens',
    tag: 'Tokens',
    params: registryNameParams,
    responses: { 200: { description: 'Tokens' } },
    handler: async (request: FastifyRequest<{ Params: { name: string } }>) => {
      const registry = await ctx.registryFor(request.principal, request.params.name, 'Reader');
      return { value: (await tokens.listTokens(registry)).map(toTokenResource) };
    },
  });

  route({
    method: 'GET',
    url: '/api/registries/:name/tokens/:tokenName',
    summary: 'Show a token (never its passwords)',
    tag: 'Tokens',
    params: childParams('tokenName'),
    responses: { 200: { description: 'Token' } },
    handler: async (request: FastifyRequest<{ Params: { name: string; tokenName: string } }>) => {
      const registry = await ctx.registryFor(request.principal, request.params.name, 'Reader');
      return toTokenResource(await tokens.getToken(registry, request.params.tokenName));
    },
  });

  for (const method of ['PUT', 'PATCH'] as const) {
    route({
      method,
      url: '/api/registries/:name/tokens/:tokenName',
      summary:
        method === 'PUT'
          ? 'Create or replace a token'
          : 'Update a token (scope map, status, allowed address ranges)',
      tag: 'Tokens',
      params: childParams('tokenName'),
      body: tokenBodySchema,
      responses: { 200: { description: 'Updated' }, 201: { description: 'Created' } },
      handler: async (
        request: FastifyRequest<{
          Params: { name: string; tokenName: string };
          Body: {
            properties?: { scopeMapId?: string; status?: 'enabled' | 'disabled'; allowedIpRanges?: string[] };
          };
        }>,
        reply: FastifyReply,
      ) => {
        const registry = await ctx.registryFor(request.principal, request.params.name, 'Owner');
        const props = request.body.properties ?? {};
        const { token, created } = await tokens.putToken(
          registry,
          request.params.tokenName,
          {
            ...(props.scopeMapId !== undefined ? { scopeMap: lastSegment(props.scopeMapId) } : {}),
            ...(props.status !== undefined ? { status: props.status } : {}),
            ...(props.allowedIpRanges !== undefined ? { allowedIpRanges: props.allowedIpRanges } : {}),
          },
          modeOf(request),
        );
        return reply.code(created ? 201 : 200).send(toTokenResource(token));
      },
    });
  }

  route({
    method: 'DELETE',
    url: '/api/registries/:name/tokens/:tokenName',
    summary: 'Delete a token',
    tag: 'Tokens',
    params: childParams('tokenName'),
    responses: { 204: { description: 'Deleted' } },
    handler: async (
      request: FastifyRequest<{ Params: { name: string; tokenName: string } }>,
      reply: FastifyReply,
    ) => {
      const registry = await ctx.registryFor(request.principal, request.params.name, 'Owner');
      await tokens.deleteToken(registry, request.params.tokenName);
      return reply.code(204).send();
    },
  });

  route({
    method: 'DELETE',
    url: '/api/registries/:name/tokens/:tokenName/passwords/:password',
    summary: "Delete one of a token's passwords",
    tag: 'Tokens',
    params: tokenPasswordParams,
    responses: { 200: { description: 'The token' } },
    handler: async (
      request: FastifyRequest<{
        Params: { name: string; tokenName: string; password: 'password1' | 'password2' };
      }>,
    ) => {
      const registry = await ctx.registryFor(request.principal, request.params.name, 'Owner');
      return toTokenResource(
        await tokens.deletePassword(registry, request.params.tokenName, request.params.password),
      );
    },
  });

  route({
    method: 'POST',
    url: '/api/registries/:name/generateCredentials',
    summary: "Generate a token's password(s): shown once, stored only as slow hashes",
    tag: 'Tokens',
    params: registryNameParams,
    body: generateCredentialsBodySchema,
    responses: { 200: { description: 'The new passwords' } },
    handler: async (
      request: FastifyRequest<{
        Params: { name: string };
        Body: { tokenId: string; name?: 'password1' | 'password2'; expiry?: string };
      }>,
      reply: FastifyReply,
    ) => {
      const registry = await ctx.registryFor(request.principal, request.params.name, 'Owner');
      const expiry = request.body.expiry === undefined ? undefined : new Date(request.body.expiry);
      if (expiry && Number.isNaN(expiry.getTime()))
        throw new ManagementError('InvalidParameter', 'expiry must be an ISO 8601 date-time.', {
          target: 'expiry',
        });
      const result = await tokens.generateCredentials(
        registry,
        lastSegment(request.body.tokenId),
        request.body.name,
        expiry,
      );
      return reply.header('Cache-Control', 'no-store').send(result);
    },
  });
}
