// The docker token spec's scope grammar (distribution docs/content/spec/auth/scope.md):
//   scope := resourcetype ":" resourcename ":" action [ "," action ]*
// several scopes may be sent space-separated or as repeated `scope` parameters.

/** One resource and the actions asked for or granted on it (the JWT `access` claim's entries). */
export interface ResourceAccess {
  type: string;
  name: string;
  actions: string[];
}

/** Data-plane actions Berth knows: the docker ones plus `*` (registry catalog). */
export type DataPlaneAction = 'pull' | 'push' | 'delete' | '*';

const TYPE_RE = /^[a-z0-9]+(?:\([a-z0-9]+\))?$/;
const ACTION_RE = /^[a-z0-9*_-]+$/;
const MAX_SCOPES = 64;

/**
 * Parses scope strings; malformed entries are dropped (the spec lets a server ignore what it does
 * not understand), and the same resource asked for twice is merged.
 */
export function parseScopes(values: readonly string[]): ResourceAccess[] {
  const merged = new Map<string, ResourceAccess>();
  for (const value of values) {
    for (const scope of value.split(' ')) {
      if (merged.size >= MAX_SCOPES) break;
      const parsed = parseScope(scope);
      if (!parsed) continue;
      const key = `${parsed.type}:${parsed.name}`;
      const existing = merged.get(key);
      if (existing) existing.actions = [...new Set([...existing.actions, ...parsed.actions])];
      else merged.set(key, parsed);
    }
  }
  return [...merged.values()];
}

/** Parses one `type:name:actions` scope (the name may hold a port-like colon: `host:5000/repo`). */
export function parseScope(scope: string): ResourceAccess | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last === first) return undefined;
  const rawType = scope.slice(0, first);
  const name = scope.slice(first + 1, last);
  const actions = scope
    .slice(last + 1)
    .split(',')
    .filter((a) => a !== '');
  if (!TYPE_RE.test(rawType) || name === '' || name.length > 512) return undefined;
  if (actions.length === 0 || !actions.every((a) => ACTION_RE.test(a))) return undefined;
  // `repository(plugin)` is a repository with a class; the class does not change what it grants.
  const type = rawType.replace(/\(.*\)$/, '');
  return { type, name, actions: [...new Set(actions)] };
}

/** Formats one resource as a scope string (for the `WWW-Authenticate` challenge). */
export function formatScope(access: ResourceAccess): string {
  return `${access.type}:${access.name}:${access.actions.join(',')}`;
}

/** Whether `granted` covers every action of `required` on the same resource. */
export function covers(granted: readonly ResourceAccess[], required: ResourceAccess): boolean {
  const entry = granted.find((g) => g.type === required.type && g.name === required.name);
  if (!entry) return false;
  return required.actions.every((a) => entry.actions.includes(a) || entry.actions.includes('*'));
}
