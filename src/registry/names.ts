import { OciError } from '../errors/oci.js';

// Grammars from the OCI Distribution Specification v1.1, "Pulling manifests".
const NAME_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const NAME_RE = new RegExp(`^${NAME_COMPONENT}(?:/${NAME_COMPONENT})*$`);
const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const DIGEST_RE = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
/** Distribution caps a repository name at 255 characters, hostname included; we cap the path alone. */
export const MAX_NAME_LENGTH = 255;

export type DigestAlgorithm = 'sha256' | 'sha512';
const ENCODED_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };

/** A validated `algorithm:encoded` digest. */
export interface Digest {
  algorithm: DigestAlgorithm;
  encoded: string;
  /** `algorithm:encoded`, the canonical text. */
  text: string;
}

/** True when `name` is a valid repository name. */
export function isValidRepositoryName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_NAME_LENGTH && NAME_RE.test(name);
}

/** Throws NAME_INVALID unless `name` is a valid repository name. */
export function assertRepositoryName(name: string): string {
  if (!isValidRepositoryName(name)) {
    throw new OciError('NAME_INVALID', `invalid repository name '${truncate(name)}'`, {
      name: truncate(name),
    });
  }
  return name;
}

/** True when `tag` matches the spec's tag grammar. */
export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

/** True when `reference` looks like a digest rather than a tag (it contains a colon). */
export function isDigestReference(reference: string): boolean {
  return reference.includes(':');
}

/** Parses a digest, throwing DIGEST_INVALID for bad syntax or an unsupported algorithm. */
export function parseDigest(text: string): Digest {
  if (!DIGEST_RE.test(text)) {
    throw new OciError('DIGEST_INVALID', `invalid digest '${truncate(text)}'`, { digest: truncate(text) });
  }
  const colon = text.indexOf(':');
  const algorithm = text.slice(0, colon);
  const encoded = text.slice(colon + 1);
  if (algorithm !== 'sha256' && algorithm !== 'sha512') {
    throw new OciError('DIGEST_INVALID', `unsupported digest algorithm '${truncate(algorithm)}'`, {
      digest: truncate(text),
    });
  }
  if (encoded.length !== ENCODED_LENGTH[algorithm] || !/^[a-f0-9]+$/.test(encoded)) {
    throw new OciError('DIGEST_INVALID', `invalid ${algorithm} digest '${truncate(text)}'`, {
      digest: truncate(text),
    });
  }
  return { algorithm, encoded, text };
}

/** A manifest reference: a tag or a digest. */
export type Reference = { kind: 'tag'; tag: string } | { kind: 'digest'; digest: Digest };

/** Parses the `<reference>` path segment of a manifest URL. */
export function parseReference(reference: string): Reference {
  if (isDigestReference(reference)) return { kind: 'digest', digest: parseDigest(reference) };
  if (!isValidTag(reference)) {
    throw new OciError('TAG_INVALID', `invalid tag '${truncate(reference)}'`, { tag: truncate(reference) });
  }
  return { kind: 'tag', tag: reference };
}

function truncate(value: string): string {
  return value.length > 300 ? `${value.slice(0, 300)}…` : value;
}
