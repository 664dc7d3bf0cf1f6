import { useEffect, useRef, useState } from 'preact/hooks';
import { api, setSignedOutHandler } from './api';
import { AccessKeys } from './components/access/AccessKeys';
import { Networking } from './components/networking/Networking';
import { RegistryDetails } from './components/registries/Details';
import { RegistryList } from './components/registries/List';
import { RepositoryDetails } from './components/repositories/Details';
import { RepositoryList } from './components/repositories/List';
import { SignIn } from './components/session/SignIn';
import { href, useRoute } from './router';
import type { Me } from './types';

/** The portal: signs in, then routes to a page per resource. */
export function App() {
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  useEffect(() => {
    setSignedOutHandler(() => setMe(null));
    api<Me>('GET', '/api/whoami').then(
      (r) => setMe(r.body),
      () => setMe(null),
    );
  }, []);
  if (me === undefined) return <p class="muted page">Loading…</p>;
  if (me === null) return <SignIn onSignedIn={setMe} />;
  const signOut = async () => {
    await api('DELETE', '/api/sessions/current').catch(() => undefined);
    setMe(null);
  };
  return (
    <>
      <header class="topbar">
        <a class="brand" href="#/">
          Berth
        </a>
        <span class="who">
          <span class="muted">Signed in as</span> <strong>{me.name}</strong>
        </span>
        <button type="button" onClick={signOut}>
          Sign out
        </button>
      </header>
      <Routes me={me} />
    </>
  );
}

const SECTIONS = [
  ['overview', 'Overview'],
  ['repositories', 'Repositories'],
  ['networking', 'Networking'],
  ['access-keys', 'Access keys'],
] as const;

function Routes({ me }: { me: Me }) {
  const route = useRoute();
  // After navigating, focus goes to the new page's heading, so keyboard and screen-reader users start
  // there (as after a full page load) instead of on the link they left behind.
  const path = route.join('/');
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    const heading = document.querySelector<HTMLElement>('#main h1');
    if (heading) {
      heading.tabIndex = -1;
      heading.focus();
    }
  }, [path]);
  if (route[0] !== 'registries' || !route[1])
    return (
      <main class="page" id="main">
        <RegistryList me={me} />
      </main>
    );
  const name = route[1];
  const section = route[2] ?? 'overview';
  let page;
  if (section === 'networking') page = <Networking name={name} me={me} tab={route[3] ?? 'public'} />;
  else if (section === 'repositories' && route[3])
    page = <RepositoryDetails name={name} repository={route[3]} reference={route[4]} />;
  else if (section === 'repositories') page = <RepositoryList name={name} />;
  else if (section === 'access-keys') page = <AccessKeys name={name} me={me} />;
  else page = <RegistryDetails name={name} />;
  return (
    <div class="registry-layout">
      <nav class="sidenav" aria-label="Registry">
        <p class="crumb">
          <a href="#/">All registries</a>
        </p>
        <p class="registry-name">{name}</p>
        <ul>
          {SECTIONS.map(([id, label]) => (
            <li key={id}>
              <a href={href('registries', name, id)} aria-current={section === id ? 'page' : undefined}>
                {label}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <main class="page" id="main">
        {page}
      </main>
    </div>
  );
}
