// The permission decision: what an identity may do in one registry, and the grant for a request
// (the intersection of what was asked and what is allowed, as the docker token spec says).

import type { DataPlaneRoleName, RoleName } from '../store/types.js';
import type { ResourceAccess } from './scope.js';

/** Repository actions of the docker protocol. */
export type RepositoryAction = 'pull' | 'push' | 'delete';

/** ACR's scope map actions. */
export const SCOPE_MAP_ACTIONS = [
  'content/read',
  'content/write',
  'content/delete',
  'metadata/read',
  'metadata/write',
] as const;
export type ScopeMapAction = (typeof SCOPE_MAP_ACTIONS)[number];

/** One parsed scope map entry: a repository name, or a prefix ending in `/*`, or `*` (system maps). */
export interface RepositoryRule {
  pattern: string;
  actions: ScopeMapAction[];
}

/** What an identity may do in one registry. */
export interface Permissions {
  /** Actions on every repository. */
  everywhere: RepositoryAction[];
  /** Per-repository rules (scope maps). */
  rules: RepositoryRule[];
  /** Whether `/v2/_catalog` may be listed. */
  catalog: boolean;
}

export const NO_PERMISSIONS: Permissions = { everywhere: [], rules: [], catalog: false };

const ROLE_ACTIONS: Record<RoleName | DataPlaneRoleName, { actions: RepositoryAction[]; catalog: boolean }> =
  {
    Owner: { actions: ['pull', 'push', 'delete'], catalog: true },
    Contributor: { actions: ['pull', 'push', 'delete'], catalog: true },
    Reader: { actions: ['pull'], catalog: true },
    AcrPull: { actions: ['pull'], catalog: true },
    AcrPush: { actions: ['pull', 'push'], catalog: true },
    AcrDelete: { actions: ['delete'], catalog: false },
  };

/** Permissions from role assignments (`*` or this registry), management and data-plane roles alike. */
export function permissionsFromRoles(
  roles: readonly { registry: string; role: RoleName | DataPlaneRoleName }[],
  registry: string,
): Permissions {
  const actions = new Set<RepositoryAction>();
  let catalog = false;
  for (const assignment of roles) {
    if (assignment.registry !== '*' && assignment.registry !== registry) continue;
    const granted = ROLE_ACTIONS[assignment.role];
    for (const action of granted.actions) actions.add(action);
    catalog ||= granted.catalog;
  }
  return { everywhere: [...actions], rules: [], catalog };
}

/** Everything (the admin user). */
export const ALL_PERMISSIONS: Permissions = {
  everywhere: ['pull', 'push', 'delete'],
  rules: [],
  catalog: true,
};

const REPO_ACTION_OF: Partial<Record<ScopeMapAction, RepositoryAction>> = {
  'content/read': 'pull',
  'content/write': 'push',
  'content/delete': 'delete',
};

/** The system scope maps ACR defines, on every repository. */
export const SYSTEM_SCOPE_MAPS: Record<string, { description: string; actions: string[] }> = {
  _repositories_pull: {
    description: 'Can pull any repository of the registry',
    actions: ['repositories/*/content/read'],
  },
  _repositories_push: {
    description: 'Can push to any repository of the registry',
    actions: ['repositories/*/content/read', 'repositories/*/content/write'],
  },
  _repositories_admin: {
    description: 'Can perform all read, write and delete operations on the registry',
    actions: [
      'repositories/*/metadata/read',
      'repositories/*/metadata/write',
      'repositories/*/content/read',
      'repositories/*/content/write',
      'repositories/*/content/delete',
    ],
  },
};

const REPOSITORY_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;

/** Thrown for a scope map action string that is not `repositories/<name or prefix/*>/<action>`. */
export class InvalidScopeMapActionError extends Error {}

