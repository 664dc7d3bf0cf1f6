import type { FastifyReply } from 'fastify';
import { ManagementError } from '../../errors/management.js';
import { OciError } from '../../errors/oci.js';
import { parseReference } from '../../registry/names.js';
import type { ManifestRecord } from '../../store/types.js';
import type { ManagementContext } from './context.js';
import { notFound, repositoryOf, repositoryViewGuard, type RepoRequest } from './repositories.js';

type ManifestRequest = RepoRequest & { params: { reference: string } };

const manifestParams = {
  type: 'object',
  required: ['name', 'repository', 'reference'],
  properties: { name: { type: 'string' }, repository: { type: 'string' }, reference: { type: 'string' } },
} as const;

interface Descriptor {
  mediaType?: string;
  digest?: string;
  size?: number;
  artifactType?: string;
  platform?: { os?: string; architecture?: string; variant?: string };
}

/** Manifest details for the portal (size, layers, an index's platforms, referrers) and manifest delete. */
export function registerManifestRoutes(ctx: ManagementContext): void {
  const { meta, route } = ctx;

  /** The manifest a tag or digest names in a repository the caller may see. */
  async function manifestOf(request: ManifestRequest, role: 'Reader' | 'Contributor') {
    const registry = await repositoryViewGuard(ctx, request, role);
    const repository = repositoryOf(request);
    let reference;
    try {
      reference = parseReference(request.params.reference);
    } catch (error) {
      if (!(error instanceof OciError)) throw error;
      throw new ManagementError('InvalidParameter', error.message, { target: 'reference' });
    }
    const digest =
      reference.kind === 'tag'
        ? await meta.resolveTag(registry, repository, reference.tag)
        : reference.digest.text;
    const manifest = digest ? await meta.getManifest(registry, repository, digest) : undefined;
    if (!manifest) {
      if (!(await meta.repositoryExists(registry, repository))) throw notFound(repository);
      throw new ManagementError(
        'ResourceNotFound',
        `Manifest '${request.params.reference.slice(0, 150)}' was not found in repository '${repository}'.`,
      );
    }
    return { registry, repository, manifest };
  }

  route({
    method: 'GET',
    url: '/api/registries/:name/repositories/:repository/manifests/:reference',
    summary: 'Show a manifest (by tag or digest): size, config and layers, an index’s platforms, referrers',
    tag: 'Repositories',
    params: manifestParams,
    responses: { 200: { description: 'The manifest' } },
    handler: async (request: ManifestRequest) => {
      const { registry, repository, manifest } = await manifestOf(request, 'Reader');
      const referrers = await meta.listReferrers(registry, repository, manifest.digest);
      return { ...describeManifest(manifest), referrers };
    },
  });

  route({
    method: 'DELETE',
    url: '/api/registries/:name/repositories/:repository/manifests/:reference',
    summary: 'Delete a manifest by digest, with the tags that point at it',
    tag: 'Repositories',
    params: manifestParams,
    responses: { 204: { description: 'Deleted' } },
    handler: async (request: ManifestRequest, reply: FastifyReply) => {
      if (!request.params.reference.includes(':')) {
        throw new ManagementError(
          'InvalidParameter',
          'Delete a manifest by its digest; to remove only a tag, delete the tag.',
          { target: 'reference' },
        );
      }
      const { registry, repository, manifest } = await manifestOf(request, 'Contributor');
      await meta.deleteManifest(registry, repository, manifest.digest);
      return reply.code(204).send();
    },
  });
}

/** What the portal shows of a manifest, read from its stored bytes (validated when it was pushed). */
function describeManifest(manifest: ManifestRecord) {
  let body: { config?: Descriptor; layers?: Descriptor[]; manifests?: Descriptor[] } = {};
  try {
    body = JSON.parse(manifest.content.toString('utf8')) as typeof body;
  } catch {
    // Stored manifests were parsed on push; an unreadable one is shown with its basic facts only.
  }
  const descriptor = (d: Descriptor) => ({
    mediaType: d.mediaType,
    digest: d.digest,
    size: typeof d.size === 'number' ? d.size : 0,
    ...(d.artifactType ? { artifactType: d.artifactType } : {}),
  });
  const layers = Array.isArray(body.layers) ? body.layers.map(descriptor) : undefined;
  const config = body.config ? descriptor(body.config) : undefined;
  const manifests = Array.isArray(body.manifests)
    ? body.manifests.map((m) => ({
        ...descriptor(m),
        ...(m.platform
          ? {
              platform: {
                os: m.platform.os,
                architecture: m.platform.architecture,
                ...(m.platform.variant ? { variant: m.platform.variant } : {}),
              },
            }
          : {}),
      }))
    : undefined;
  const layerBytes = (layers ?? []).reduce((sum, layer) => sum + layer.size, 0);
  return {
    digest: manifest.digest,
    mediaType: manifest.mediaType,
    size: manifest.size,
    ...(manifest.artifactType ? { artifactType: manifest.artifactType } : {}),
    ...(manifest.subject ? { subject: manifest.subject } : {}),
    ...(manifest.annotations ? { annotations: manifest.annotations } : {}),
    ...(config ? { config } : {}),
    ...(layers ? { layers } : {}),
    ...(manifests ? { manifests } : {}),
    // An image's size as pulled: the manifest, its config and its layers (an index: just its own bytes).
    totalSize: manifest.size + (config?.size ?? 0) + layerBytes,
  };
}
