import { useState } from 'preact/hooks';
import { api, registryPath } from '../../api';
import type { ConnectionStatus, PrivateEndpointConnection } from '../../types';
import { ConfirmButton, LoadState, messageOf, Notice, useLoad, Table } from '../common';
import { isPremium, type Versioned } from './Networking';

/** The Private access tab: private endpoint connections and their approval. */
export function PrivateAccess(props: { versioned: Versioned }) {
  const { registry } = props.versioned;
  const { data, error, loading, reload } = useLoad(
    () =>
      api<{ value: PrivateEndpointConnection[] }>(
        'GET',
        registryPath(registry.name, 'privateEndpointConnections'),
      ).then((r) => r.body.value),
    [registry.name],
  );
  const [message, setMessage] = useState<{ kind: 'error' | 'success'; text: string }>();

  const setState = async (pe: PrivateEndpointConnection, status: ConnectionStatus) => {
    try {
      await api('PUT', registryPath(registry.name, 'privateEndpointConnections', pe.name), {
        body: {
          properties: {
            privateLinkServiceConnectionState: { status, description: `${status} in the portal` },
          },
        },
      });
      setMessage({ kind: 'success', text: `Connection '${pe.name}' is now ${status}.` });
    } catch (e) {
      setMessage({ kind: 'error', text: messageOf(e) });
    }
    reload();
  };
  const remove = async (pe: PrivateEndpointConnection) => {
    try {
      await api('DELETE', registryPath(registry.name, 'privateEndpointConnections', pe.name));
      setMessage({ kind: 'success', text: `Connection '${pe.name}' was removed and its listener closed.` });
    } catch (e) {
      setMessage({ kind: 'error', text: messageOf(e) });
    }
    reload();
  };

  return (
    <section aria-labelledby="private-heading">
      <h2 id="private-heading">Private endpoint connections</h2>
      {!isPremium(registry) && (
        <Notice kind="info">
          Private endpoints need the Premium SKU; this registry is {registry.sku.name}.
        </Notice>
      )}
      <p class="hint">
        Each connection has its own listener. Only an Approved connection serves requests, and the public
        access rules do not apply to it.
      </p>
      {message && <Notice kind={message.kind}>{message.text}</Notice>}
      <LoadState loading={loading && !data} error={error} what="connections" />
      {data && data.length === 0 && <p>There are no private endpoint connections.</p>}
      {data && data.length > 0 && (
        <Table columns={['Connection', 'Address', 'State', 'Description', 'Actions']}>
          {data.map((pe) => {
            const state = pe.properties.privateLinkServiceConnectionState;
            return (
              <tr key={pe.name}>
                <td data-label="Connection">{pe.name}</td>
                <td data-label="Address" class="mono">
                  {pe.properties.privateEndpoint.address}
                </td>
                <td data-label="State">
                  <span class={`state state-${state.status.toLowerCase()}`}>{state.status}</span>
                </td>
                <td data-label="Description">{state.description ?? ''}</td>
                <td data-label="Actions">
                  <span class="row-actions">
                    <button
                      type="button"
                      disabled={state.status === 'Approved'}
                      onClick={() => setState(pe, 'Approved')}
                      aria-label={`Approve ${pe.name}`}
                    >
                      Approve
                    </button>
                    <button
                      type="button"
                      disabled={state.status === 'Rejected'}
                      onClick={() => setState(pe, 'Rejected')}
                      aria-label={`Reject ${pe.name}`}
                    >
                      Reject
                    </button>
                    <ConfirmButton
                      label="Remove"
                      confirmLabel={`Remove ${pe.name}`}
                      onConfirm={() => remove(pe)}
                    />
                  </span>
                </td>
              </tr>
            );
          })}
        </Table>
      )}
      {isPremium(registry) && <CreateConnection registry={registry.name} onCreated={reload} />}
    </section>
  );
}

function CreateConnection(props: { registry: string; onCreated: () => void }) {
  const [name, setName] = useState('');
  const [address, setAddress] = useState('');
  const [error, setError] = useState<string>();
  const submit = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    try {
      await api('PUT', registryPath(props.registry, 'privateEndpointConnections', name), {
        body: { properties: { privateEndpoint: { address } } },
      });
      setName('');
      setAddress('');
      props.onCreated();
    } catch (e) {
      setError(messageOf(e));
      (document.getElementById('pe-name') as HTMLInputElement | null)?.focus();
    }
  };
  return (
    <form class="card" onSubmit={submit} aria-labelledby="pe-create-heading">
      <h3 id="pe-create-heading">Add a private endpoint</h3>
      {error && <Notice kind="error">{error}</Notice>}
      <div class="form-row">
        <p class="field">
          <label for="pe-name">Connection name</label>
          <input id="pe-name" value={name} required onInput={(e) => setName(e.currentTarget.value)} />
        </p>
        <p class="field">
          <label for="pe-address">Listener address</label>
          <input
            id="pe-address"
            class="mono"
            value={address}
            required
            placeholder="127.0.0.1:5101"
            onInput={(e) => setAddress(e.currentTarget.value)}
          />
        </p>
      </div>
      <button type="submit">Add (Pending until approved)</button>
    </form>
  );
}
