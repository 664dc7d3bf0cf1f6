import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';

/** OCI media types the layout uses. */
export const OciMediaType = {
  Index: 'application/vnd.oci.image.index.v1+json',
  Manifest: 'application/vnd.oci.image.manifest.v1+json',
  Config: 'application/vnd.oci.image.config.v1+json',
  LayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

/** An OCI content descriptor as written into manifests and `index.json`. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string; variant?: string };
  annotations?: Record<string, string>;
}

/** One platform's image inside the multi-arch layout, with everything a test may want to check. */
export interface PlatformImage {
  architecture: string;
  os: string;
  manifest: Descriptor;
  config: Descriptor;
  layer: Descriptor;
  /** Digest of the uncompressed layer tar, as listed in the config's `rootfs.diff_ids`. */
  diffId: string;
  /** The single regular file inside the layer. */
  file: { path: string; content: string };
}

/** What `writeMultiArchLayout` wrote. */
export interface MultiArchLayout {
  dir: string;
  /** The tag under which `index.json` names the image (`oci:<dir>:<tag>`). */
  tag: string;
  /** Descriptor of the image index that ties the platforms together. */
  index: Descriptor;
  platforms: PlatformImage[];
}

/** A regular file for `tarArchive`. */
export interface TarEntry {
  path: string;
  content: Buffer | string;
  mode?: number;
}

/** `sha256:<hex>` of some bytes. */
export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/**
 * A tar archive of regular files only (ustar headers, two zero blocks at the end). Timestamps and owners
 * are fixed so the same entries always give the same bytes, and therefore the same digests.
 */
export function tarArchive(entries: TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const content = typeof entry.content === 'string' ? Buffer.from(entry.content) : entry.content;
    blocks.push(ustarHeader(entry.path, content.length, entry.mode ?? 0o644));
    blocks.push(content);
    const padding = (512 - (content.length % 512)) % 512;
    if (padding > 0) blocks.push(Buffer.alloc(padding));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

function ustarHeader(path: string, size: number, mode: number): Buffer {
  const name = Buffer.from(path);
  if (name.length > 100) throw new Error(`tar path longer than 100 bytes: ${path}`);
  const header = Buffer.alloc(512);
  const octal = (value: number, width: number) => value.toString(8).padStart(width - 1, '0') + '\0';
  name.copy(header, 0);
  header.write(octal(mode, 8), 100, 'ascii');
  header.write(octal(0, 8), 108, 'ascii'); // uid
  header.write(octal(0, 8), 116, 'ascii'); // gid
  header.write(octal(size, 12), 124, 'ascii');
  header.write(octal(946684800, 12), 136, 'ascii'); // mtime: 2000-01-01T00:00:00Z
  header.write('        ', 148, 'ascii'); // checksum is computed with this field as spaces
  header.write('0', 156, 'ascii'); // typeflag: regular file
  header.write('ustar\0', 257, 'ascii');
  header.write('00', 263, 'ascii');
  header.write('root', 265, 'ascii');
  header.write('root', 297, 'ascii');
  let checksum = 0;
  for (const byte of header) checksum += byte;
  header.write(checksum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return header;
}

/** The regular files of a tar archive (ustar or GNU headers; other entry types are skipped). */
export function readTarEntries(archive: Buffer): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  let offset = 0;
  while (offset + 512 <= archive.length) {
    const header = archive.subarray(offset, offset + 512);
    if (header.every((byte) => byte === 0)) break;
    const field = (start: number, length: number) =>
      header
        .subarray(start, start + length)
        .toString('utf8')
        .replace(/\0.*$/s, '');
    const prefix = header.subarray(257, 262).toString('ascii') === 'ustar' ? field(345, 155) : '';
    const name = prefix ? `${prefix}/${field(0, 100)}` : field(0, 100);
    const size = parseInt(field(124, 12).trim() || '0', 8);
    const type = field(156, 1);
    const body = archive.subarray(offset + 512, offset + 512 + size);
    if (type === '0' || type === '') files.set(name.replace(/^\.\//, ''), body);
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

/** The regular files of a gzip'd tar layer. */
export function readLayerFiles(gzippedTar: Buffer): Map<string, Buffer> {
  return readTarEntries(gunzipSync(gzippedTar));
}

/** Writes a blob into `<dir>/blobs/sha256/` and returns its descriptor. */
function writeBlob(dir: string, mediaType: string, data: Buffer): Descriptor {
  const digest = sha256(data);
  writeFileSync(join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length)), data);
  return { mediaType, digest, size: data.length };
}

/** JSON bytes as a manifest or config is stored: compact, keys in the order given. */
function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

const PLATFORMS = [
  { architecture: 'amd64', os: 'linux' },
  { architecture: 'arm64', os: 'linux', variant: 'v8' },
] as const;

/**
 * Writes an OCI image layout into `dir`: `index.json` names (as `tag`) an image index of two platform
 * images, linux/amd64 and linux/arm64, each a manifest, an image config and one gzip'd tar layer holding
 * `/hello.txt`. Contents depend only on the architecture, so digests are the same on every run.
 */
export function writeMultiArchLayout(dir: string, tag = 'v1'): MultiArchLayout {
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(join(dir, 'oci-layout'), json({ imageLayoutVersion: '1.0.0' }));

  const platforms: PlatformImage[] = PLATFORMS.map((platform) => {
    const file = {
      path: 'hello.txt',
      content: `hello from berth e2e, ${platform.os}/${platform.architecture}\n`,
    };
    const tar = tarArchive([{ path: file.path, content: file.content }]);
    const diffId = sha256(tar);
    // level and header are fixed (Node writes mtime 0), so the gzip bytes are stable too.
    const layer = writeBlob(dir, OciMediaType.LayerGzip, gzipSync(tar, { level: 6 }));
    const config = writeBlob(
      dir,
      OciMediaType.Config,
      json({
        created: '2000-01-01T00:00:00Z',
        architecture: platform.architecture,
        os: platform.os,
        ...('variant' in platform ? { variant: platform.variant } : {}),
        config: { Cmd: ['/hello.txt'], Env: ['PATH=/usr/local/bin:/usr/bin:/bin'] },
        rootfs: { type: 'layers', diff_ids: [diffId] },
        history: [{ created: '2000-01-01T00:00:00Z', created_by: 'berth e2e oci-layout helper' }],
      }),
    );
    const manifest = writeBlob(
      dir,
      OciMediaType.Manifest,
      json({ schemaVersion: 2, mediaType: OciMediaType.Manifest, config, layers: [layer] }),
    );
    manifest.platform = { ...platform };
    return { architecture: platform.architecture, os: platform.os, manifest, config, layer, diffId, file };
  });

  const index = writeBlob(
    dir,
    OciMediaType.Index,
    json({ schemaVersion: 2, mediaType: OciMediaType.Index, manifests: platforms.map((p) => p.manifest) }),
  );
  writeFileSync(
    join(dir, 'index.json'),
    json({
      schemaVersion: 2,
      mediaType: OciMediaType.Index,
      manifests: [{ ...index, annotations: { 'org.opencontainers.image.ref.name': tag } }],
    }),
  );
  return { dir, tag, index, platforms };
}

/** The descriptor that a layout's `index.json` names with `org.opencontainers.image.ref.name` = `tag`. */
export function layoutRef(dir: string, tag: string): Descriptor | undefined {
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests?: Descriptor[] };
  return index.manifests?.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
}

/** Every blob of a layout: digest → bytes. */
export function layoutBlobs(dir: string): Map<string, Buffer> {
  const blobs = new Map<string, Buffer>();
  for (const hex of readdirSync(join(dir, 'blobs', 'sha256')).sort()) {
    blobs.set(`sha256:${hex}`, readFileSync(join(dir, 'blobs', 'sha256', hex)));
  }
  return blobs;
}
