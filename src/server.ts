import { chmodSync, mkdirSync, readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import pino, { type Logger } from 'pino';
import { DataPlaneCredentials } from './auth/credentials.js';
import { IdentityService, OWNER_NAME } from './auth/identities.js';
import { FailedSignInLimiter } from './auth/rate-limit.js';
import { SignInLog } from './auth/sign-in-log.js';
import { SecretKeyMismatchError, TokenService } from './auth/tokens.js';
import { DataPlaneAuth } from './http/v2/auth.js';
import { RegistryAuthSettingsCache } from './management/registry-auth.js';
import { RegistryTokens } from './management/tokens.js';
import { ConfigError, parseListen, type BerthConfig } from './config.js';
import { limitConnections } from './http/connections.js';
import { buildDataPlane } from './http/data-plane.js';
import { NetworkGuard } from './http/guard.js';
import { buildManagementApi } from './http/management-api.js';
import { BerthMetrics, timedStore } from './http/metrics.js';
import { accessLogObserver, metricsObserver, registerHealthRoutes } from './http/observe.js';
import { PrivateEndpointListeners } from './http/private-endpoint-listeners.js';
import { proxyProtocolServerFactory } from './http/proxy-protocol-server.js';
import { NetworkAccessService, type EntryPoint } from './management/network-access.js';
import { PrivateEndpointManager } from './management/private-endpoints.js';
import { RegistryManager } from './management/registries.js';
import { defaultSettings } from './management/registry-model.js';
import { compileIpRules } from './network/index.js';
import { RegistryDirectory } from './registry/directory.js';
import { GarbageCollector, GcScheduler } from './registry/gc.js';
import { WebhookDispatcher, DEFAULT_DELIVERY_OPTIONS } from './management/webhook-delivery.js';
import { WebhookService } from './management/webhooks.js';
import { DenialEvents, observeManagementDeletes, webhookObserver } from './http/webhook-events.js';
import { ManifestCache } from './registry/manifest-cache.js';
import { RegistryService } from './registry/service.js';
import { openNodeStores } from './node-stores.js';
import type { GcStore } from './store/gc-types.js';
import type { ChangeFeed } from './store/change-feed.js';
import type { AuthStore, BlobStore, MetadataStore } from './store/types.js';

/** Leftovers younger than this are not touched by the periodic reconciliation (work may be in flight). */
const RECONCILE_MIN_AGE_MS = 10 * 60_000;

/** A running Berth: its listeners' addresses and a way to stop it cleanly. */
export interface RunningBerth {
  /** `http(s)://host:port` of each public data-plane listener, in configuration order. */
  urls: string[];
  /** `http://host:port` of the management API. */
  managementUrl: string;
  /** The owner password Berth generated on first start (undefined when it was configured or existed). */
  generatedAdminPassword: string | undefined;
  meta: MetadataStore;
  blobs: BlobStore;
  service: RegistryService;
  registries: RegistryManager;
  identities: IdentityService;
  access: NetworkAccessService;
  tokens: TokenService;
  signIns: SignInLog;
  authStore: AuthStore;
  /** This node's change feed. */
  changes: ChangeFeed;
  gc: GarbageCollector;
  gcStore: GcStore;
  logger: Logger;
  close(): Promise<void>;
}

/** The composition root: builds stores, services and listeners from configuration and starts them. */
export async function startBerth(config: BerthConfig, logger?: Logger): Promise<RunningBerth> {
  const log = logger ?? pino({ level: config.logLevel, base: { service: 'berth' } });
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  // The data directory holds password hashes and the key file: only Berth's own user may read it.
  chmodSync(config.dataDir, 0o700);
  const stores = await openNodeStores(config, log);
  const { gcStore, management, authStore, webhookStore, box, changes } = stores;
  const metrics = new BerthMetrics(() => gcStore.countUploads());
  const meta = timedStore(stores.meta, 'metadata', metrics);
  const blobs = timedStore(stores.blobs, 'blobs', metrics);
  const cleanups: (() => Promise<void> | void)[] = [() => metrics.close(), () => stores.close()];
  /** `/readyz`: every store answers. */
  const ready = async () => {
    await gcStore.ping();
    await meta.getRegistry(config.defaultRegistry);
    await management.countIdentities();
    await blobs.stat(config.defaultRegistry, `sha256:${'0'.repeat(64)}`);
  };
  const closeAll = async () => {
    for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
  };

  try {
    await meta.createRegistry({
      name: config.defaultRegistry,
      createdAt: new Date(),
      properties: { ...defaultSettings(config.defaultRegistry, config.defaultRegistrySku) },
    });
    const limiter = new FailedSignInLimiter({
      maxFailuresPerAddress: config.auth.maxFailuresPerAddress,
      maxFailuresPerAccount: config.auth.maxFailuresPerAccount,
      windowSeconds: config.auth.failureWindowSeconds,
    });
    const signIns = new SignInLog(authStore, log, (event) => metrics.signIns.inc({ result: event.result }));
    signIns.start();
    cleanups.push(() => signIns.stop());
    const identities = new IdentityService(management, authStore, { limiter, log: signIns });
    const generatedAdminPassword = await identities.bootstrapOwner(config.adminPassword);
    if (generatedAdminPassword) {
      // Printed once, on the console rather than the log, so it does not end up in log storage.
      process.stderr.write(
        `\nberth: created the owner account '${OWNER_NAME}' with password: ${generatedAdminPassword}\n` +
          `berth: it is shown only now; set BERTH_ADMIN_PASSWORD on first start to choose it instead.\n\n`,
      );
    }
    const directory = new RegistryDirectory(meta, config.domain, config.defaultRegistry, changes);
    await directory.start();
    cleanups.push(() => directory.stop());
    const registries = new RegistryManager(
      meta,
      blobs,
      management,
      management,
      config.skus,
      config.domain,
      config.defaultRegistry,
      box,
      (registry) => authStore.deleteAuthForRegistry(registry),
    );
    await registries.sealLegacyCredentials();
    const tokens = new TokenService(
      authStore,
      box,
      {
        accessTtlSeconds: config.auth.accessTokenTtlSeconds,
        refreshTtlSeconds: config.auth.refreshTokenTtlSeconds,
      },
      changes,
    );
    await tokens.start().catch((error: unknown) => {
      throw error instanceof SecretKeyMismatchError ? new ConfigError(error.message) : error;
    });
    cleanups.push(() => tokens.stop());
    const registryAuth = new RegistryAuthSettingsCache(meta, registries, config.domain, changes);
    registryAuth.start();
    cleanups.push(() => registryAuth.stop());
    const credentials = new DataPlaneCredentials({
      identities,
      store: authStore,
      registrySettings: registryAuth.get,
      tokens,
      limiter,
      log: signIns,
      changes,
    });
    cleanups.push(() => credentials.stop());
    const auth = { check: new DataPlaneAuth(credentials, tokens), credentials, tokens };
    const manifestCache = new ManifestCache(meta, config.registry.manifestCacheBytes);
    manifestCache.start();
    cleanups.push(() => manifestCache.stop());
    const service = new RegistryService(
      meta,
      blobs,
      {
        maxManifestBytes: config.registry.maxManifestBytes,
        deleteEnabled: config.registry.deleteEnabled,
        automaticContentDiscovery: config.registry.automaticContentDiscovery,
        uploadTtlMs: config.registry.uploadTtlSeconds * 1000,
        storageQuota: (registry) => registries.storageQuota(registry),
        maxUploadSessionsPerRegistry: config.limits.maxUploadSessionsPerRegistry,
        maxUploadSessionsPerClient: config.limits.maxUploadSessionsPerClient,
        blobRedirect: config.blobRedirect,
        manifestReads: manifestCache,
      },
      stores.locks,
    );
    const gc = new GarbageCollector(
      meta,
      gcStore,
      blobs,
      service.locks,
      { graceMs: config.gc.graceSeconds * 1000 },
      log,
    );
    // Retention deletes through the collector's store, which the metadata store's events do not cover.
    // (published on the feed, so every node's manifest cache drops them).
    gc.onManifestDeleted((registry, repository, digest) =>
      stores.changes.publish({ kind: 'manifest', registry, repository, digest }),
    );
    gc.onRun((report) => {
      if (report.dryRun) return;
      metrics.gcRuns.inc({ registry: report.registry, status: report.status });
      metrics.gcBlobs.inc({ registry: report.registry }, report.blobsDeleted);
      metrics.gcBytes.inc({ registry: report.registry }, report.bytesReclaimed);
    });
    // Whatever a crash left inside a commit or an upload is healed before the first request.
    const reconcile = async (minAgeMs: number) => {
      const names = (await meta.listRegistries()).map((registry) => registry.name);
      const report = await service.uploads.reconcile(names, minAgeMs);
      if (report.completed + report.sessionsRemoved + report.filesRemoved > 0)
        log.info({ ...report }, 'upload leftovers reconciled');
    };
    await reconcile(0);
    const gcScheduler = new GcScheduler(gc, meta, config.gc.intervalSeconds * 1000, log);
    gcScheduler.start();
    cleanups.push(() => gcScheduler.stop());
    const webhooks = new WebhookService(webhookStore, stores.changes);
    cleanups.push(() => webhooks.stop());
    const dispatcher = new WebhookDispatcher(
      webhookStore,
      (registry, name) => webhookStore.getWebhook(registry, name),
      log.child({ component: 'webhooks' }),
      { ...DEFAULT_DELIVERY_OPTIONS, retryBaseMs: config.webhooks.retryBaseSeconds * 1000 },
      (result) => metrics.webhookDeliveries.inc({ result }),
    );
    webhooks.onQueued(() => dispatcher.wake());
    dispatcher.start();
    cleanups.push(() => dispatcher.stop());
    const denialEvents = new DenialEvents(webhooks, config.webhooks.networkDeniedWindowSeconds * 1000, log);
    denialEvents.start();
    cleanups.push(() => denialEvents.stop());
    // A registry deleted and created again under its name starts without the old one's runs, policy
    // and webhooks.
    const forgetDeleted = meta.onChange((event) => {
      if (event.kind !== 'registry' || event.change === 'updated') return;
      void meta
        .getRegistry(event.registry)
        .then(async (record) => {
          if (record) return;
          await gcStore.deleteRegistryRecords(event.registry);
          await webhooks.forgetRegistry(event.registry);
        })
        .catch((err: unknown) => log.error({ err }, 'forgetting a deleted registry failed'));
    });
    cleanups.push(forgetDeleted);
    const access = new NetworkAccessService(meta, management, log, changes, config.denialLog);
    access.start();
    cleanups.push(() => access.stop());
    const trustedProxies = compileIpRules(config.trustedProxies);
    const https = config.tls
      ? { cert: readFileSync(config.tls.certFile), key: readFileSync(config.tls.keyFile) }
      : undefined;

    const dataPlane = (entry: EntryPoint, fixedRegistry?: string): FastifyInstance => {
      const guard = new NetworkGuard({ access, credentials, trustedProxies, entry });
      const app = buildDataPlane({
        service,
        directory,
        logger: log,
        guard,
        auth,
        observers: [
          metricsObserver(metrics),
          accessLogObserver(log.child({ component: 'access' })),
          webhookObserver(webhooks, log),
          denialEvents.observer(),
        ],
        ready,
        connectionLimits: {
          maxConnections: config.limits.maxConnections,
          maxConnectionsPerClient: config.limits.maxConnectionsPerClient,
          exempt: trustedProxies,
          headerTimeoutMs: config.limits.headerTimeoutMs,
        },
        bodyLimits: {
          idleTimeoutMs: config.limits.bodyIdleTimeoutMs,
          minBytesPerSecond: config.limits.bodyMinBytesPerSecond,
        },
        ...(fixedRegistry ? { fixedRegistry } : {}),
        ...(https ? { https } : {}),
        ...(config.proxyProtocol && entry.kind === 'public'
          ? { serverFactory: proxyProtocolServerFactory(trustedProxies, https) }
          : {}),
      });
      app.addHook('onClose', async () => guard.close());
      return app;
    };

    const urls: string[] = [];
    for (const address of config.listen) {
      const app = dataPlane({ kind: 'public' });
      cleanups.push(() => app.close());
      urls.push(await listen(app, address, https ? 'https' : 'http'));
    }

    const peListeners = new PrivateEndpointListeners(
      meta,
      (registry, connectionName) => dataPlane({ kind: 'private', connectionName }, registry),
      log,
      changes,
      stores.kind === 'postgres',
    );
    await peListeners.start();
    cleanups.push(() => peListeners.stop());
    const privateEndpoints = new PrivateEndpointManager(registries, peListeners, [
      ...config.listen,
      config.managementListen,
    ]);

    const api = buildManagementApi({
      registries,
      privateEndpoints,
      access,
      identities,
      meta,
      audit: management,
      trustedProxies,
      dataEndpoints: urls,
      defaultRegistry: config.defaultRegistry,
      tokens: new RegistryTokens(authStore, registries),
      tokenService: tokens,
      signIns,
      logger: log,
      operations: { gc, gcStore },
      webhooks,
      sessionStore: stores.sessions,
    });
    registerHealthRoutes(api, ready);
    observeManagementDeletes(api, webhooks, log);
    api.get('/metrics', async (_request, reply) => {
      const scrape = await metrics.scrape();
      return reply.type(scrape.contentType).send(scrape.body);
    });
    limitConnections(api.server, {
      maxConnections: config.limits.managementMaxConnections,
      headerTimeoutMs: config.limits.headerTimeoutMs,
      answerInOciShape: false,
    });
    cleanups.push(() => api.close());
    const managementUrl = await listen(api, config.managementListen, 'http');

    // Abandoned uploads are purged on a timer; the interval follows the TTL so short TTLs (tests) work.
    const purgeEvery = Math.max(1000, Math.min(10 * 60_000, config.registry.uploadTtlSeconds * 250));
    const purgeTimer = setInterval(() => {
      service.uploads.purgeStaleUploads().catch((err: unknown) => log.error({ err }, 'upload purge failed'));
      // Later passes leave alone anything young enough to be an upload or commit still in flight.
      reconcile(RECONCILE_MIN_AGE_MS).catch((err: unknown) => log.error({ err }, 'upload reconcile failed'));
    }, purgeEvery);
    purgeTimer.unref();
    cleanups.push(() => clearInterval(purgeTimer));

    log.info({ urls, managementUrl, dataDir: config.dataDir }, 'berth started');
    return {
      urls,
      managementUrl,
      generatedAdminPassword,
      meta,
      blobs,
      service,
      registries,
      identities,
      access,
      tokens,
      signIns,
      authStore,
      changes,
      gc,
      gcStore,
      logger: log,
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

async function listen(app: FastifyInstance, address: string, scheme: 'http' | 'https'): Promise<string> {
  const { host, port } = parseListen(address);
  await app.listen({ host, port });
  const bound = app.server.address();
  const boundPort = typeof bound === 'object' && bound ? bound.port : port;
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${boundPort}`;
}
