import { useRef, useState } from 'preact/hooks';
import { api } from '../../api';
import type { Me } from '../../types';
import { messageOf, Notice } from '../common';

/** Sign in with a user name and password, or an API key; the server answers with a session cookie. */
export function SignIn(props: { onSignedIn: (me: Me) => void }) {
  const [useKey, setUseKey] = useState(false);
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const first = useRef<HTMLInputElement>(null);
  const submit = async (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const body = useKey
      ? { apiKey: String(form.get('apiKey') ?? '') }
      : { username: String(form.get('username') ?? ''), password: String(form.get('password') ?? '') };
    setBusy(true);
    setError(undefined);
    try {
      const result = await api<Me>('POST', '/api/sessions', { body });
      props.onSignedIn(result.body);
    } catch (e) {
      setError(messageOf(e));
      first.current?.focus();
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="signin" id="main">
      <h1>Sign in to Berth</h1>
      <form onSubmit={submit} class="card">
        {error && <Notice kind="error">{error}</Notice>}
        {useKey ? (
          <p class="field">
            <label for="apiKey">API key</label>
            <input id="apiKey" name="apiKey" ref={first} type="password" required autoComplete="off" />
          </p>
        ) : (
          <>
            <p class="field">
              <label for="username">User name</label>
              <input id="username" name="username" ref={first} required autoComplete="username" />
            </p>
            <p class="field">
              <label for="password">Password</label>
              <input id="password" name="password" type="password" required autoComplete="current-password" />
            </p>
          </>
        )}
        <div class="actions">
          <button type="submit" class="primary" disabled={busy}>
            {busy ? 'Signing in…' : 'Sign in'}
          </button>
          <button type="button" class="link" onClick={() => setUseKey(!useKey)}>
            {useKey ? 'Use a user name and password' : 'Use an API key'}
          </button>
        </div>
      </form>
    </main>
  );
}
