import { api, ApiError, registryPath } from '../../api';
import type { Registry, RegistryEndpoints, RegistryUsage } from '../../types';
import { CopyLine, formatBytes, formatTime, LoadState, useLoad } from '../common';
import { publicAccessLabel } from './List';

/** The registry's overview: login server, SKU, dates, repositories, storage, and how to log in. */
export function RegistryDetails(props: { name: string }) {
  const { data, error, loading } = useLoad(async () => {
    const [registry, endpoints, usages, repositories] = await Promise.all([
      api<Registry>('GET', registryPath(props.name)).then((r) => r.body),
      api<RegistryEndpoints>('GET', registryPath(props.name, 'endpoints')).then((r) => r.body),
      api<{ value: RegistryUsage[] }>('GET', registryPath(props.name, 'usages')).then((r) => r.body.value),
      repositoryCount(props.name),
    ]);
    return { registry, endpoints, usages, repositories };
  }, [props.name]);
  return (
    <>
      <h1>{props.name}</h1>
      <LoadState loading={loading} error={error} what="the registry" />
      {data && <Overview {...data} />}
    </>
  );
}

/** The repository count as far as the caller may list them (the list obeys the network rules). */
async function repositoryCount(name: string): Promise<number | 'hidden' | 'many'> {
  try {
    const { body } = await api<{ value: string[] }>('GET', `${registryPath(name, 'repositories')}?n=1000`);
    return body.value.length >= 1000 ? 'many' : body.value.length;
  } catch (e) {
    if (e instanceof ApiError && e.code === 'NetworkAccessDenied') return 'hidden';
    throw e;
  }
}

function Overview(props: {
  registry: Registry;
  endpoints: RegistryEndpoints;
  usages: RegistryUsage[];
  repositories: number | 'hidden' | 'many';
}) {
  const { registry, endpoints } = props;
  const size = props.usages.find((u) => u.name === 'Size');
  const percent = size && size.limit > 0 ? Math.min(100, (size.currentValue / size.limit) * 100) : 0;
  const server = loginServerWithPort(registry.properties.loginServer, endpoints.dataEndpoints[0]);
  const plain = endpoints.dataEndpoints[0]?.startsWith('http:') ?? false;
  return (
    <>
      <dl class="facts">
        <dt>Login server</dt>
        <dd class="mono">{server}</dd>
        <dt>SKU</dt>
        <dd>{registry.sku.name}</dd>
        <dt>Created</dt>
        <dd>{formatTime(registry.properties.creationDate)}</dd>
        <dt>Public network access</dt>
        <dd>{publicAccessLabel(registry)}</dd>
        <dt>Repositories</dt>
        <dd>
          {props.repositories === 'hidden'
            ? 'Not visible from your network (see Networking)'
            : props.repositories === 'many'
              ? 'More than 1000'
              : props.repositories}
        </dd>
        <dt>Data endpoints</dt>
        <dd class="mono">{endpoints.dataEndpoints.join(', ')}</dd>
      </dl>
      {size && (
        <section aria-labelledby="storage-heading">
          <h2 id="storage-heading">Storage</h2>
          <label for="storage-meter">
            {formatBytes(size.currentValue)} used of {formatBytes(size.limit)} ({percent.toFixed(1)}%)
          </label>
          <meter
            id="storage-meter"
            min={0}
            max={size.limit}
            value={size.currentValue}
            high={size.limit * 0.9}
          />
        </section>
      )}
      <section aria-labelledby="login-heading">
        <h2 id="login-heading">Log in</h2>
        <CopyLine label="docker login" text={`docker login ${server}`} />
        <CopyLine label="podman login" text={`podman login ${plain ? '--tls-verify=false ' : ''}${server}`} />
        {plain && (
          <p class="hint">
            This Berth serves plain HTTP: docker needs <span class="mono">{server}</span> in its
            insecure-registries list.
          </p>
        )}
      </section>
    </>
  );
}

/** `<name>.<domain>:<port>` when the data plane listens on a port clients must name. */
function loginServerWithPort(loginServer: string, endpoint: string | undefined): string {
  if (!endpoint) return loginServer;
  try {
    const url = new URL(endpoint);
    return url.port ? `${loginServer}:${url.port}` : loginServer;
  } catch {
    return loginServer;
  }
}
