import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, registryPath } from '../../api';
import type { Me, Registry, RegistryCredentials } from '../../types';
import { ConfirmButton, CopyLine, LoadState, messageOf, Notice, useLoad, Table } from '../common';

interface ApiKeyInfo {
  id: string;
  name: string;
  createdAt: string;
  roles: { registry: string; role: string }[];
}

/** Access keys (the admin user) and role assignments on the registry, as far as the API offers them. */
export function AccessKeys(props: { name: string; me: Me }) {
  const { data, error, loading, reload } = useLoad(async () => {
    const registry = await api<Registry>('GET', registryPath(props.name));
    let credentials: RegistryCredentials | undefined;
    if (registry.body.properties.adminUserEnabled) {
      credentials = (await api<RegistryCredentials>('POST', registryPath(props.name, 'listCredentials')))
        .body;
    }
    return { registry: registry.body, etag: registry.etag, credentials };
  }, [props.name]);
  const [message, setMessage] = useState<{ kind: 'error' | 'success'; text: string }>();
  // The box follows the click at once; the server's answer (reload) then confirms or undoes it.
  const [adminEnabled, setAdminEnabled] = useState<boolean>();
  useEffect(() => setAdminEnabled(undefined), [data]);
  const enabledNow = adminEnabled ?? data?.registry.properties.adminUserEnabled === true;

  const setAdmin = async (enabled: boolean) => {
    setAdminEnabled(enabled);
    try {
      await api('PATCH', registryPath(props.name), {
        body: { properties: { adminUserEnabled: enabled } },
        ...(data?.etag ? { ifMatch: data.etag } : {}),
      });
      setMessage({
        kind: 'success',
        text: enabled ? 'The admin user is enabled.' : 'The admin user is disabled.',
      });
    } catch (e) {
      setMessage({ kind: 'error', text: messageOf(e) });
    }
    reload();
  };
  // The regenerated passwords come back in the answer, so they show together with the message.
  const [fresh, setFresh] = useState<RegistryCredentials>();
  useEffect(() => setFresh(undefined), [data]);
  const credentials = fresh ?? data?.credentials;
  const regenerate = async (which: 'password' | 'password2') => {
    try {
      const result = await api<RegistryCredentials>(
        'POST',
        registryPath(props.name, 'regenerateCredential'),
        {
          body: { name: which },
        },
      );
      setFresh(result.body);
      setMessage({ kind: 'success', text: `${which} was regenerated; the old one no longer works.` });
    } catch (e) {
      setMessage({ kind: 'error', text: messageOf(e) });
    }
  };

  return (
    <>
      <h1>Access keys</h1>
      {message && <Notice kind={message.kind}>{message.text}</Notice>}
      <LoadState loading={loading && !data} error={error} what="access keys" />
      {data && (
        <section aria-labelledby="admin-heading">
          <h2 id="admin-heading">Admin user</h2>
          <label class="checkbox">
            <input type="checkbox" checked={enabledNow} onChange={(e) => setAdmin(e.currentTarget.checked)} />
            Enable the admin user (a user name and two passwords for the data plane)
          </label>
          {credentials && (
            <>
              <CopyLine label="Username" text={credentials.username} />
              {credentials.passwords.map((p) => (
                <Secret key={p.name} label={p.name} value={p.value} onRegenerate={() => regenerate(p.name)} />
              ))}
            </>
          )}
        </section>
      )}
      <RoleAssignments name={props.name} me={props.me} />
    </>
  );
}

function Secret(props: { label: string; value: string; onRegenerate: () => void }) {
  const [shown, setShown] = useState(false);
  const id = `secret-${props.label}`;
  return (
    <div class="copy-line">
      <label for={id}>{props.label}</label>
      <div class="copy-row">
        {shown ? (
          <input id={id} class="mono" readOnly type="text" value={props.value} />
        ) : (
          <input id={id} class="mono" readOnly type="password" value={props.value} />
        )}
        <button type="button" onClick={() => setShown(!shown)} aria-pressed={shown}>
          {shown ? 'Hide' : 'Show'}
        </button>
        <button
          type="button"
          onClick={() => navigator.clipboard.writeText(props.value)}
          aria-label={`Copy ${props.label}`}
        >
          Copy
        </button>
        <ConfirmButton
          label="Regenerate"
          confirmLabel={`Regenerate ${props.label}`}
          onConfirm={props.onRegenerate}
        />
      </div>
    </div>
  );
}

/** Who holds which role here: the caller's own, the API keys' (Owner on all only), and an assign form. */
function RoleAssignments(props: { name: string; me: Me }) {
  const registry = props.name.toLowerCase();
  const globalOwner = props.me.roles.some((r) => r.registry === '*' && r.role === 'Owner');
  const keys = useLoad(async () => {
    if (!globalOwner) return undefined;
    const { body } = await api<{ value: ApiKeyInfo[] }>('GET', '/api/apiKeys');
    return body.value.filter((k) => k.roles.some((r) => r.registry === registry || r.registry === '*'));
  }, [registry, globalOwner]);
  const [principal, setPrincipal] = useState('');
  const [role, setRole] = useState('Reader');
  const [result, setResult] = useState<{ kind: 'error' | 'success'; text: string }>();
  const assign = async (event: Event) => {
    event.preventDefault();
    try {
      await api('PUT', registryPath(props.name, 'roleAssignments', principal.trim()), { body: { role } });
      setResult({
        kind: 'success',
        text: `'${principal.trim()}' now has the ${role} role on ${props.name}.`,
      });
      setPrincipal('');
      keys.reload();
    } catch (e) {
      setResult({ kind: 'error', text: messageOf(e) });
      document.getElementById('assign-principal')?.focus();
    }
  };
  const mine = props.me.roles.filter((r) => r.registry === registry || r.registry === '*');
  return (
    <section aria-labelledby="roles-heading">
      <h2 id="roles-heading">Role assignments</h2>
      <p>
        You ({props.me.name}) have:{' '}
        {mine.map((r) => `${r.role} on ${r.registry === '*' ? 'all registries' : r.registry}`).join(', ')}.
      </p>
      {keys.error instanceof ApiError ? <Notice kind="error">{keys.error.message}</Notice> : null}
      {keys.data && keys.data.length > 0 && (
        <Table columns={['API key', 'Role here', 'Created']}>
          {keys.data.map((k) => (
            <tr key={k.id}>
              <td data-label="API key">{k.name}</td>
              <td data-label="Role here">
                {k.roles
                  .filter((r) => r.registry === registry || r.registry === '*')
                  .map((r) => `${r.role}${r.registry === '*' ? ' (all registries)' : ''}`)
                  .join(', ')}
              </td>
              <td data-label="Created">{new Date(k.createdAt).toLocaleDateString()}</td>
            </tr>
          ))}
        </Table>
      )}
      <form class="card" onSubmit={assign}>
        <h3>Assign a role</h3>
        {result && <Notice kind={result.kind}>{result.text}</Notice>}
        <div class="form-row">
          <p class="field">
            <label for="assign-principal">User or API key (name or id)</label>
            <input
              id="assign-principal"
              value={principal}
              required
              onInput={(e) => setPrincipal(e.currentTarget.value)}
            />
          </p>
          <p class="field">
            <label for="assign-role">Role</label>
            <select id="assign-role" value={role} onChange={(e) => setRole(e.currentTarget.value)}>
              <option>Reader</option>
              <option>Contributor</option>
              <option>Owner</option>
            </select>
          </p>
        </div>
        <button type="submit">Assign</button>
      </form>
    </section>
  );
}
