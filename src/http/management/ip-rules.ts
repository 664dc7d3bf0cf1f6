import type { FastifyReply, FastifyRequest } from 'fastify';
import type { IpRuleInput } from '../../management/ip-rules.js';
import { ipSetValue } from '../../management/ip-rule-model.js';
import { ipRulesChangeBodySchema, registryNameParams } from '../../management/schemas.js';
import { sendEtag, warn, writeCondition, type ManagementContext } from './context.js';

type ChangeRequest = FastifyRequest<{ Params: { name: string }; Body: { ipRules: IpRuleInput[] } }>;

const outcomeDoc = (description: string) => ({
  200: { description },
  412: { description: 'If-Match did not match the registry ETag (PreconditionFailed)' },
});

/** Atomic, idempotent add and remove of IP rules (no read-modify-write for clients). */
export function registerIpRuleRoutes(ctx: ManagementContext): void {
  const { ipRules, route, registryFor } = ctx;

  route({
    method: 'POST',
    url: '/api/registries/:name/networkRuleSet/ipRules',
    summary: 'Add one or many IP rules in one atomic write; rules already present are reported, not an error',
    tag: 'Network',
    params: registryNameParams,
    body: ipRulesChangeBodySchema,
    responses: outcomeDoc(
      'Which rules were added and which were already present, and the registry after the change',
    ),
    handler: async (request: ChangeRequest, reply: FastifyReply) => {
      const registry = await registryFor(request.principal, request.params.name, 'Contributor');
      await ctx.ipSets.assertExist(request.body.ipRules);
      const result = await ipRules.add(registry, request.body.ipRules, writeCondition(request));
      warn(reply, result.warnings);
      sendEtag(reply, result.etag);
      return { ...result.outcome, registry: result.resource };
    },
  });

  route({
    method: 'DELETE',
    url: '/api/registries/:name/networkRuleSet/ipRules',
    summary: 'Remove one or many IP rules in one atomic write; rules not present are reported, not an error',
    tag: 'Network',
    params: registryNameParams,
    body: ipRulesChangeBodySchema,
    responses: outcomeDoc(
      'Which rules were removed and which were not present, and the registry after the change',
    ),
    handler: async (request: ChangeRequest, reply: FastifyReply) => {
      const registry = await registryFor(request.principal, request.params.name, 'Contributor');
      const values = request.body.ipRules.map((rule) =>
        rule.ipSet !== undefined ? ipSetValue(rule.ipSet) : (rule.value ?? ''),
      );
      const result = await ipRules.remove(registry, values, writeCondition(request));
      warn(reply, result.warnings);
      sendEtag(reply, result.etag);
      return { ...result.outcome, registry: result.resource };
    },
  });
}
