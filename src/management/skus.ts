import { ManagementError } from '../errors/management.js';

export type SkuName = 'Basic' | 'Standard' | 'Premium';
export const SKU_NAMES: readonly SkuName[] = ['Basic', 'Standard', 'Premium'];

/** What a SKU allows. Operators may edit every number in the configuration file (`skus`). */
export interface SkuPlan {
  /** Included storage, in GiB (reported; enforcement is the operator's quota tooling for now). */
  storageGiB: number;
  /** Whether network rules, public network access off and private endpoints are available. */
  networkRules: boolean;
  maxIpRules: number;
  maxPrivateEndpoints: number;
  /** Repository-scoped tokens (for the token service). */
  maxTokens: number;
}

export type SkuPlans = Record<SkuName, SkuPlan>;

/** Defaults follow ACR's published service tiers. */
export const DEFAULT_SKU_PLANS: SkuPlans = {
  Basic: { storageGiB: 10, networkRules: false, maxIpRules: 0, maxPrivateEndpoints: 0, maxTokens: 100 },
  Standard: { storageGiB: 100, networkRules: false, maxIpRules: 0, maxPrivateEndpoints: 0, maxTokens: 500 },
  Premium: {
    storageGiB: 500,
    networkRules: true,
    maxIpRules: 100,
    maxPrivateEndpoints: 200,
    maxTokens: 50000,
  },
};

/** ACR's wording, so people who know ACR recognise it. */
export const NETWORK_RULES_PREMIUM_ONLY =
  'Network rules are only supported for registries in the Premium SKU.';

/** The plan of a SKU; an unknown name is a caller error. */
export function planOf(plans: SkuPlans, sku: string): SkuPlan {
  const plan = (plans as Record<string, SkuPlan | undefined>)[sku];
  if (!plan) {
    throw new ManagementError('InvalidParameter', `SKU '${sku}' is not one of ${SKU_NAMES.join(', ')}.`, {
      target: 'sku.name',
    });
  }
  return plan;
}
