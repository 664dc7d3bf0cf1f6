import { useEffect, useState } from 'preact/hooks';
import { api, registryPath } from '../../api';
import { href } from '../../router';
import type { Me, Registry, RegistryUsage } from '../../types';
import { LoadState, useLoad } from '../common';
import { PrivateAccess } from './PrivateAccess';
import { PublicAccess } from './PublicAccess';
import { RefusedTraffic } from './RefusedTraffic';

/** The registry resource with the ETag it came with, which a save sends back as If-Match. */
export interface Versioned {
  registry: Registry;
  etag: string | undefined;
}

const TABS = [
  ['public', 'Public access'],
  ['private', 'Private access'],
  ['refused', 'Refused traffic'],
] as const;

/** Networking, as ACR's portal has it, plus the refused traffic it cannot show. */
export function Networking(props: { name: string; me: Me; tab: string }) {
  const { data, error, loading, reload } = useLoad(async () => {
    const [resource, usages] = await Promise.all([
      api<Registry>('GET', registryPath(props.name)),
      api<{ value: RegistryUsage[] }>('GET', registryPath(props.name, 'usages')),
    ]);
    const limit = usages.body.value.find((u) => u.name === 'IPRules')?.limit ?? 0;
    return { versioned: { registry: resource.body, etag: resource.etag }, limit };
  }, [props.name]);
  const [current, setCurrent] = useState<Versioned>();
  useEffect(() => setCurrent(data?.versioned), [data]);
  const tab = TABS.some(([id]) => id === props.tab) ? props.tab : 'public';
  return (
    <>
      <h1>Networking</h1>
      <nav class="tabs" aria-label="Networking">
        {TABS.map(([id, label]) => (
          <a
            key={id}
            href={href('registries', props.name, 'networking', id)}
            aria-current={tab === id ? 'page' : undefined}
          >
            {label}
          </a>
        ))}
      </nav>
      <LoadState loading={loading && !current} error={error} what="network settings" />
      {current && data && tab === 'public' && (
        <PublicAccess
          versioned={current}
          limit={data.limit}
          clientIp={props.me.clientIp}
          onSaved={setCurrent}
          onReload={reload}
        />
      )}
      {current && tab === 'private' && <PrivateAccess versioned={current} />}
      {current && data && tab === 'refused' && (
        <RefusedTraffic versioned={current} limit={data.limit} onSaved={setCurrent} onReload={reload} />
      )}
    </>
  );
}

/** Whether the SKU has network features (the plan of a Premium registry). */
export function isPremium(registry: Registry): boolean {
  return registry.sku.name === 'Premium';
}

/** The sentence a failed conditional save shows: someone else saved first. */
export const CONFLICT_MESSAGE =
  'Someone else changed this registry after you opened this page, so your changes were not saved. ' +
  'Discard them to load the current settings, then make your change again.';
