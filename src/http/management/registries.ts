import type { FastifyReply, FastifyRequest } from 'fastify';
import { sendEtag, warn, writeCondition, type ManagementContext } from './context.js';
import type { RegistryBody } from '../../management/registries.js';
import {
  regenerateCredentialBodySchema,
  registryBodySchema,
  registryNameParams,
  registryResourceSchema,
} from '../../management/schemas.js';

type NameRequest = FastifyRequest<{ Params: { name: string } }>;

/** Registry CRUD, endpoints and admin credentials. */
export function registerRegistryRoutes(ctx: ManagementContext): void {
  const { registries, identities, route } = ctx;

  route({
    method: 'GET',
    url: '/api/registries',
    summary: 'List the registries the caller has a role on',
    tag: 'Registries',
    responses: {
      200: {
        description: 'Registries',
        schema: { type: 'object', properties: { value: { type: 'array', items: registryResourceSchema } } },
      },
    },
    handler: async (request) => {
      const all = await registries.list();
      return { value: all.filter((r) => identities.canSee(request.principal, r.name)) };
    },
  });

  route({
    method: 'GET',
    url: '/api/registries/:name',
    summary: 'Show a registry',
    tag: 'Registries',
    params: registryNameParams,
    responses: { 200: { description: 'The registry', schema: registryResourceSchema } },
    handler: async (request: NameRequest, reply: FastifyReply) => {
      identities.authorize(request.principal, request.params.name.toLowerCase(), 'Reader');
      const { resource, etag } = await registries.getWithEtag(request.params.name);
      sendEtag(reply, etag);
      return reply.send(resource);
    },
  });

  route({
    method: 'PUT',
    url: '/api/registries/:name',
    summary: 'Create a registry, or replace its settable properties',
    tag: 'Registries',
    params: registryNameParams,
    body: registryBodySchema,
    responses: {
      200: { description: 'Replaced', schema: registryResourceSchema },
      201: { description: 'Created', schema: registryResourceSchema },
      412: { description: 'If-Match did not match the ETag (PreconditionFailed)' },
    },
    handler: async (
      request: FastifyRequest<{ Params: { name: string }; Body: RegistryBody }>,
      reply: FastifyReply,
    ) => {
      const name = request.params.name.toLowerCase();
      // A caller with no role on the name is answered the same whether or not the registry exists;
      // only one who may already see it learns that it does.
      const exists =
        identities.canSee(request.principal, name) &&
        (await registries.get(name).then(
          () => true,
          () => false,
        ));
      identities.authorize(request.principal, exists ? name : '*', 'Contributor');
      await ctx.ipSets.assertExist(request.body.properties?.networkRuleSet?.ipRules ?? []);
      const result = await registries.put(request.params.name, request.body, writeCondition(request));
      warn(reply, result.warnings);
      sendEtag(reply, result.etag);
      return reply.code(result.created ? 201 : 200).send(result.resource);
    },
  });

  route({
    method: 'PATCH',
    url: '/api/registries/:name',
    summary: 'Update a registry: objects merge, arrays replace (ARM PATCH)',
    tag: 'Registries',
    params: registryNameParams,
    body: registryBodySchema,
    responses: {
      200: { description: 'Updated', schema: registryResourceSchema },
      412: { description: 'If-Match did not match the ETag (PreconditionFailed)' },
    },
    handler: async (
      request: FastifyRequest<{ Params: { name: string }; Body: RegistryBody }>,
      reply: FastifyReply,
    ) => {
      identities.authorize(request.principal, request.params.name.toLowerCase(), 'Contributor');
      await ctx.ipSets.assertExist(request.body.properties?.networkRuleSet?.ipRules ?? []);
      const result = await registries.patch(request.params.name, request.body, writeCondition(request));
      warn(reply, result.warnings);
      sendEtag(reply, result.etag);
      return reply.send(result.resource);
    },
  });

  route({
    method: 'DELETE',
    url: '/api/registries/:name',
    summary: 'Delete a registry and all of its content',
    tag: 'Registries',
    params: registryNameParams,
    responses: {
      204: { description: 'Deleted' },
      412: { description: 'If-Match did not match the ETag (PreconditionFailed)' },
    },
    handler: async (request: NameRequest, reply: FastifyReply) => {
      identities.authorize(request.principal, request.params.name.toLowerCase(), 'Owner');
      await registries.delete(request.params.name, writeCondition(request));
      return reply.code(204).send();
    },
  });

  route({
    method: 'GET',
    url: '/api/registries/:name/endpoints',
    summary: "The registry's login server, data endpoints and private endpoints",
    tag: 'Registries',
    params: registryNameParams,
    responses: { 200: { description: 'Endpoints' } },
    handler: async (request: NameRequest) => {
      identities.authorize(request.principal, request.params.name.toLowerCase(), 'Reader');
      const registry = await registries.get(request.params.name);
      return {
        loginServer: registry.properties.loginServer,
        dataEndpoints: ctx.dataEndpoints,
        privateEndpoints: registry.properties.privateEndpointConnections.map((pe) => ({
          name: pe.name,
          address: pe.properties.privateEndpoint.address,
          state: pe.properties.privateLinkServiceConnectionState.status,
        })),
      };
    },
  });

  route({
    method: 'GET',
    url: '/api/registries/:name/usages',
    summary: "Storage, IP rules and private endpoints used against the SKU's limits",
    tag: 'Registries',
    params: registryNameParams,
    responses: { 200: { description: 'Usages' } },
    handler: async (request: NameRequest) => {
      identities.authorize(request.principal, request.params.name.toLowerCase(), 'Reader');
      return registries.usages(request.params.name);
    },
  });

  route({
    method: 'POST',
    url: '/api/registries/:name/listCredentials',
    summary: "The admin user's name and passwords",
    tag: 'Credentials',
    params: registryNameParams,
    responses: { 200: { description: 'Credentials' } },
    handler: async (request: NameRequest) => {
      identities.authorize(request.principal, request.params.name.toLowerCase(), 'Contributor');
      return registries.credentials(request.params.name);
    },
  });

  route({
    method: 'POST',
    url: '/api/registries/:name/regenerateCredential',
    summary: "Regenerate one of the admin user's passwords",
    tag: 'Credentials',
    params: registryNameParams,
    body: regenerateCredentialBodySchema,
    responses: { 200: { description: 'Credentials' } },
    handler: async (
      request: FastifyRequest<{ Params: { name: string }; Body: { name: 'password' | 'password2' } }>,
    ) => {
      identities.authorize(request.principal, request.params.name.toLowerCase(), 'Contributor');
      return registries.regenerateCredential(request.params.name, request.body.name);
    },
  });
}
