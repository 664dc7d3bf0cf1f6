import type { FastifyReply, FastifyRequest } from 'fastify';
import { ManagementError } from '../../errors/management.js';
import { isValidRepositoryName, isValidTag } from '../../registry/names.js';
import { clientAddressOf } from '../guard.js';
import type { ManagementContext } from './context.js';
import { registryNameParams } from '../../management/schemas.js';

export type RepoRequest = FastifyRequest<{ Params: { name: string; repository: string; tag?: string } }>;

const repoParams = {
  type: 'object',
  required: ['name', 'repository'],
  properties: { name: { type: 'string' }, repository: { type: 'string' }, tag: { type: 'string' } },
} as const;

/**
 * Repository and tag views. Like ACR ("repositories and tags can't be listed outside the virtual
 * network"), they obey the registry's network rules for the caller's address.
 */
export function registerRepositoryRoutes(ctx: ManagementContext): void {
  const { meta, route } = ctx;
  const guard = (request: FastifyRequest<{ Params: { name: string } }>, role: 'Reader' | 'Contributor') =>
    repositoryViewGuard(ctx, request, role);

  route({
    method: 'GET',
    url: '/api/registries/:name/repositories',
    summary: 'List repositories',
    tag: 'Repositories',
    params: registryNameParams,
    querystring: {
      type: 'object',
      properties: { n: { type: 'string', pattern: '^[0-9]{1,4}$' }, last: { type: 'string' } },
    },
    responses: { 200: { description: 'Repository names' } },
    handler: async (
      request: FastifyRequest<{ Params: { name: string }; Querystring: { n?: string; last?: string } }>,
    ) => {
      const registry = await guard(request, 'Reader');
      const limit = Math.min(Number(request.query.n ?? 1000), 1000);
      return { value: await meta.listRepositories(registry, { last: request.query.last, limit }) };
    },
  });

  route({
    method: 'GET',
    url: '/api/registries/:name/repositories/:repository',
    summary: 'Show a repository',
    tag: 'Repositories',
    params: repoParams,
    responses: { 200: { description: 'Repository' } },
    handler: async (request: RepoRequest) => {
      const registry = await guard(request, 'Reader');
      const repository = repositoryOf(request);
      if (!(await meta.repositoryExists(registry, repository))) throw notFound(repository);
      return { registry, name: repository, ...(await meta.repositoryStats(registry, repository)) };
    },
  });

  route({
    method: 'DELETE',
    url: '/api/registries/:name/repositories/:repository',
    summary: 'Delete a repository with all its tags and manifests',
    tag: 'Repositories',
    params: repoParams,
    responses: { 204: { description: 'Deleted' } },
    handler: async (request: RepoRequest, reply: FastifyReply) => {
      const registry = await guard(request, 'Contributor');
      const repository = repositoryOf(request);
      if (!(await meta.deleteRepository(registry, repository))) throw notFound(repository);
      return reply.code(204).send();
    },
  });

  route({
    method: 'GET',
    url: '/api/registries/:name/repositories/:repository/tags',
    summary: "List a repository's tags",
    tag: 'Repositories',
    params: repoParams,
    responses: { 200: { description: 'Tags with digests' } },
    handler: async (request: RepoRequest) => {
      const registry = await guard(request, 'Reader');
      const repository = repositoryOf(request);
      if (!(await meta.repositoryExists(registry, repository))) throw notFound(repository);
      const tags = await meta.listTags(registry, repository, { limit: 10_000 });
      const value = await Promise.all(
        tags.map(async (name) => ({ name, digest: await meta.resolveTag(registry, repository, name) })),
      );
      return { value };
    },
  });

  route({
    method: 'DELETE',
    url: '/api/registries/:name/repositories/:repository/tags/:tag',
    summary: 'Untag: remove a tag, keep the manifest',
    tag: 'Repositories',
    params: repoParams,
    responses: { 204: { description: 'Removed' } },
    handler: async (request: RepoRequest, reply: FastifyReply) => {
      const registry = await guard(request, 'Contributor');
      const repository = repositoryOf(request);
      const tag = request.params.tag ?? '';
      if (!isValidTag(tag))
        throw new ManagementError('InvalidParameter', `'${tag.slice(0, 130)}' is not a valid tag.`, {
          target: 'tag',
        });
      if (!(await meta.deleteTag(registry, repository, tag))) {
        throw new ManagementError(
          'ResourceNotFound',
          `Tag '${tag}' was not found in repository '${repository}'.`,
        );
      }
      return reply.code(204).send();
    },
  });
}

/** Resolves the registry, checks the role and the caller's network, returns the registry's key. */
export async function repositoryViewGuard(
  ctx: ManagementContext,
  request: FastifyRequest<{ Params: { name: string } }>,
  role: 'Reader' | 'Contributor',
): Promise<string> {
  const registry = await ctx.registryFor(request.principal, request.params.name, role);
  const decision = await ctx.access.decide(
    registry,
    { kind: 'public' },
    clientAddressOf(request, ctx.trustedProxies),
  );
  if (!decision.allowed)
    throw new ManagementError('NetworkAccessDenied', decision.message, { target: decision.reason });
  return registry;
}

/** The repository path parameter, validated (the router has already percent-decoded `a%2Fb`). */
export function repositoryOf(request: RepoRequest): string {
  const repository = request.params.repository;
  if (!isValidRepositoryName(repository)) {
    throw new ManagementError(
      'InvalidParameter',
      `'${repository.slice(0, 100)}' is not a valid repository name.`,
      { target: 'repository' },
    );
  }
  return repository;
}

/** The ARM not-found error for a repository. */
export function notFound(repository: string): ManagementError {
  return new ManagementError('ResourceNotFound', `Repository '${repository}' was not found.`);
}
