import type { FastifyReply, FastifyRequest } from 'fastify';
import { REFRESH_TOKEN_USER } from '../../auth/credentials.js';
import { isDataPlaneRole } from '../../auth/identities.js';
import { ManagementError } from '../../errors/management.js';
import { registryNameParams } from '../../management/schemas.js';
import type { DataPlaneRoleName, RoleName, SignInRecord, SignInResult } from '../../store/types.js';
import type { ManagementContext } from './context.js';

const ALL_ROLES = ['Owner', 'Contributor', 'Reader', 'AcrPull', 'AcrPush', 'AcrDelete'];
const RESULTS: SignInResult[] = ['success', 'failure', 'rateLimited', 'disabled'];

const signInQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    since: { type: 'string', description: 'ISO 8601 start; default the last 24 hours' },
    result: { type: 'string', enum: RESULTS },
    top: {
      type: 'string',
      pattern: '^[0-9]{1,4}$',
      description: 'at most this many rows (default 100, max 1000)',
    },
  },
} as const;

type SignInQuery = { since?: string; result?: SignInResult; top?: string };

/** Role assignment listing and removal, the sign-in log, and short-lived login tokens for the CLI. */
export function registerSignInRoutes(ctx: ManagementContext): void {
  const { identities, route } = ctx;

  route({
    method: 'GET',
    url: '/api/registries/:name/roleAssignments',
    summary: 'List role assignments that cover the registry (its own and those on all registries)',
    tag: 'Identities',
    params: registryNameParams,
    responses: { 200: { description: 'Assignments' } },
    handler: async (request: FastifyRequest<{ Params: { name: string } }>) => {
      const registry = await ctx.registryFor(request.principal, request.params.name, 'Owner');
      return { value: await identities.roleAssignmentsOn(registry) };
    },
  });

  route({
    method: 'DELETE',
    url: '/api/registries/:name/roleAssignments/:principal',
    summary: "Remove a principal's role on the registry (?role=, required)",
    tag: 'Identities',
    params: {
      type: 'object',
      required: ['name', 'principal'],
      properties: { ...registryNameParams.properties, principal: { type: 'string' } },
    },
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: { role: { type: 'string', enum: ALL_ROLES } },
    },
    responses: { 204: { description: 'Removed' } },
    handler: async (
      request: FastifyRequest<{
        Params: { name: string; principal: string };
        Querystring: { role?: RoleName | DataPlaneRoleName };
      }>,
      reply: FastifyReply,
    ) => {
      const registry = await ctx.registryFor(request.principal, request.params.name, 'Owner');
      const role = request.query.role;
      if (!role)
        throw new ManagementError(
          'InvalidParameter',
          `Name the role to remove: ?role=${ALL_ROLES.join('|')}.`,
          {
            target: 'role',
          },
        );
      const self =
        request.params.principal === request.principal.id ||
        request.params.principal === request.principal.name;
      if (self && !isDataPlaneRole(role))
        throw new ManagementError('Conflict', 'You cannot change your own role.');
      await identities.removeRole(request.params.principal, registry, role);
      return reply.code(204).send();
    },
  });

  route({
    method: 'GET',
    url: '/api/registries/:name/signIns',
    summary: 'Data-plane sign-ins to the registry, aggregated per minute, identity, address and result',
    tag: 'Audit',
    params: registryNameParams,
    querystring: signInQuery,
    responses: { 200: { description: 'Sign-ins' } },
    handler: async (request: FastifyRequest<{ Params: { name: string }; Querystring: SignInQuery }>) => {
      const registry = await ctx.registryFor(request.principal, request.params.name, 'Owner');
      return signInsView(await ctx.signIns.query({ registry, ...filterOf(request.query) }));
    },
  });

  route({
    method: 'GET',
    url: '/api/signIns',
    summary: 'Every sign-in, the management API (registry "*") included (Owner on all registries)',
    tag: 'Audit',
    querystring: signInQuery,
    responses: { 200: { description: 'Sign-ins' } },
    handler: async (request: FastifyRequest<{ Querystring: SignInQuery }>) => {
      identities.authorize(request.principal, '*', 'Owner');
      return signInsView(await ctx.signIns.query(filterOf(request.query)));
    },
  });

  route({
    method: 'POST',
    url: '/api/registries/:name/loginToken',
    summary: 'A short-lived refresh token for `docker login` (as `az acr login --expose-token`)',
    tag: 'Identities',
    params: registryNameParams,
    responses: { 200: { description: 'The token, its user name and login server' } },
    handler: async (request: FastifyRequest<{ Params: { name: string } }>, reply: FastifyReply) => {
      const principal = request.principal;
      const name = request.params.name.toLowerCase();
      const roles = [...principal.roles, ...principal.dataPlaneRoles];
      if (!roles.some((r) => r.registry === '*' || r.registry === name))
        identities.authorize(principal, name, 'Reader');
      const resource = await ctx.registries.get(name);
      const loginServer = resource.properties.loginServer;
      const ttl = Math.min(ctx.tokenService.options.refreshTtlSeconds, 3 * 60 * 60);
      const refreshToken = await ctx.tokenService.issueRefresh(
        loginServer,
        { kind: principal.kind, id: principal.id, name: principal.name },
        ttl,
      );
      // The default registry answers on the listeners' own address, others by their login server.
      const endpoint = ctx.dataEndpoints[0] ? new URL(ctx.dataEndpoints[0]).host : loginServer;
      return reply.header('Cache-Control', 'no-store').send({
        loginServer,
        server: resource.name === ctx.defaultRegistry ? endpoint : loginServer,
        username: REFRESH_TOKEN_USER,
        accessToken: refreshToken,
        expiresIn: ttl,
      });
    },
  });
}

function filterOf(query: SignInQuery): { since: Date; result?: SignInResult; limit: number } {
  const since =
    query.since === undefined ? new Date(Date.now() - 24 * 60 * 60 * 1000) : new Date(query.since);
  if (Number.isNaN(since.getTime()))
    throw new ManagementError('InvalidParameter', 'since must be an ISO 8601 date-time.', {
      target: 'since',
    });
  return {
    since,
    ...(query.result ? { result: query.result } : {}),
    limit: Math.min(1000, Math.max(1, Number(query.top ?? 100))),
  };
}

function signInsView(rows: SignInRecord[]) {
  return {
    value: rows.map((r) => ({
      minute: r.minute.toISOString(),
      lastSeen: r.lastSeen.toISOString(),
      registry: r.registry,
      identity: r.identity,
      clientIp: r.clientIp,
      listener: r.listener,
      result: r.result,
      count: r.count,
    })),
  };
}
