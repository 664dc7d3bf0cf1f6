import { useState } from 'preact/hooks';
import { api, ApiError, registryPath } from '../../api';
import { href, navigate } from '../../router';
import type { Descriptor, ManifestDetails, TagInfo } from '../../types';
import {
  ConfirmButton,
  formatBytes,
  LoadState,
  messageOf,
  Notice,
  shortDigest,
  useLoad,
  Table,
} from '../common';
import { NetworkRefused } from './List';

// An image's artifact type is its config's media type; only other types are worth showing.
const IMAGE_CONFIG = 'application/vnd.oci.image.config.v1+json';

/** One repository: its tags, and the manifest a tag (or digest) names. */
export function RepositoryDetails(props: {
  name: string;
  repository: string;
  reference: string | undefined;
}) {
  const { data, error, loading, reload } = useLoad(
    () =>
      api<{ value: TagInfo[] }>(
        'GET',
        registryPath(props.name, 'repositories', props.repository, 'tags'),
      ).then((r) => r.body.value),
    [props.name, props.repository],
  );
  const [message, setMessage] = useState<{ kind: 'error' | 'success'; text: string }>();
  if (error instanceof ApiError && error.code === 'NetworkAccessDenied')
    return <NetworkRefused error={error} />;
  const untag = async (tag: string) => {
    try {
      await api('DELETE', registryPath(props.name, 'repositories', props.repository, 'tags', tag));
      setMessage({ kind: 'success', text: `Tag '${tag}' was removed; the manifest stays.` });
      if (props.reference === tag) navigate('registries', props.name, 'repositories', props.repository);
    } catch (e) {
      setMessage({ kind: 'error', text: messageOf(e) });
    }
    reload();
  };
  return (
    <>
      <p class="crumb">
        <a href={href('registries', props.name, 'repositories')}>Repositories</a> /
      </p>
      <h1 class="mono">{props.repository}</h1>
      {message && <Notice kind={message.kind}>{message.text}</Notice>}
      <LoadState loading={loading && !data} error={error} what="tags" />
      {data && data.length === 0 && <p>This repository has no tags.</p>}
      {data && data.length > 0 && (
        <section aria-labelledby="tags-heading">
          <h2 id="tags-heading">Tags</h2>
          <Table columns={['Tag', 'Digest', 'Actions']}>
            {data.map((t) => (
              <tr key={t.name} aria-current={props.reference === t.name ? 'true' : undefined}>
                <td data-label="Tag">
                  <a href={href('registries', props.name, 'repositories', props.repository, t.name)}>
                    {t.name}
                  </a>
                </td>
                <td data-label="Digest" class="mono" title={t.digest}>
                  {shortDigest(t.digest)}
                </td>
                <td data-label="Actions">
                  <ConfirmButton
                    label="Delete tag"
                    confirmLabel={`Delete tag ${t.name}`}
                    onConfirm={() => untag(t.name)}
                  />
                </td>
              </tr>
            ))}
          </Table>
        </section>
      )}
      {props.reference && (
        <Manifest
          name={props.name}
          repository={props.repository}
          reference={props.reference}
          onDeleted={(digest) => {
            setMessage({
              kind: 'success',
              text: `Manifest ${shortDigest(digest)} and its tags were deleted.`,
            });
            navigate('registries', props.name, 'repositories', props.repository);
            reload();
          }}
        />
      )}
    </>
  );
}

function Manifest(props: {
  name: string;
  repository: string;
  reference: string;
  onDeleted: (digest: string) => void;
}) {
  const path = registryPath(props.name, 'repositories', props.repository, 'manifests', props.reference);
  const { data, error, loading } = useLoad(
    () => api<ManifestDetails>('GET', path).then((r) => r.body),
    [path],
  );
  const [deleteError, setDeleteError] = useState<string>();
  const remove = async (digest: string) => {
    try {
      await api('DELETE', registryPath(props.name, 'repositories', props.repository, 'manifests', digest));
      props.onDeleted(digest);
    } catch (e) {
      setDeleteError(messageOf(e));
    }
  };
  return (
    <section aria-labelledby="manifest-heading" class="card">
      <h2 id="manifest-heading">Manifest of {props.reference}</h2>
      <LoadState loading={loading && !data} error={error} what="the manifest" />
      {deleteError && <Notice kind="error">{deleteError}</Notice>}
      {data && (
        <>
          <dl class="facts">
            <dt>Digest</dt>
            <dd class="mono break">{data.digest}</dd>
            <dt>Media type</dt>
            <dd class="mono break">{data.mediaType}</dd>
            {data.artifactType && data.artifactType !== IMAGE_CONFIG && (
              <>
                <dt>Artifact type</dt>
                <dd class="mono break">{data.artifactType}</dd>
              </>
            )}
            <dt>Manifest size</dt>
            <dd>{formatBytes(data.size)}</dd>
            {data.layers && (
              <>
                <dt>Image size</dt>
                <dd>
                  {formatBytes(data.totalSize)} ({data.layers.length} layer
                  {data.layers.length === 1 ? '' : 's'})
                </dd>
              </>
            )}
          </dl>
          {data.manifests && (
            <DescriptorTable
              title="Platforms"
              rows={data.manifests}
              first={(d) =>
                d.platform
                  ? [d.platform.os, d.platform.architecture, d.platform.variant].filter(Boolean).join('/')
                  : (d.artifactType ?? '—')
              }
              link={(d) => href('registries', props.name, 'repositories', props.repository, d.digest)}
            />
          )}
          <DescriptorTable
            title="Referrers"
            rows={data.referrers}
            first={(d) => d.artifactType ?? d.mediaType ?? '—'}
            link={(d) => href('registries', props.name, 'repositories', props.repository, d.digest)}
            empty="No signatures, SBOMs or other artifacts refer to this manifest."
          />
          <ConfirmButton
            label="Delete manifest"
            confirmLabel={`Delete manifest ${shortDigest(data.digest)} and its tags`}
            onConfirm={() => remove(data.digest)}
          />
        </>
      )}
    </section>
  );
}

function DescriptorTable(props: {
  title: string;
  rows: Descriptor[];
  first: (d: Descriptor) => string;
  link: (d: Descriptor) => string;
  empty?: string;
}) {
  return (
    <>
      <h3>{props.title}</h3>
      {props.rows.length === 0 ? (
        <p class="muted">{props.empty ?? 'None.'}</p>
      ) : (
        <Table columns={[props.title === 'Platforms' ? 'Platform' : 'Type', 'Digest', 'Size']}>
          {props.rows.map((d) => (
            <tr key={d.digest}>
              <td data-label={props.title === 'Platforms' ? 'Platform' : 'Type'}>{props.first(d)}</td>
              <td data-label="Digest" class="mono" title={d.digest}>
                <a href={props.link(d)}>{shortDigest(d.digest)}</a>
              </td>
              <td data-label="Size">{formatBytes(d.size)}</td>
            </tr>
          ))}
        </Table>
      )}
    </>
  );
}
