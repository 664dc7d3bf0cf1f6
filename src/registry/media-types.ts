/** Manifest media types Berth stores and serves. */
export const MediaType = {
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  OciEmpty: 'application/vnd.oci.empty.v1+json',
} as const;

/** Docker schema 1 manifests: deprecated, signed, and refused by Berth. */
export const DOCKER_SCHEMA1_TYPES = new Set([
  'application/vnd.docker.distribution.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
]);

export const IMAGE_MANIFEST_TYPES = new Set<string>([MediaType.OciManifest, MediaType.DockerManifest]);
export const INDEX_TYPES = new Set<string>([MediaType.OciIndex, MediaType.DockerManifestList]);
export const MANIFEST_TYPES = new Set<string>([...IMAGE_MANIFEST_TYPES, ...INDEX_TYPES]);
