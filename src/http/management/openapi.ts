import type { FastifyReply, FastifyRequest } from 'fastify';
import { errorSchema, registryResourceSchema } from '../../management/schemas.js';

/** One documented management route: the schemas validate it and describe it in OpenAPI. */
export interface RouteDoc {
  method: 'GET' | 'PUT' | 'PATCH' | 'POST' | 'DELETE';
  url: string;
  summary: string;
  tag: string;
  body?: Record<string, unknown>;
  params?: Record<string, unknown>;
  querystring?: { type: 'object'; properties: Record<string, unknown>; additionalProperties?: boolean };
  /** Success status and a schema (or description) of its body. */
  responses: Record<number, { description: string; schema?: Record<string, unknown> }>;
  // Method syntax on purpose: its parameters are checked bivariantly, so handlers may narrow the
  // request type to the params/body their schemas guarantee.
  handler(request: FastifyRequest, reply: FastifyReply): unknown;
}

/** Builds the OpenAPI 3.1 document from the registered routes. */
export function buildOpenApi(routes: RouteDoc[]) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const path = route.url.replace(/:([A-Za-z]+)/g, '{$1}');
    const parameters = [
      ...[...route.url.matchAll(/:([A-Za-z]+)/g)].map((m) => ({
        name: m[1],
        in: 'path',
        required: true,
        schema: { type: 'string' },
      })),
      ...Object.entries(route.querystring?.properties ?? {}).map(([name, schema]) => ({
        name,
        in: 'query',
        required: false,
        schema,
      })),
    ];
    const responses: Record<string, unknown> = {};
    for (const [status, response] of Object.entries(route.responses)) {
      responses[status] = {
        description: response.description,
        ...(response.schema
          ? { content: { 'application/json': { schema: stripIds(response.schema) } } }
          : {}),
      };
    }
    responses.default = {
      description: 'Error',
      content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
    };
    (paths[path] ??= {})[route.method.toLowerCase()] = {
      summary: route.summary,
      tags: [route.tag],
      operationId: `${route.method.toLowerCase()}${path.replace(/[{}]/g, '').replace(/\/(\w)/g, (_, c: string) => c.toUpperCase())}`,
      ...(parameters.length ? { parameters } : {}),
      ...(route.body
        ? {
            requestBody: {
              required: true,
              content: { 'application/json': { schema: stripIds(route.body) } },
            },
          }
        : {}),
      responses,
      ...(route.url === '/api/openapi.json' ? {} : { security: [{ basic: [] }, { bearer: [] }] }),
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Berth management API',
      version: '1.0.0',
      description: 'Registries as resources, shaped like Azure Container Registry (ARM) resources.',
    },
    paths,
    components: {
      schemas: { Error: stripIds(errorSchema), Registry: stripIds(registryResourceSchema) },
      securitySchemes: {
        basic: { type: 'http', scheme: 'basic' },
        bearer: { type: 'http', scheme: 'bearer' },
      },
    },
  };
}

function stripIds(schema: Record<string, unknown>): Record<string, unknown> {
  const { $id: _id, ...rest } = schema;
  return rest;
}
