import { OciError } from '../../errors/oci.js';
import type { V2Context } from './context.js';

/** The most entries one page of tags or catalog returns, whatever `n` asks for. */
export const MAX_PAGE_SIZE = 1000;

/** `GET /v2/<name>/tags/list?n=&last=` */
export async function listTags(ctx: V2Context): Promise<void> {
  const page = pageOf(ctx.query, undefined);
  const tags =
    page.limit === 0
      ? []
      : await ctx.service.listTags(ctx.registry, ctx.repository, page.last, page.limit + 1);
  const more = tags.length > page.limit;
  if (more) tags.length = page.limit;
  if (more) ctx.reply.header('Link', nextLink(`/v2/${ctx.repository}/tags/list`, page.limit, tags.at(-1)!));
  ctx.reply
    .code(200)
    .header('Content-Type', 'application/json')
    .send(JSON.stringify({ name: ctx.repository, tags }));
}

/** `GET /v2/_catalog?n=&last=` */
export async function listCatalog(ctx: V2Context): Promise<void> {
  const page = pageOf(ctx.query, MAX_PAGE_SIZE);
  const repositories =
    page.limit === 0 ? [] : await ctx.service.listRepositories(ctx.registry, page.last, page.limit + 1);
  const more = repositories.length > page.limit;
  if (more) repositories.length = page.limit;
  if (more) ctx.reply.header('Link', nextLink('/v2/_catalog', page.limit, repositories.at(-1)!));
  ctx.reply.code(200).header('Content-Type', 'application/json').send(JSON.stringify({ repositories }));
}

function pageOf(query: URLSearchParams, defaultLimit: number | undefined): { last?: string; limit: number } {
  const n = query.get('n');
  const last = query.get('last') ?? undefined;
  let limit = defaultLimit ?? Number.MAX_SAFE_INTEGER - 1;
  if (n !== null) {
    if (!/^\d{1,9}$/.test(n)) {
      throw new OciError(
        'PAGINATION_NUMBER_INVALID',
        `n must be a non-negative integer, not '${n.slice(0, 50)}'`,
      );
    }
    limit = Math.min(Number(n), MAX_PAGE_SIZE);
  }
  return last === undefined ? { limit } : { last, limit };
}

function nextLink(path: string, n: number, last: string): string {
  return `<${path}?n=${n}&last=${encodeURIComponent(last)}>; rel="next"`;
}
