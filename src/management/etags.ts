// ETags of management resources and RFC 9110 If-Match, shared by registries and IP sets.

/** A resource's ETag from its creation time and stored version: changes with every stored change,
 *  and differs across delete + re-create. */
export function versionEtag(createdAt: Date, version: number): string {
  return `"${createdAt.getTime().toString(36)}-${version}"`;
}

/** If-Match: `*` matches any current resource, otherwise one of the listed strong ETags; no resource never. */
export function matchesIfMatch(header: string, etag: string | undefined): boolean {
  if (etag === undefined) return false;
  return header.split(',').some((tag) => {
    const t = tag.trim();
    return t === '*' || t === etag;
  });
}