/** Parses ACR action strings (`repositories/app/*\/content/read`) into rules; `*` only for system maps. */
export function parseScopeMapActions(actions: readonly string[], allowEverything = false): RepositoryRule[] {
  const rules = new Map<string, Set<ScopeMapAction>>();
  for (const value of actions) {
    const match = /^repositories\/(.+)\/(content|metadata)\/(read|write|delete)$/.exec(value);
    const action = match ? (`${match[2]}/${match[3]}` as ScopeMapAction) : undefined;
    if (!match || !action || !SCOPE_MAP_ACTIONS.includes(action))
      throw new InvalidScopeMapActionError(
        `'${value.slice(0, 200)}' is not an action: use repositories/<name>/<content/read|content/write|content/delete|metadata/read|metadata/write>.`,
      );
    const pattern = match[1]!;
    const base = pattern.endsWith('/*') ? pattern.slice(0, -2) : pattern;
    const valid = (pattern === '*' && allowEverything) || REPOSITORY_RE.test(base);
    if (!valid)
      throw new InvalidScopeMapActionError(
        `'${pattern.slice(0, 200)}' is not a repository name or a prefix ending in '/*'.`,
      );
    const set = rules.get(pattern) ?? new Set<ScopeMapAction>();
    set.add(action);
    rules.set(pattern, set);
  }
  return [...rules].map(([pattern, set]) => ({ pattern, actions: [...set] }));
}

/** Permissions of a token from its scope map's rules. */
export function permissionsFromRules(rules: RepositoryRule[]): Permissions {
  return { everywhere: [], rules, catalog: rules.some((r) => r.actions.includes('metadata/read')) };
}

/** Whether a scope map pattern (a name, a prefix ending in `/*`, or `*`) covers a repository. */
export function patternMatches(pattern: string, repository: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('/*')) return repository.startsWith(pattern.slice(0, -1));
  return pattern === repository;
}

/** The actions allowed on one resource. */
export function allowedActions(permissions: Permissions, type: string, name: string): string[] {
  if (type === 'registry') return name === 'catalog' && permissions.catalog ? ['*'] : [];
  if (type !== 'repository') return [];
  const actions = new Set<string>(permissions.everywhere);
  for (const rule of permissions.rules) {
    if (!patternMatches(rule.pattern, name)) continue;
    for (const action of rule.actions) {
      const mapped = REPO_ACTION_OF[action];
      if (mapped) actions.add(mapped);
    }
  }
  return [...actions];
}

/** The grant for a token request: each asked-for resource with the allowed subset of its actions. */
export function grant(permissions: Permissions, requested: readonly ResourceAccess[]): ResourceAccess[] {
  return requested.map((r) => {
    const allowed = allowedActions(permissions, r.type, r.name);
    // On a repository `*` asks for every action (containers/image sends it to delete).
    const wanted = r.actions.includes('*')
      ? [...new Set([...r.actions.filter((a) => a !== '*'), 'pull', 'push', 'delete'])]
      : r.actions;
    const actions =
      r.type === 'registry' ? (allowed.includes('*') && r.actions.includes('*') ? ['*'] : []) : wanted;
    return { type: r.type, name: r.name, actions: actions.filter((a) => allowed.includes(a)) };
  });
}

/**
 * Which repositories the catalog may show: undefined for all (roles, the admin user), otherwise the
 * patterns a scope map grants `metadata/read` on, so a token never learns other repositories' names.
 */
export function catalogPatterns(permissions: Permissions): string[] | undefined {
  if (permissions.everywhere.length > 0 || permissions.rules.length === 0) return undefined;
  const patterns = permissions.rules.filter((r) => r.actions.includes('metadata/read')).map((r) => r.pattern);
  return patterns.includes('*') ? undefined : patterns;
}

/** Whether the permissions allow an action on every repository (cross-repository mounts without `from`). */
export function allowsEverywhere(permissions: Permissions, action: RepositoryAction): boolean {
  return (
    permissions.everywhere.includes(action) ||
    permissions.rules.some((r) => r.pattern === '*' && r.actions.some((a) => REPO_ACTION_OF[a] === action))
  );
}
