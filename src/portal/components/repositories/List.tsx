import { useState } from 'preact/hooks';
import { api, ApiError, registryPath } from '../../api';
import { href } from '../../router';
import { LoadState, Notice, useLoad } from '../common';

const PAGE = 20;

/** A registry's repositories, a page at a time (the API pages by the last name seen). */
export function RepositoryList(props: { name: string }) {
  // The `last` of each page seen so far, so Previous goes back without the API paging backwards.
  const [pages, setPages] = useState<string[]>(['']);
  const last = pages[pages.length - 1] ?? '';
  const { data, error, loading } = useLoad(async () => {
    const query = `?n=${PAGE + 1}${last ? `&last=${encodeURIComponent(last)}` : ''}`;
    const { body } = await api<{ value: string[] }>(
      'GET',
      `${registryPath(props.name, 'repositories')}${query}`,
    );
    return { names: body.value.slice(0, PAGE), more: body.value.length > PAGE };
  }, [props.name, last]);
  if (error instanceof ApiError && error.code === 'NetworkAccessDenied')
    return <NetworkRefused error={error} />;
  return (
    <>
      <h1>Repositories</h1>
      <LoadState loading={loading && !data} error={error} what="repositories" />
      {data && data.names.length === 0 && pages.length === 1 && (
        <p>This registry has no repositories yet. Push an image to create one.</p>
      )}
      {data && data.names.length > 0 && (
        <ul class="list" aria-label="Repositories">
          {data.names.map((repo) => (
            <li key={repo}>
              <a href={href('registries', props.name, 'repositories', repo)}>{repo}</a>
            </li>
          ))}
        </ul>
      )}
      <div class="actions">
        <button type="button" disabled={pages.length === 1} onClick={() => setPages(pages.slice(0, -1))}>
          Previous page
        </button>
        <button
          type="button"
          disabled={!data?.more}
          onClick={() => data && setPages([...pages, data.names[data.names.length - 1] ?? ''])}
        >
          Next page
        </button>
      </div>
    </>
  );
}

/** What ACR shows too: content is not listed to a network the registry's rules refuse. */
export function NetworkRefused(props: { error: ApiError }) {
  return (
    <>
      <h1>Repositories</h1>
      <Notice kind="warning">
        <p>
          <strong>Repositories can't be listed from your network.</strong> The registry's network rules refuse
          the address you are browsing from, and they apply to viewing content in the portal too.
        </p>
        <p>{props.error.message}</p>
        <p>To see them, allow your client IP address under Networking, or browse from an allowed network.</p>
      </Notice>
    </>
  );
}
