import { useRef, useState } from 'preact/hooks';
import { api, ApiError, registryPath } from '../../api';
import { href, navigate } from '../../router';
import type { Me, Registry, SkuName } from '../../types';
import { formatTime, LoadState, messageOf, Notice, useLoad, Table } from '../common';

const NAME_RE = /^[A-Za-z0-9]{5,50}$/;

/** The registries the caller has a role on, and a form to create one. */
export function RegistryList(props: { me: Me }) {
  const { data, error, loading } = useLoad(
    () => api<{ value: Registry[] }>('GET', '/api/registries').then((r) => r.body.value),
    [],
  );
  const canCreate = props.me.roles.some(
    (r) => r.registry === '*' && (r.role === 'Owner' || r.role === 'Contributor'),
  );
  return (
    <>
      <h1>Registries</h1>
      <LoadState loading={loading} error={error} what="registries" />
      {data && data.length === 0 && <p>There are no registries you can see yet.</p>}
      {data && data.length > 0 && (
        <Table columns={['Name', 'Login server', 'SKU', 'Public access', 'Created']}>
          {data.map((r) => (
            <tr key={r.name}>
              <td data-label="Name">
                <a href={href('registries', r.name)}>{r.name}</a>
              </td>
              <td data-label="Login server" class="mono">
                {r.properties.loginServer}
              </td>
              <td data-label="SKU">{r.sku.name}</td>
              <td data-label="Public access">{publicAccessLabel(r)}</td>
              <td data-label="Created">{formatTime(r.properties.creationDate)}</td>
            </tr>
          ))}
        </Table>
      )}
      {canCreate && <CreateRegistry />}
    </>
  );
}

/** "All networks", "Selected networks" or "Disabled", as the Networking page names them. */
export function publicAccessLabel(registry: Registry): string {
  if (registry.properties.publicNetworkAccess === 'Disabled') return 'Disabled';
  return registry.properties.networkRuleSet?.defaultAction === 'Deny' ? 'Selected networks' : 'All networks';
}

function CreateRegistry() {
  const [name, setName] = useState('');
  const [sku, setSku] = useState<SkuName>('Premium');
  const [error, setError] = useState<string>();
  const [nameError, setNameError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const nameInput = useRef<HTMLInputElement>(null);
  const submit = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    if (!NAME_RE.test(name)) {
      setNameError('Use 5 to 50 letters and digits, nothing else.');
      nameInput.current?.focus();
      return;
    }
    setNameError(undefined);
    setBusy(true);
    try {
      const created = await api<Registry>('PUT', registryPath(name), { body: { sku: { name: sku } } });
      navigate('registries', created.body.name);
    } catch (e) {
      if (e instanceof ApiError && (e.code === 'RegistryNameInUse' || e.code === 'InvalidRegistryName')) {
        setNameError(e.message);
        nameInput.current?.focus();
      } else setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="card" aria-labelledby="create-heading">
      <h2 id="create-heading">Create a registry</h2>
      <form onSubmit={submit} noValidate>
        {error && <Notice kind="error">{error}</Notice>}
        <div class="form-row">
          <p class="field">
            <label for="registry-name">Registry name</label>
            <input
              id="registry-name"
              ref={nameInput}
              value={name}
              onInput={(e) => setName(e.currentTarget.value)}
              aria-invalid={nameError ? true : undefined}
              aria-describedby="registry-name-hint"
              autoComplete="off"
            />
            <span id="registry-name-hint" class={nameError ? 'field-error' : 'hint'}>
              {nameError ?? '5 to 50 letters and digits; the login server is <name>.<domain>.'}
            </span>
          </p>
          <p class="field">
            <label for="registry-sku">SKU</label>
            <select id="registry-sku" value={sku} onChange={(e) => setSku(e.currentTarget.value as SkuName)}>
              <option value="Basic">Basic</option>
              <option value="Standard">Standard</option>
              <option value="Premium">Premium (network rules, private endpoints)</option>
            </select>
          </p>
        </div>
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Creating…' : 'Create'}
        </button>
      </form>
    </section>
  );
}
