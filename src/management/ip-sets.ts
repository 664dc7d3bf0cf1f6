// Named IP sets ("office", "ci-runners"): lists of ranges kept once and named by any number of
// registries' rules, so changing a set changes every registry that names it at once.

import { ManagementError } from '../errors/management.js';
import { canonicalIpRanges } from './ip-ranges.js';
import type { IpSetRecord, IpSetStore, MetadataStore } from '../store/types.js';
import { matchesIfMatch, versionEtag } from './etags.js';
import { settingsOf } from './registry-model.js';
import type { WriteCondition } from './registries.js';

/** The ARM-shaped IP set resource. */
export function toIpSetResource(set: IpSetRecord) {
  return {
    id: `/ipSets/${set.name}`,
    name: set.name,
    type: 'Berth/ipSets',
    properties: {
      ranges: set.ranges,
      description: set.description,
      creationDate: set.createdAt.toISOString(),
    },
  };
}

/** The ETag of an IP set: changes with every stored change. */
function etagOf(set: IpSetRecord): string {
  return versionEtag(set.createdAt, set.version);
}

/** IP sets as resources: validated ranges, ETag / If-Match, refusal to delete one still in use. */
export class IpSetManager {
  constructor(
    private readonly store: IpSetStore,
    private readonly meta: MetadataStore,
  ) {}

  async list() {
    return (await this.store.listIpSets()).map(toIpSetResource);
  }

  async get(name: string) {
    const set = await this.find(name);
    return { resource: toIpSetResource(set), etag: etagOf(set) };
  }

  /** Creates or replaces a set; every registry naming it is decided by the new ranges at once. */
  async put(name: string, body: { ranges: string[]; description?: string }, condition: WriteCondition = {}) {
    const ranges = canonicalIpRanges(body.ranges, 'ranges');
    // Compare-and-swap on the set's version; an unconditional PUT retries when another writer won.
    for (let attempt = 0; attempt < 100; attempt++) {
      const existing = await this.store.getIpSet(name);
      if (condition.ifMatch !== undefined && !matchesIfMatch(condition.ifMatch, existing && etagOf(existing)))
        throw new ManagementError(
          'PreconditionFailed',
          `The IP set '${name}' has changed since it was read.`,
        );
      const record = {
        name,
        ranges,
        description: body.description ?? existing?.description ?? '',
        createdAt: existing?.createdAt ?? new Date(),
      };
      if (await this.store.putIpSet(record, existing?.version ?? 0)) {
        const stored = { ...record, version: (existing?.version ?? 0) + 1 };
        return { resource: toIpSetResource(stored), etag: etagOf(stored), created: !existing };
      }
    }
    throw new ManagementError(
      'Conflict',
      `The IP set '${name}' is being changed by too many writers at once; retry.`,
    );
  }

  /** Deletes a set no registry names any more (409 naming those that still do). */
  async delete(name: string): Promise<void> {
    await this.find(name);
    const users = (await this.meta.listRegistries())
      .filter((r) => settingsOf(r).networkRuleSet.ipRules.some((rule) => rule.ipSet === name))
      .map((r) => r.name);
    if (users.length > 0) {
      throw new ManagementError(
        'Conflict',
        `The IP set '${name}' is named by the rules of ${users.map((u) => `'${u}'`).join(', ')}; remove those rules first.`,
      );
    }
    // The store announces the change: every node's guard compiles the registries naming it again.
    await this.store.deleteIpSet(name);
  }

  /** Refuses rules naming a set that does not exist (a typo would otherwise allow nothing, silently). */
  async assertExist(rules: readonly { ipSet?: string | undefined }[]): Promise<void> {
    for (const [index, rule] of rules.entries()) {
      if (rule.ipSet !== undefined && !(await this.store.getIpSet(rule.ipSet))) {
        throw new ManagementError('InvalidNetworkRule', `There is no IP set named '${rule.ipSet}'.`, {
          target: `ipRules[${index}].ipSet`,
        });
      }
    }
  }

  private async find(name: string): Promise<IpSetRecord> {
    const set = await this.store.getIpSet(name);
    if (!set) throw new ManagementError('ResourceNotFound', `The IP set '${name}' was not found.`);
    return set;
  }
}
