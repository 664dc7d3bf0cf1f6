/** The data-plane endpoints of OCI Distribution v1.1, recognised from a `/v2/...` path. */
export type V2Route =
  | { kind: 'base' }
  | { kind: 'catalog' }
  | { kind: 'tags'; name: string }
  | { kind: 'manifest'; name: string; reference: string }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'uploads'; name: string }
  | { kind: 'upload'; name: string; id: string }
  | { kind: 'referrers'; name: string; digest: string };

/**
 * Parses the path (without query) after `/v2`. Repository names may contain `/` and even words such
 * as `manifests`, so endpoints are recognised from the end of the path, as distribution's router does.
 * Returns undefined for paths that are no endpoint; `name` is not validated here.
 */
export function parseV2Path(path: string): V2Route | undefined {
  if (path === '' || path === '/') return { kind: 'base' };
  if (!path.startsWith('/')) return undefined;
  let segments: string[];
  try {
    segments = path.slice(1).split('/');
    // Most paths hold no escapes; decoding every segment of every request is what showed in profiles.
    if (path.includes('%')) segments = segments.map(decodeURIComponent);
  } catch {
    return undefined;
  }
  if (segments.length === 1 && segments[0] === '_catalog') return { kind: 'catalog' };
  const n = segments.length;
  const name = (drop: number) => segments.slice(0, n - drop).join('/');
  const last = segments[n - 1]!;
  const second = segments[n - 2];
  const third = segments[n - 3];
  if (n >= 3 && second === 'tags' && last === 'list') return { kind: 'tags', name: name(2) };
  // `/blobs/uploads/` (trailing slash) and `/blobs/uploads` both start an upload.
  if (n >= 4 && third === 'blobs' && second === 'uploads' && last === '')
    return { kind: 'uploads', name: name(3) };
  if (n >= 3 && second === 'blobs' && last === 'uploads') return { kind: 'uploads', name: name(2) };
  if (n >= 4 && third === 'blobs' && second === 'uploads') return { kind: 'upload', name: name(3), id: last };
  if (n >= 3 && second === 'manifests' && last !== '')
    return { kind: 'manifest', name: name(2), reference: last };
  if (n >= 3 && second === 'blobs' && last !== '') return { kind: 'blob', name: name(2), digest: last };
  if (n >= 3 && second === 'referrers' && last !== '')
    return { kind: 'referrers', name: name(2), digest: last };
  return undefined;
}
