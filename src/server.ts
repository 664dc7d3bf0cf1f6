import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino, { type Logger } from 'pino';
import { parseListen, type BerthConfig } from './config.js';
import { buildDataPlane } from './http/data-plane.js';
import { RegistryDirectory } from './registry/directory.js';
import { RegistryService } from './registry/service.js';
import { FsBlobStore } from './store/fs-blob-store.js';
import { SqliteMetadataStore } from './store/sqlite-metadata-store.js';
import type { BlobStore, MetadataStore } from './store/types.js';

/** A running Berth: its listeners' addresses and a way to stop it cleanly. */
export interface RunningBerth {
  /** `http(s)://host:port` of each public data-plane listener, in configuration order. */
  urls: string[];
  meta: MetadataStore;
  blobs: BlobStore;
  service: RegistryService;
  logger: Logger;
  close(): Promise<void>;
}

/** The composition root: builds stores, services and listeners from configuration and starts them. */
export async function startBerth(config: BerthConfig, logger?: Logger): Promise<RunningBerth> {
  const log = logger ?? pino({ level: config.logLevel, base: { service: 'berth' } });
  mkdirSync(config.dataDir, { recursive: true });
  const meta = new SqliteMetadataStore(join(config.dataDir, 'metadata.db'));
  const blobs = new FsBlobStore(join(config.dataDir, 'blobs'));
  await meta.createRegistry({ name: config.defaultRegistry, createdAt: new Date(), properties: {} });
  const directory = new RegistryDirectory(meta, config.domain, config.defaultRegistry);
  await directory.start();
  const service = new RegistryService(meta, blobs, {
    maxManifestBytes: config.registry.maxManifestBytes,
    deleteEnabled: config.registry.deleteEnabled,
    automaticContentDiscovery: config.registry.automaticContentDiscovery,
    uploadTtlMs: config.registry.uploadTtlSeconds * 1000,
  });

  const https = config.tls
    ? { cert: readFileSync(config.tls.certFile), key: readFileSync(config.tls.keyFile) }
    : undefined;
  const apps: FastifyInstance[] = [];
  const urls: string[] = [];
  try {
    for (const address of config.listen) {
      const app = buildDataPlane({ service, directory, logger: log, ...(https ? { https } : {}) });
      apps.push(app);
      const { host, port } = parseListen(address);
      await app.listen({ host, port });
      const bound = app.server.address();
      const boundPort = typeof bound === 'object' && bound ? bound.port : port;
      urls.push(`${https ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${boundPort}`);
    }
  } catch (error) {
    await Promise.allSettled(apps.map((app) => app.close()));
    await meta.close();
    throw error;
  }

  // Abandoned uploads are purged on a timer; the interval follows the TTL so short TTLs (tests) work.
  const purgeEvery = Math.max(1000, Math.min(10 * 60_000, config.registry.uploadTtlSeconds * 250));
  const purgeTimer = setInterval(() => {
    service.purgeStaleUploads().catch((err: unknown) => log.error({ err }, 'upload purge failed'));
  }, purgeEvery);
  purgeTimer.unref();

  log.info({ urls, dataDir: config.dataDir }, 'berth started');
  return {
    urls,
    meta,
    blobs,
    service,
    logger: log,
    async close() {
      clearInterval(purgeTimer);
      directory.stop();
      await Promise.allSettled(apps.map((app) => app.close()));
      await meta.close();
    },
  };
}
