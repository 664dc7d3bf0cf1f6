import { OciError } from '../errors/oci.js';
import {
  IMAGE_MANIFEST_TYPES,
  INDEX_TYPES,
  DOCKER_SCHEMA1_TYPES,
  MANIFEST_TYPES,
  MediaType,
} from './media-types.js';
import { parseDigest } from './names.js';

/** An OCI content descriptor, validated. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  artifactType?: string;
}

/** What a manifest references and declares, as far as storage and the referrers API care. */
export interface ParsedManifest {
  mediaType: string;
  /** Blobs (config and layers) that must exist in the repository. */
  blobs: Descriptor[];
  /** Child manifests (of an index) that must exist in the repository. */
  manifests: Descriptor[];
  subject?: Descriptor;
  /** `artifactType`, or for an image manifest without one, its config media type (spec: referrers). */
  artifactType?: string;
  annotations?: Record<string, string>;
}

// RFC 6838 type/subtype, with optional parameters that OCI does not use but tolerates.
const MEDIA_TYPE_RE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;

/**
 * Parses and validates manifest bytes. `contentType` is the request's Content-Type; when the
 * manifest also carries `mediaType` the two must agree.
 */
export function parseManifest(content: Buffer, contentType: string | undefined): ParsedManifest {
  let document: unknown;
  try {
    document = JSON.parse(content.toString('utf8'));
  } catch {
    throw invalid('manifest is not valid JSON');
  }
  if (!isObject(document)) throw invalid('manifest must be a JSON object');

  const declared = document.mediaType;
  if (declared !== undefined && typeof declared !== 'string') throw invalid('mediaType must be a string');
  const headerType = contentType?.split(';')[0]?.trim().toLowerCase() || undefined;
  const mediaType = resolveMediaType(document, declared, headerType);

  if (document.schemaVersion !== 2) throw invalid('schemaVersion must be 2');

  const parsed: ParsedManifest = { mediaType, blobs: [], manifests: [] };
  if (IMAGE_MANIFEST_TYPES.has(mediaType)) {
    if (document.manifests !== undefined) throw invalid('an image manifest cannot have "manifests"');
    const config = descriptor(document.config, 'config');
    const layers = descriptorList(document.layers, 'layers', mediaType === MediaType.DockerManifest);
    parsed.blobs = [config, ...layers.filter((layer) => !isForeign(layer))];
    const artifactType = optionalString(document.artifactType, 'artifactType');
    if (artifactType !== undefined) mediaTypeOf(artifactType, 'artifactType');
    if (
      artifactType === undefined &&
      config.mediaType === MediaType.OciEmpty &&
      mediaType === MediaType.OciManifest
    ) {
      // Spec: an artifact with the empty config MUST set artifactType.
      throw invalid('artifactType must be set when config.mediaType is application/vnd.oci.empty.v1+json');
    }
    parsed.artifactType = artifactType ?? config.mediaType;
  } else {
    if (document.config !== undefined || document.layers !== undefined) {
      throw invalid('an index cannot have "config" or "layers"');
    }
    parsed.manifests = descriptorList(document.manifests, 'manifests', false);
    const artifactType = optionalString(document.artifactType, 'artifactType');
    if (artifactType !== undefined) parsed.artifactType = mediaTypeOf(artifactType, 'artifactType');
  }
  if (document.subject !== undefined) parsed.subject = descriptor(document.subject, 'subject');
  const annotations = annotationsOf(document.annotations);
  if (annotations) parsed.annotations = annotations;
  return parsed;
}

function resolveMediaType(
  document: Record<string, unknown>,
  declared: string | undefined,
  headerType: string | undefined,
): string {
  for (const candidate of [declared, headerType]) {
    if (candidate !== undefined && DOCKER_SCHEMA1_TYPES.has(candidate)) {
      throw invalid('Docker schema 1 manifests are not supported; push schema 2 or OCI');
    }
  }
  if (declared !== undefined) {
    if (!MANIFEST_TYPES.has(declared)) throw invalid(`unsupported manifest media type '${declared}'`);
    if (headerType !== undefined && MANIFEST_TYPES.has(headerType) && headerType !== declared) {
      throw invalid(`Content-Type '${headerType}' does not match the manifest's mediaType '${declared}'`);
    }
    return declared;
  }
  if (headerType !== undefined && MANIFEST_TYPES.has(headerType)) {
    // Docker types always carry mediaType; only OCI may omit it.
    if (!headerType.startsWith('application/vnd.oci.')) throw invalid('manifest is missing mediaType');
    return headerType;
  }
  // No usable declaration anywhere: infer the OCI type from the shape, as the image-spec allows.
  if (Array.isArray(document.manifests)) return MediaType.OciIndex;
  if (document.config !== undefined) return MediaType.OciManifest;
  throw invalid('cannot determine the manifest media type; set Content-Type or mediaType');
}

function descriptor(value: unknown, field: string): Descriptor {
  if (!isObject(value)) throw invalid(`${field} must be a descriptor object`);
  const mediaType = value.mediaType;
  if (typeof mediaType !== 'string') throw invalid(`${field}.mediaType must be a string`);
  mediaTypeOf(mediaType, `${field}.mediaType`);
  if (typeof value.digest !== 'string') throw invalid(`${field}.digest must be a string`);
  let digest: string;
  try {
    digest = parseDigest(value.digest).text;
  } catch {
    throw invalid(`${field}.digest '${value.digest.slice(0, 200)}' is not a valid digest`);
  }
  const size = value.size;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw invalid(`${field}.size must be a non-negative integer`);
  }
  const result: Descriptor = { mediaType, digest, size };
  if (value.urls !== undefined) {
    if (!Array.isArray(value.urls) || !value.urls.every((u) => typeof u === 'string')) {
      throw invalid(`${field}.urls must be an array of strings`);
    }
    result.urls = value.urls as string[];
  }
  const artifactType = optionalString(value.artifactType, `${field}.artifactType`);
  if (artifactType !== undefined) result.artifactType = artifactType;
  return result;
}

function descriptorList(value: unknown, field: string, required: boolean): Descriptor[] {
  if (value === undefined && !required) return [];
  if (!Array.isArray(value)) throw invalid(`${field} must be an array`);
  return value.map((entry, index) => descriptor(entry, `${field}[${index}]`));
}

/** Foreign / non-distributable layers live elsewhere (their `urls`), so they need not be in the registry. */
function isForeign(layer: Descriptor): boolean {
  return (
    (layer.mediaType === 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip' ||
      layer.mediaType.startsWith('application/vnd.oci.image.layer.nondistributable.')) &&
    (layer.urls?.length ?? 0) > 0
  );
}

function mediaTypeOf(value: string, field: string): string {
  if (!MEDIA_TYPE_RE.test(value))
    throw invalid(`${field} '${value.slice(0, 200)}' is not a valid media type`);
  return value;
}

function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw invalid(`${field} must be a string`);
  return value;
}

function annotationsOf(value: unknown): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value) || !Object.values(value).every((v) => typeof v === 'string')) {
    throw invalid('annotations must be an object of strings');
  }
  return value as Record<string, string>;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(message: string): OciError {
  return new OciError('MANIFEST_INVALID', message);
}

export { INDEX_TYPES, IMAGE_MANIFEST_TYPES };
