import { OciError } from '../../errors/oci.js';
import { MANIFEST_TYPES } from '../../registry/media-types.js';
import { MediaType } from '../../registry/media-types.js';
import { header, contentLength, type V2Context } from './context.js';

/** `GET`/`HEAD /v2/<name>/manifests/<reference>` */
export async function getManifest(ctx: V2Context, reference: string, head: boolean): Promise<void> {
  const { request, reply } = ctx;
  const manifest = await ctx.service.getManifest(ctx.registry, ctx.repository, reference);
  const accepted = acceptedManifestTypes(header(request, 'accept'));
  if (accepted && !accepted.has(manifest.mediaType)) {
    // The client listed the manifest types it understands and this is not one: like distribution, say
    // it is unknown rather than hand it bytes it cannot parse.
    throw new OciError(
      'MANIFEST_UNKNOWN',
      `manifest media type ${manifest.mediaType} is not in the request's Accept header`,
    );
  }
  reply
    .code(200)
    .header('Content-Type', manifest.mediaType)
    .header('Docker-Content-Digest', manifest.digest)
    .header('ETag', `"${manifest.digest}"`)
    .header('Content-Length', String(manifest.size));
  if (head) return void reply.send();
  return void reply.send(manifest.content);
}

/** `PUT /v2/<name>/manifests/<reference>` */
export async function putManifest(ctx: V2Context, reference: string): Promise<void> {
  const { request, reply } = ctx;
  const content = await readManifestBody(ctx);
  const result = await ctx.service.putManifest(
    ctx.registry,
    ctx.repository,
    reference,
    content,
    header(request, 'content-type'),
  );
  reply
    .code(201)
    .header('Location', `/v2/${ctx.repository}/manifests/${result.digest}`)
    .header('Docker-Content-Digest', result.digest)
    .header('Content-Length', '0');
  if (result.subject) reply.header('OCI-Subject', result.subject);
  reply.send();
}

/** `DELETE /v2/<name>/manifests/<reference>` */
export async function deleteManifest(ctx: V2Context, reference: string): Promise<void> {
  await ctx.service.deleteManifest(ctx.registry, ctx.repository, reference);
  ctx.reply.code(202).header('Content-Length', '0').send();
}

/** `GET /v2/<name>/referrers/<digest>` */
export async function getReferrers(ctx: V2Context, digest: string): Promise<void> {
  const artifactType = ctx.query.get('artifactType') ?? undefined;
  const referrers = await ctx.service.listReferrers(ctx.registry, ctx.repository, digest, artifactType);
  const body = {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: referrers.map((r) => ({
      mediaType: r.mediaType,
      digest: r.digest,
      size: r.size,
      ...(r.artifactType !== undefined ? { artifactType: r.artifactType } : {}),
      ...(r.annotations !== undefined ? { annotations: r.annotations } : {}),
    })),
  };
  if (artifactType !== undefined) ctx.reply.header('OCI-Filters-Applied', 'artifactType');
  // A Buffer, not a string: fastify appends `; charset=utf-8` to string payloads, and clients (and the
  // conformance suite) compare this Content-Type exactly.
  ctx.reply
    .code(200)
    .header('Content-Type', MediaType.OciIndex)
    .send(Buffer.from(JSON.stringify(body)));
}

/** Accept headers already read: clients send the same few on every request. Bounded (cleared when full). */
const acceptedByHeader = new Map<string, Set<string> | undefined>();
const ACCEPT_HEADERS_KEPT = 256;

/** Manifest types named in Accept, or undefined when the client named none (then anything goes). */
function acceptedManifestTypes(accept: string | undefined): Set<string> | undefined {
  if (!accept) return undefined;
  if (acceptedByHeader.has(accept)) return acceptedByHeader.get(accept);
  const types = parseAccept(accept);
  if (accept.length > 1024) return types;
  if (acceptedByHeader.size >= ACCEPT_HEADERS_KEPT) acceptedByHeader.clear();
  acceptedByHeader.set(accept, types);
  return types;
}

function parseAccept(accept: string): Set<string> | undefined {
  const types = new Set(
    accept
      .split(',')
      .map((part) => part.split(';')[0]!.trim().toLowerCase())
      .filter((type) => type.length > 0),
  );
  for (const type of types) if (MANIFEST_TYPES.has(type)) return types.has('*/*') ? undefined : types;
  return undefined;
}

async function readManifestBody(ctx: V2Context): Promise<Buffer> {
  const limit = ctx.service.options.maxManifestBytes;
  const declared = contentLength(ctx.request);
  const tooLarge = () =>
    new OciError(
      'SIZE_INVALID',
      `manifest exceeds the maximum size of ${limit} bytes`,
      { limit },
      { status: 413 },
    );
  if (declared !== undefined && declared > limit) throw tooLarge();
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of ctx.body as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > limit) throw tooLarge();
    chunks.push(chunk);
  }
  if (declared !== undefined && total !== declared) {
    throw new OciError('SIZE_INVALID', `received ${total} bytes but Content-Length was ${declared}`);
  }
  return Buffer.concat(chunks, total);
}
