import { patternMatches } from '../../auth/permissions.js';
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

/** Pages of the store a filtered catalog page reads at most, so a sparse filter stays bounded. */
const MAX_FILTERED_SCANS = 20;

/** `GET /v2/_catalog?n=&last=`; a scope-map token sees only the repositories it may read metadata of. */
export async function listCatalog(ctx: V2Context): Promise<void> {
  const page = pageOf(ctx.query, MAX_PAGE_SIZE);
  const filter = ctx.request.catalogFilter;
  const { repositories, more, next } =
    filter === undefined ? await unfilteredPage(ctx, page) : await filteredPage(ctx, page, filter);
  if (more) ctx.reply.header('Link', nextLink('/v2/_catalog', page.limit, next!));
  ctx.reply.code(200).header('Content-Type', 'application/json').send(JSON.stringify({ repositories }));
}

async function unfilteredPage(ctx: V2Context, page: { last?: string; limit: number }) {
  const repositories =
    page.limit === 0 ? [] : await ctx.service.listRepositories(ctx.registry, page.last, page.limit + 1);
  const more = repositories.length > page.limit;
  if (more) repositories.length = page.limit;
  return { repositories, more, next: repositories.at(-1) };
}

async function filteredPage(ctx: V2Context, page: { last?: string; limit: number }, patterns: string[]) {
  const repositories: string[] = [];
  let last = page.last;
  if (page.limit === 0 || patterns.length === 0) return { repositories, more: false, next: undefined };
  for (let scan = 0; scan < MAX_FILTERED_SCANS; scan++) {
    const batch = await ctx.service.listRepositories(ctx.registry, last, MAX_PAGE_SIZE);
    for (const name of batch) {
      if (!patterns.some((p) => patternMatches(p, name))) continue;
      if (repositories.length === page.limit) return { repositories, more: true, next: repositories.at(-1) };
      repositories.push(name);
    }
    if (batch.length < MAX_PAGE_SIZE) return { repositories, more: false, next: undefined };
    last = batch.at(-1);
  }
  // Scanned as far as one request may: the Link lets the client go on from where this stopped.
  return { repositories, more: true, next: last };
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
