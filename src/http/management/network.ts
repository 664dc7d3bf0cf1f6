import type { FastifyReply, FastifyRequest } from 'fastify';
import { ManagementError } from '../../errors/management.js';
import type { PrivateEndpointBody } from '../../management/private-endpoints.js';
import {
  parseClientAddress,
  type AccessDecision,
  type NetworkAction,
  type RuleInfo,
} from '../../network/index.js';
import {
  checkNetworkAccessBodySchema,
  privateEndpointBodySchema,
  registryNameParams,
} from '../../management/schemas.js';
import type { ManagementContext } from './context.js';

type PeRequest = FastifyRequest<{ Params: { name: string; connection: string } }>;

const peParams = {
  type: 'object',
  required: ['name', 'connection'],
  properties: { name: { type: 'string' }, connection: { type: 'string' } },
} as const;

/** The what-if answer: the decision, and which rule (actions, expiry), mode or identity decided it. */
function explain(
  decision: AccessDecision & { ip: string; expiredRules: RuleInfo[] },
  action: NetworkAction | undefined,
) {
  const expired = decision.expiredRules.map((r) => ({
    value: r.value,
    expiresAt: r.expiresAt,
    ...(r.ipSet ? { ipSet: r.ipSet } : {}),
  }));
  const common = {
    ip: decision.ip,
    ...(action ? { action } : {}),
    ...(expired.length > 0 ? { expiredRules: expired } : {}),
  };
  if (!decision.allowed) {
    return {
      ...common,
      allowed: false,
      reason: decision.reason,
      message: decision.message,
      ...(decision.rule ? { matchedRule: decision.rule, matchedRuleActions: 'pull' } : {}),
      ...(decision.identity ? { identity: decision.identity } : {}),
    };
  }
  return {
    ...common,
    allowed: true,
    via: decision.via,
    ...(decision.rule ? { matchedRule: decision.rule } : {}),
    ...(decision.ruleActions ? { matchedRuleActions: decision.ruleActions } : {}),
    ...(decision.ruleExpiresAt ? { matchedRuleExpiresAt: decision.ruleExpiresAt } : {}),
    ...(decision.ruleIpSet ? { matchedIpSet: decision.ruleIpSet } : {}),
    ...(decision.identityNetwork ? { identityNetwork: decision.identityNetwork } : {}),
    ...(decision.wouldDeny
      ? {
          reportOnly: true,
          wouldDeny: {
            reason: decision.wouldDeny.reason,
            message: decision.wouldDeny.message,
            ...(decision.wouldDeny.rule ? { matchedRule: decision.wouldDeny.rule } : {}),
          },
        }
      : {}),
  };
}

