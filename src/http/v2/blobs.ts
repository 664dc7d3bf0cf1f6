import { OciError } from '../../errors/oci.js';
import { assertRepositoryName } from '../../registry/names.js';
import type { ChunkClaim, UploadState } from '../../registry/blob-uploads.js';
import { parseContentRange } from '../../registry/uploads.js';
import type { ByteRange } from '../../store/types.js';
import { contentLength, hasBody, header, type V2Context } from './context.js';
import { sendFileRange } from './send-file.js';

/** `GET`/`HEAD /v2/<name>/blobs/<digest>`, with single-range `Range` support. */
export async function getBlob(ctx: V2Context, digestText: string, head: boolean): Promise<void> {
  const { reply } = ctx;
  const { digest, size } = await ctx.service.statBlob(ctx.registry, ctx.repository, digestText);
  if (!head) {
    // After the guard, auth and the link check above: the redirect only hands out what we would serve.
    const location = await ctx.service.blobRedirectUrl(ctx.registry, ctx.repository, digest);
    if (location) {
      return void reply
        .code(307)
        .header('Location', location)
        .header('Docker-Content-Digest', digest)
        .header('Content-Length', '0')
        .send();
    }
  }
  reply
    .header('Docker-Content-Digest', digest)
    .header('ETag', `"${digest}"`)
    .header('Accept-Ranges', 'bytes')
    .header('Content-Type', 'application/octet-stream')
    .header('Cache-Control', 'max-age=31536000');
  const range = parseRange(header(ctx.request, 'range'), size);
  if (range === 'unsatisfiable') {
    throw new OciError(
      'RANGE_INVALID',
      `requested range not satisfiable for a blob of ${size} bytes`,
      undefined,
      {
        headers: { 'Content-Range': `bytes */${size}` },
      },
    );
  }
  if (range) {
    reply
      .code(206)
      .header('Content-Range', `bytes ${range.start}-${range.end}/${size}`)
      .header('Content-Length', String(range.end - range.start + 1));
  } else {
    reply.code(200).header('Content-Length', String(size));
  }
  if (head || size === 0) return void reply.send();
  const body = await ctx.service.openBlob(ctx.registry, ctx.repository, digest, range);
  if (body.file) return sendFileRange(reply, body.file, range?.start ?? 0, range?.end ?? size - 1);
  reply.send(body.stream);
}

/** `DELETE /v2/<name>/blobs/<digest>` */
export async function deleteBlob(ctx: V2Context, digest: string): Promise<void> {
  await ctx.service.deleteBlob(ctx.registry, ctx.repository, digest);
  ctx.reply.code(202).header('Content-Length', '0').send();
}

/** `POST /v2/<name>/blobs/uploads/`: monolithic (`?digest=`), mount (`?mount=&from=`) or a new session. */
export async function startUpload(ctx: V2Context): Promise<void> {
  const { service, registry, repository, query } = ctx;
  const mount = query.get('mount');
  if (mount !== null) {
    const from = query.get('from') ?? undefined;
    if (from !== undefined) assertRepositoryName(from);
    const mounted = await service.mountBlob(registry, repository, mount, from);
    if (mounted) return blobCreated(ctx, mounted);
  }
  const digest = query.get('digest');
  const client = ctx.request.clientAddress?.text ?? ctx.request.ip;
  if (digest !== null && mount === null) {
    const committed = await service.uploads.uploadMonolithic(registry, repository, digest, ctx.body, client);
    return blobCreated(ctx, committed);
  }
  const upload = await service.uploads.startUpload(registry, repository, client);
  uploadAccepted(ctx, upload);
}

/** `GET /v2/<name>/blobs/uploads/<id>`: where the upload stands. */
export async function getUploadStatus(ctx: V2Context, id: string): Promise<void> {
  const session = await ctx.service.uploads.getUpload(ctx.registry, ctx.repository, id);
  uploadAccepted(ctx, { id: session.id, offset: session.offset }, 204);
}

/** `PATCH /v2/<name>/blobs/uploads/<id>`: one chunk, in order. */
export async function patchUpload(ctx: V2Context, id: string): Promise<void> {
  const claim = chunkClaim(ctx);
  const state = await ctx.service.uploads.appendChunk(ctx.registry, ctx.repository, id, ctx.body, claim);
  uploadAccepted(ctx, state);
}

/** `PUT /v2/<name>/blobs/uploads/<id>?digest=`: optional last chunk, then commit. */
export async function completeUpload(ctx: V2Context, id: string): Promise<void> {
  const digest = ctx.query.get('digest');
  if (digest === null)
    throw new OciError('DIGEST_INVALID', 'the digest query parameter is required to complete an upload');
  const body = hasBody(ctx.request) ? ctx.body : undefined;
  const committed = await ctx.service.uploads.completeUpload(
    ctx.registry,
    ctx.repository,
    id,
    digest,
    body,
    body ? chunkClaim(ctx) : {},
  );
  blobCreated(ctx, committed);
}

/** `DELETE /v2/<name>/blobs/uploads/<id>`: cancel. */
export async function cancelUpload(ctx: V2Context, id: string): Promise<void> {
  await ctx.service.uploads.cancelUpload(ctx.registry, ctx.repository, id);
  ctx.reply.code(204).send();
}

function blobCreated(ctx: V2Context, digest: string): void {
  ctx.reply
    .code(201)
    .header('Location', `/v2/${ctx.repository}/blobs/${digest}`)
    .header('Docker-Content-Digest', digest)
    .header('Content-Length', '0')
    .send();
}

function uploadAccepted(ctx: V2Context, upload: UploadState, status = 202): void {
  ctx.reply
    .code(status)
    .header('Location', `/v2/${ctx.repository}/blobs/uploads/${upload.id}`)
    .header('Range', `0-${Math.max(0, upload.offset - 1)}`)
    .header('Docker-Upload-UUID', upload.id)
    .header('Content-Length', '0')
    .send();
}

function chunkClaim(ctx: V2Context): ChunkClaim {
  const claim: ChunkClaim = {};
  const rangeHeader = header(ctx.request, 'content-range');
  if (rangeHeader !== undefined) {
    const range = parseContentRange(rangeHeader);
    if (!range) throw new OciError('RANGE_INVALID', `invalid Content-Range '${rangeHeader.slice(0, 100)}'`);
    claim.range = range;
  }
  const length = contentLength(ctx.request);
  if (length !== undefined) claim.length = length;
  return claim;
}

/** Parses a single `bytes=` range against a size; multi-range requests are served whole (RFC 9110 allows it). */
export function parseRange(value: string | undefined, size: number): ByteRange | 'unsatisfiable' | undefined {
  if (value === undefined) return undefined;
  const match = /^bytes=(\d{0,15})-(\d{0,15})$/.exec(value.trim());
  if (!match) return value.includes(',') || !value.trim().startsWith('bytes=') ? undefined : 'unsatisfiable';
  const [, first, last] = match;
  if (first === '' && last === '') return 'unsatisfiable';
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (start >= size || (last !== '' && Number(last) < start)) return 'unsatisfiable';
  return { start, end };
}
