import type { FastifyReply, FastifyRequest } from 'fastify';
import type { WebhookInput, WebhookService } from '../../management/webhooks.js';
import { WEBHOOK_ACTIONS, type DeliveryRecord, type WebhookRecord } from '../../store/webhook-types.js';
import type { ManagementContext } from './context.js';

type HookRequest = FastifyRequest<{
  Params: { name: string; webhook: string };
  Body: { properties?: WebhookInput };
}>;

const hookParams = {
  type: 'object',
  required: ['name', 'webhook'],
  properties: { name: { type: 'string' }, webhook: { type: 'string' } },
} as const;

const webhookBody = {
  $id: 'WebhookBody',
  type: 'object',
  additionalProperties: false,
  required: ['properties'],
  properties: {
    properties: {
      type: 'object',
      additionalProperties: false,
      properties: {
        serviceUri: { type: 'string', maxLength: 2048 },
        actions: { type: 'array', maxItems: 10, items: { type: 'string', enum: [...WEBHOOK_ACTIONS] } },
        scope: { type: 'string', maxLength: 512 },
        customHeaders: {
          type: 'object',
          maxProperties: 20,
          additionalProperties: { type: 'string', maxLength: 4096 },
        },
        status: { type: 'string', enum: ['enabled', 'disabled'] },
      },
    },
  },
} as const;

/** `/api/registries/{name}/webhooks[/{webhook}[/ping|/listEvents]]`, shaped like ACR's. */
export function registerWebhookRoutes(ctx: ManagementContext, webhooks: WebhookService): void {
  const { route } = ctx;
  const base = '/api/registries/:name/webhooks';

  route({
    method: 'GET',
    url: base,
    summary: "List a registry's webhooks",
    tag: 'Webhooks',
    params: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } },
    responses: { 200: { description: 'Webhooks' } },
    handler: async (request: FastifyRequest<{ Params: { name: string } }>) => {
      const registry = await ctx.registryFor(request.principal, request.params.name, 'Reader');
      return { value: (await webhooks.list(registry)).map((w) => view(w)) };
    },
  });

  route({
    method: 'PUT',
    url: `${base}/:webhook`,
    summary: 'Create a webhook (its signing secret is shown only in this response)',
    tag: 'Webhooks',
    params: hookParams,
    body: webhookBody,
    responses: { 201: { description: 'Created' } },
    handler: async (request: HookRequest, reply: FastifyReply) => {
      const registry = await ctx.registryFor(request.principal, request.params.name, 'Contributor');
      const created = await webhooks.create(registry, request.params.webhook, request.body.properties ?? {});
      return reply.code(201).send(view(created, true));
    },
  });

  route({
    method: 'PATCH',
    url: `${base}/:webhook`,
    summary: 'Change a webhook',
    tag: 'Webhooks',
    params: hookParams,
    body: webhookBody,
    responses: { 200: { description: 'Webhook' } },
    handler: async (request: HookRequest) => {
      const registry = await ctx.registryFor(request.principal, request.params.name, 'Contributor');
      return view(await webhooks.update(registry, request.params.webhook, request.body.properties ?? {}));
    },
  });

  route({
    method: 'GET',
    url: `${base}/:webhook`,
    summary: 'Show a webhook',
    tag: 'Webhooks',
    params: hookParams,
    responses: { 200: { description: 'Webhook' } },
    handler: async (request: HookRequest) => {
      const registry = await ctx.registryFor(request.principal, request.params.name, 'Reader');
      return view(await webhooks.get(registry, request.params.webhook));
    },
  });

  route({
    method: 'DELETE',
    url: `${base}/:webhook`,
    summary: 'Delete a webhook and its delivery log',
    tag: 'Webhooks',
    params: hookParams,
    responses: { 204: { description: 'Deleted' } },
    handler: async (request: HookRequest, reply: FastifyReply) => {
      const registry = await ctx.registryFor(request.principal, request.params.name, 'Contributor');
      await webhooks.delete(registry, request.params.webhook);
      return reply.code(204).send();
    },
  });

  route({
    method: 'POST',
    url: `${base}/:webhook/ping`,
    summary: 'Queue a ping event to the webhook',
    tag: 'Webhooks',
    params: hookParams,
    responses: { 200: { description: 'The event id' } },
    handler: async (request: HookRequest) => {
      const registry = await ctx.registryFor(request.principal, request.params.name, 'Contributor');
      return { id: await webhooks.ping(registry, request.params.webhook) };
    },
  });

  route({
    method: 'POST',
    url: `${base}/:webhook/listEvents`,
    summary: "The webhook's deliveries, newest first, with the receiver's status codes",
    tag: 'Webhooks',
    params: hookParams,
    responses: { 200: { description: 'Events' } },
    handler: async (request: HookRequest) => {
      const registry = await ctx.registryFor(request.principal, request.params.name, 'Reader');
      const webhook = await webhooks.get(registry, request.params.webhook);
      return { value: (await webhooks.events(registry, webhook.name)).map((d) => eventView(d, webhook)) };
    },
  });
}

function view(webhook: WebhookRecord, withSecret = false) {
  return {
    name: webhook.name,
    type: 'Microsoft.ContainerRegistry/registries/webhooks',
    properties: {
      serviceUri: webhook.serviceUri,
      actions: webhook.actions,
      scope: webhook.scope,
      status: webhook.status,
      // Header values may be credentials: their names are shown, never their values.
      customHeaderNames: Object.keys(webhook.customHeaders),
      provisioningState: 'Succeeded',
      createdAt: webhook.createdAt.toISOString(),
    },
    ...(withSecret ? { secret: webhook.secret } : {}),
  };
}

function eventView(delivery: DeliveryRecord, webhook: WebhookRecord) {
  return {
    id: delivery.eventId,
    deliveryId: delivery.id,
    action: delivery.action,
    status: delivery.status,
    attempts: delivery.attempts,
    createdAt: delivery.createdAt.toISOString(),
    updatedAt: delivery.updatedAt.toISOString(),
    eventRequestMessage: {
      method: 'POST',
      requestUri: webhook.serviceUri,
      content: JSON.parse(delivery.payload) as unknown,
    },
    eventResponseMessage: {
      statusCode: delivery.lastStatusCode ?? null,
      reasonPhrase: delivery.lastError ?? null,
    },
  };
}