/** checkNetworkAccess, the denial log and private endpoint connections. */
export function registerNetworkRoutes(ctx: ManagementContext): void {
  const { access, audit, privateEndpoints, route, registryFor } = ctx;

  route({
    method: 'POST',
    url: '/api/registries/:name/checkNetworkAccess',
    summary:
      'How a request from an address would be decided for an action (pull/push): the rule that matched, its actions and expiry, expired rules, report-only',
    tag: 'Network',
    params: registryNameParams,
    body: checkNetworkAccessBodySchema,
    responses: { 200: { description: 'The decision' } },
    handler: async (
      request: FastifyRequest<{
        Params: { name: string };
        Body: { ip: string; action?: NetworkAction; apiKey?: string };
      }>,
    ) => {
      const registry = await registryFor(request.principal, request.params.name, 'Reader');
      const identity = request.body.apiKey
        ? await ctx.identities.networkIdentity(request.body.apiKey)
        : undefined;
      const decision = await access.check(registry, request.body.ip, request.body.action ?? 'pull', identity);
      if (!decision) {
        throw new ManagementError(
          'InvalidParameter',
          `'${request.body.ip.slice(0, 100)}' is not an IP address.`,
          { target: 'ip' },
        );
      }
      return explain(decision, request.body.action);
    },
  });

  route({
    method: 'GET',
    url: '/api/registries/:name/networkDenials',
    summary:
      'Refused data-plane requests counted per address, reason and minute (newest first), totals per address, and a per-minute time series',
    tag: 'Network',
    params: registryNameParams,
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: {
        since: { type: 'string', format: 'date-time' },
        ip: { type: 'string' },
        limit: { type: 'string', pattern: '^[0-9]{1,5}$' },
      },
    },
    responses: { 200: { description: 'Denials' } },
    handler: async (
      request: FastifyRequest<{
        Params: { name: string };
        Querystring: { since?: string; ip?: string; limit?: string };
      }>,
    ) => {
      const registry = await registryFor(request.principal, request.params.name, 'Reader');
      // The log stores canonical addresses, so `2001:DB8::1` or `::ffff:10.0.0.1` must be read the same way.
      const clientIp = request.query.ip ? parseClientAddress(request.query.ip)?.text : undefined;
      if (request.query.ip && !clientIp) {
        throw new ManagementError(
          'InvalidParameter',
          `'${request.query.ip.slice(0, 100)}' is not an IP address.`,
          {
            target: 'ip',
          },
        );
      }
      await access.flush();
      const since = request.query.since ? new Date(request.query.since) : undefined;
      const result = await audit.queryDenials(registry, {
        ...(since ? { since } : {}),
        ...(clientIp ? { clientIp } : {}),
        limit: Math.min(Number(request.query.limit ?? 100), 10_000),
        seriesSince: since ?? new Date(Date.now() - 86_400_000),
      });
      return {
        // One entry per address, reason, entry point, mode and minute, newest first: `time` is its
        // latest denial, `method`/`path` its first sample, `count` how many it stands for.
        value: result.buckets.map((b) => ({
          time: b.lastSeen.toISOString(),
          firstSeen: b.firstSeen.toISOString(),
          minute: b.minute.toISOString(),
          clientIp: b.clientIp,
          method: b.samples[0]?.method ?? '',
          path: b.samples[0]?.path ?? '',
          reason: b.reason,
          entry: b.entry,
          count: b.count,
          samples: b.samples,
          ...(b.reportOnly ? { reportOnly: true } : {}),
        })),
        countsByIp: result.countsByIp.map((c) => ({
          clientIp: c.clientIp,
          count: c.count,
          lastSeen: c.lastSeen.toISOString(),
        })),
        timeSeries: result.timeSeries.map((p) => ({ time: p.minute.toISOString(), counts: p.counts })),
      };
    },
  });

  route({
    method: 'GET',
    url: '/api/registries/:name/privateEndpointConnections',
    summary: 'List private endpoint connections',
    tag: 'Private endpoints',
    params: registryNameParams,
    responses: { 200: { description: 'Connections' } },
    handler: async (request: FastifyRequest<{ Params: { name: string } }>) => {
      await registryFor(request.principal, request.params.name, 'Reader');
      return { value: await privateEndpoints.list(request.params.name) };
    },
  });

  route({
    method: 'GET',
    url: '/api/registries/:name/privateEndpointConnections/:connection',
    summary: 'Show a private endpoint connection',
    tag: 'Private endpoints',
    params: peParams,
    responses: { 200: { description: 'Connection' } },
    handler: async (request: PeRequest) => {
      await registryFor(request.principal, request.params.name, 'Reader');
      return privateEndpoints.get(request.params.name, request.params.connection);
    },
  });

  route({
    method: 'PUT',
    url: '/api/registries/:name/privateEndpointConnections/:connection',
    summary: 'Create a private endpoint connection (opens its listener), or approve / reject it',
    tag: 'Private endpoints',
    params: peParams,
    body: privateEndpointBodySchema,
    responses: { 200: { description: 'Updated' }, 201: { description: 'Created' } },
    handler: async (
      request: FastifyRequest<{ Params: { name: string; connection: string }; Body: PrivateEndpointBody }>,
      reply: FastifyReply,
    ) => {
      await registryFor(request.principal, request.params.name, 'Contributor');
      const result = await privateEndpoints.put(request.params.name, request.params.connection, request.body);
      return reply.code(result.created ? 201 : 200).send(result.resource);
    },
  });

  route({
    method: 'DELETE',
    url: '/api/registries/:name/privateEndpointConnections/:connection',
    summary: 'Delete a private endpoint connection (closes its listener)',
    tag: 'Private endpoints',
    params: peParams,
    responses: { 204: { description: 'Deleted' } },
    handler: async (request: PeRequest, reply: FastifyReply) => {
      await registryFor(request.principal, request.params.name, 'Contributor');
      await privateEndpoints.delete(request.params.name, request.params.connection);
      return reply.code(204).send();
    },
  });
}
