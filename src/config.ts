import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { DEFAULT_DENIAL_LOG, type DenialLogOptions } from './management/denial-log.js';
import { DEFAULT_SKU_PLANS, type SkuName, type SkuPlans } from './management/skus.js';
import { InvalidIpRuleError, normalizeIpRules } from './network/index.js';
import { blobStoreSpec, databaseSpec } from './storage-settings.js';

/** Everything Berth reads at start-up. Defaults < config file < environment variables. */
export interface BerthConfig {
  /** Public data-plane listeners, `host:port` each. */
  listen: string[];
  /** Management API (and portal) listener. */
  managementListen: string;
  dataDir: string;
  /** Login servers are `<registry>.<domain>`. */
  domain: string;
  /** The registry served to hosts that name none; created on first start. */
  defaultRegistry: string;
  /** SKU of the default registry when Berth creates it. */
  defaultRegistrySku: SkuName;
  tls?: { certFile: string; keyFile: string };
  logLevel: string;
  /** Peers whose X-Forwarded-For / Forwarded headers (and PROXY protocol headers) are believed. */
  trustedProxies: string[];
  /** Whether public listeners expect a PROXY protocol header from trusted proxies. */
  proxyProtocol: boolean;
  /** Owner account password on first start; otherwise a random one is printed once. */
  adminPassword?: string;
  /** Plans per SKU; operators may change any limit. */
  skus: SkuPlans;
  /** Data-plane sign-in: token lifetimes and the failed sign-in limits (both listeners). */
  auth: {
    accessTokenTtlSeconds: number;
    refreshTokenTtlSeconds: number;
    maxFailuresPerAddress: number;
    maxFailuresPerAccount: number;
    failureWindowSeconds: number;
  };
  registry: {
    maxManifestBytes: number;
    deleteEnabled: boolean;
    automaticContentDiscovery: boolean;
    uploadTtlSeconds: number;
    /** Memory for hot manifests and tags (src/registry/manifest-cache.ts); 0 turns the cache off. */
    manifestCacheBytes: number;
  };
  /** Garbage collection and retention (src/registry/gc.ts). */
  gc: {
    /** A pushed blob no manifest references yet is kept at least this long. */
    graceSeconds: number;
    /** Every registry is collected this often; 0 turns scheduled runs off. */
    intervalSeconds: number;
  };
  /** Webhook delivery (src/management/webhook-delivery.ts). */
  webhooks: {
    /** First retry after this many seconds, doubling each time. */
    retryBaseSeconds: number;
    /** Refused requests are reported as one networkDenied event per registry per this many seconds. */
    networkDeniedWindowSeconds: number;
  };
  /** The network denial log: retention, size bound, server log lines per address. */
  denialLog: DenialLogOptions;
  /** Where metadata and management state live: undefined → SQLite in `dataDir`; `postgres://…` → PostgreSQL. */
  database?: string;
  /** Where blob bytes live: undefined → `dataDir/blobs`; `azure://<account>/<container>` → Azure Blob Storage. */
  blobStore?: string;
  /** Azure Storage connection string for an `azure://` blob store (BERTH_AZURE_STORAGE_CONNECTION_STRING). */
  azureStorageConnectionString?: string;
  /** Blob GETs answer 307 to a short-lived URL of the blob store when it can make one (Azure SAS). */
  blobRedirect: boolean;
  /** This node's name in the change feed (and logs); unique per process. Default `<hostname>-<pid>`. */
  nodeId?: string;
  /**
   * The key file that seals secrets (admin passwords, signing keys); every node of one deployment must
   * use the same key. Default `<dataDir>/berth.key`.
   */
  secretKeyFile?: string;
  /** Cross-node change feed: every cache is dropped this often as a safety net for a missed event. */
  changeFeed: { resyncIntervalSeconds: number };
  /** What one client (or one flood of requests) may take of the server; see README's configuration table. */
  limits: LimitsConfig;
}

/** Caps that keep one client from exhausting the server: connections, slow requests, upload sessions. */
export interface LimitsConfig {
  /** Open connections per data-plane listener; more are answered 503 and closed. */
  maxConnections: number;
  /** Open connections per client address on a data-plane listener; more are answered 429 and closed. */
  maxConnectionsPerClient: number;
  /** Open connections on the management listener. */
  managementMaxConnections: number;
  /** A request's headers must arrive within this long (else 408). */
  headerTimeoutMs: number;
  /** A request body that delivers nothing for this long is cut off with 408. */
  bodyIdleTimeoutMs: number;
  /** A request body slower than this on average over a 10 s window is cut off with 408 (0: off). */
  bodyMinBytesPerSecond: number;
  /** Open upload sessions per registry; more are 429 TOOMANYREQUESTS. */
  maxUploadSessionsPerRegistry: number;
  /** Open upload sessions per client address (on this node); more are 429 TOOMANYREQUESTS. */
  maxUploadSessionsPerClient: number;
}

export const DEFAULT_CONFIG: BerthConfig = {
  listen: ['127.0.0.1:5000'],
  managementListen: '127.0.0.1:5080',
  dataDir: './data',
  domain: 'localhost',
  defaultRegistry: 'default',
  defaultRegistrySku: 'Premium',
  logLevel: 'info',
  trustedProxies: [],
  proxyProtocol: false,
  skus: DEFAULT_SKU_PLANS,
  auth: {
    accessTokenTtlSeconds: 300,
    refreshTokenTtlSeconds: 3 * 60 * 60,
    maxFailuresPerAddress: 30,
    maxFailuresPerAccount: 10,
    failureWindowSeconds: 60,
  },
  registry: {
    maxManifestBytes: 4 * 1024 * 1024,
    deleteEnabled: true,
    automaticContentDiscovery: true,
    uploadTtlSeconds: 24 * 60 * 60,
    manifestCacheBytes: 64 * 1024 * 1024,
  },
  gc: { graceSeconds: 3600, intervalSeconds: 24 * 60 * 60 },
  webhooks: { retryBaseSeconds: 5, networkDeniedWindowSeconds: 60 },
  denialLog: DEFAULT_DENIAL_LOG,
  blobRedirect: false,
  changeFeed: { resyncIntervalSeconds: 30 },
  limits: {
    maxConnections: 512,
    maxConnectionsPerClient: 128,
    managementMaxConnections: 64,
    headerTimeoutMs: 10_000,
    bodyIdleTimeoutMs: 30_000,
    bodyMinBytesPerSecond: 1024,
    maxUploadSessionsPerRegistry: 1000,
    maxUploadSessionsPerClient: 100,
  },
};

/** A configuration value that cannot be used; start-up stops with this message. */
export class ConfigError extends Error {}

/**
 * Loads configuration: the JSON file named by `BERTH_CONFIG` (or `./berth.config.json` when it exists),
 * then `BERTH_*` environment variables on top.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): BerthConfig {
  const config: BerthConfig = structuredClone(DEFAULT_CONFIG);
  if (env.BERTH_DEFAULT_REGISTRY_SKU) config.defaultRegistrySku = env.BERTH_DEFAULT_REGISTRY_SKU as SkuName;
  const file = env.BERTH_CONFIG ?? (exists('berth.config.json') ? 'berth.config.json' : undefined);
  if (file) mergeFile(config, file);
  applyEnv(config, env);
  validate(config);
  return config;
}

function mergeFile(config: BerthConfig, file: string): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(resolve(file), 'utf8'));
  } catch (error) {
    throw new ConfigError(`cannot read config file ${file}: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null)
    throw new ConfigError(`config file ${file} must hold a JSON object`);
  const { registry, skus, auth, gc, webhooks, denialLog, limits, changeFeed, ...rest } =
    parsed as Partial<BerthConfig>;
  Object.assign(config, rest);
  if (registry) Object.assign(config.registry, registry);
  if (auth) Object.assign(config.auth, auth);
  if (gc) Object.assign(config.gc, gc);
  if (webhooks) Object.assign(config.webhooks, webhooks);
  if (denialLog) Object.assign(config.denialLog, denialLog);
  if (limits) Object.assign(config.limits, limits);
  if (changeFeed) Object.assign(config.changeFeed, changeFeed);
  if (skus) {
    for (const [name, plan] of Object.entries(skus)) {
      const current = (config.skus as Record<string, SkuPlans[SkuName] | undefined>)[name];
      if (!current) throw new ConfigError(`skus.${name}: unknown SKU (use Basic, Standard or Premium)`);
      Object.assign(current, plan);
    }
  }
  if (typeof config.listen === 'string') config.listen = [config.listen];
}

function applyEnv(config: BerthConfig, env: NodeJS.ProcessEnv): void {
  const str = (name: string) => (env[name] !== undefined && env[name] !== '' ? env[name] : undefined);
  const listen = str('BERTH_LISTEN');
  if (listen)
    config.listen = listen
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  config.managementListen = str('BERTH_MANAGEMENT_LISTEN') ?? config.managementListen;
  config.dataDir = str('BERTH_DATA_DIR') ?? config.dataDir;
  config.domain = str('BERTH_DOMAIN') ?? config.domain;
  config.defaultRegistry = str('BERTH_DEFAULT_REGISTRY') ?? config.defaultRegistry;
  config.logLevel = str('BERTH_LOG_LEVEL') ?? config.logLevel;
  const proxies = str('BERTH_TRUSTED_PROXIES');
  if (proxies)
    config.trustedProxies = proxies
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  config.adminPassword = str('BERTH_ADMIN_PASSWORD') ?? config.adminPassword;
  const cert = str('BERTH_TLS_CERT');
  const key = str('BERTH_TLS_KEY');
  if (cert || key) config.tls = { certFile: cert ?? '', keyFile: key ?? '' };
  const int = (name: string) => {
    const value = str(name);
    if (value === undefined) return undefined;
    if (!/^\d+$/.test(value)) throw new ConfigError(`${name} must be a whole number, not '${value}'`);
    return Number(value);
  };
  const bool = (name: string) => {
    const value = str(name);
    if (value === undefined) return undefined;
    if (!['true', 'false', '1', '0'].includes(value)) throw new ConfigError(`${name} must be true or false`);
    return value === 'true' || value === '1';
  };
  config.proxyProtocol = bool('BERTH_PROXY_PROTOCOL') ?? config.proxyProtocol;
  config.registry.maxManifestBytes = int('BERTH_MAX_MANIFEST_BYTES') ?? config.registry.maxManifestBytes;
  config.registry.uploadTtlSeconds = int('BERTH_UPLOAD_TTL_SECONDS') ?? config.registry.uploadTtlSeconds;
  config.registry.manifestCacheBytes =
    int('BERTH_MANIFEST_CACHE_BYTES') ?? config.registry.manifestCacheBytes;
  config.gc.graceSeconds = int('BERTH_GC_GRACE_SECONDS') ?? config.gc.graceSeconds;
  config.gc.intervalSeconds = int('BERTH_GC_INTERVAL_SECONDS') ?? config.gc.intervalSeconds;
  config.webhooks.retryBaseSeconds =
    int('BERTH_WEBHOOK_RETRY_BASE_SECONDS') ?? config.webhooks.retryBaseSeconds;
  config.webhooks.networkDeniedWindowSeconds =
    int('BERTH_WEBHOOK_DENIED_WINDOW_SECONDS') ?? config.webhooks.networkDeniedWindowSeconds;
  config.registry.deleteEnabled = bool('BERTH_DELETE_ENABLED') ?? config.registry.deleteEnabled;
  config.registry.automaticContentDiscovery =
    bool('BERTH_AUTOMATIC_CONTENT_DISCOVERY') ?? config.registry.automaticContentDiscovery;
  config.auth.accessTokenTtlSeconds =
    int('BERTH_ACCESS_TOKEN_TTL_SECONDS') ?? config.auth.accessTokenTtlSeconds;
  config.denialLog.retentionDays = int('BERTH_DENIAL_LOG_RETENTION_DAYS') ?? config.denialLog.retentionDays;
  config.denialLog.maxEntries = int('BERTH_DENIAL_LOG_MAX_ENTRIES') ?? config.denialLog.maxEntries;
  const limits = config.limits;
  for (const [key, name] of LIMIT_ENV) limits[key] = int(name) ?? limits[key];
  config.database = str('BERTH_DATABASE_URL') ?? config.database;
  config.blobStore = str('BERTH_BLOB_STORE') ?? config.blobStore;
  config.azureStorageConnectionString =
    str('BERTH_AZURE_STORAGE_CONNECTION_STRING') ?? config.azureStorageConnectionString;
  config.blobRedirect = bool('BERTH_BLOB_REDIRECT') ?? config.blobRedirect;
  config.nodeId = str('BERTH_NODE_ID') ?? config.nodeId;
  config.secretKeyFile = str('BERTH_SECRET_KEY_FILE') ?? config.secretKeyFile;
  config.changeFeed.resyncIntervalSeconds =
    int('BERTH_CHANGE_FEED_RESYNC_SECONDS') ?? config.changeFeed.resyncIntervalSeconds;
}

const LIMIT_ENV: [keyof LimitsConfig, string][] = [
  ['maxConnections', 'BERTH_MAX_CONNECTIONS'],
  ['maxConnectionsPerClient', 'BERTH_MAX_CONNECTIONS_PER_CLIENT'],
  ['managementMaxConnections', 'BERTH_MANAGEMENT_MAX_CONNECTIONS'],
  ['headerTimeoutMs', 'BERTH_HEADER_TIMEOUT_MS'],
  ['bodyIdleTimeoutMs', 'BERTH_BODY_IDLE_TIMEOUT_MS'],
  ['bodyMinBytesPerSecond', 'BERTH_BODY_MIN_BYTES_PER_SECOND'],
  ['maxUploadSessionsPerRegistry', 'BERTH_MAX_UPLOAD_SESSIONS_PER_REGISTRY'],
  ['maxUploadSessionsPerClient', 'BERTH_MAX_UPLOAD_SESSIONS_PER_CLIENT'],
];

function validate(config: BerthConfig): void {
  for (const address of [...config.listen, config.managementListen]) parseListen(address);
  if (config.tls && (!config.tls.certFile || !config.tls.keyFile)) {
    throw new ConfigError('TLS needs both a certificate and a key file (BERTH_TLS_CERT and BERTH_TLS_KEY)');
  }
  if (!/^[a-z0-9]{5,50}$/.test(config.defaultRegistry)) {
    throw new ConfigError(
      `defaultRegistry '${config.defaultRegistry}' must be 5-50 lower-case letters and digits`,
    );
  }
  try {
    normalizeIpRules(config.trustedProxies);
  } catch (error) {
    if (error instanceof InvalidIpRuleError) throw new ConfigError(`trustedProxies: ${error.message}`);
    throw error;
  }
  if (config.auth.accessTokenTtlSeconds < 1 || config.auth.refreshTokenTtlSeconds < 1)
    throw new ConfigError('auth token lifetimes must be at least 1 second');
  for (const key of ['graceSeconds', 'intervalSeconds'] as const) {
    if (!Number.isInteger(config.gc[key]) || config.gc[key] < 0)
      throw new ConfigError(`gc.${key} must be a whole number of seconds`);
  }
  for (const key of ['retryBaseSeconds', 'networkDeniedWindowSeconds'] as const) {
    if (!Number.isInteger(config.webhooks[key]) || config.webhooks[key] < 1)
      throw new ConfigError(`webhooks.${key} must be a whole number of seconds, at least 1`);
  }
  for (const [key] of LIMIT_ENV) {
    const value = config.limits[key];
    if (!Number.isInteger(value) || value < (key === 'bodyMinBytesPerSecond' ? 0 : 1))
      throw new ConfigError(`limits.${key} must be a positive whole number`);
  }
  if (!Number.isSafeInteger(config.registry.manifestCacheBytes) || config.registry.manifestCacheBytes < 0)
    throw new ConfigError('registry.manifestCacheBytes must be a whole number of bytes, 0 or more');
  if (config.registry.maxManifestBytes < 1024)
    throw new ConfigError('registry.maxManifestBytes must be at least 1024');
  validateScaleOut(config);
}

/**
 * This process's node id: the configured one, else `<hostname>-<pid>`. Computed in the process that
 * runs (never carried in a configuration object), so two nodes started from one config never share it.
 */
export function nodeIdOf(config: BerthConfig): string {
  return config.nodeId ?? `${hostname()}-${process.pid}`.replace(/[^A-Za-z0-9._-]/g, '-').slice(-64);
}

/** Splits `host:port` (IPv6 in brackets) into its parts. */
export function parseListen(address: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(address);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) throw new ConfigError(`listen address '${address}' must be host:port`);
  return { host: (match[1] ?? match[2])!, port };
}

function exists(path: string): boolean {
  try {
    readFileSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The storage and node settings: parsed once at load so a bad one is named before anything opens. */
function validateScaleOut(config: BerthConfig): void {
  try {
    databaseSpec(config.database, '');
    blobStoreSpec(config.blobStore, config.azureStorageConnectionString);
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
  if (config.blobRedirect && config.blobStore === undefined)
    throw new ConfigError(
      'blobRedirect (BERTH_BLOB_REDIRECT) needs a blobStore that can sign URLs (azure://…)',
    );
  if (config.nodeId !== undefined && !/^[A-Za-z0-9._-]{1,64}$/.test(config.nodeId))
    throw new ConfigError(
      `nodeId (BERTH_NODE_ID) '${config.nodeId}' must be 1-64 letters, digits, '.', '_' or '-'`,
    );
  const resync = config.changeFeed.resyncIntervalSeconds;
  if (!Number.isInteger(resync) || resync < 1)
    throw new ConfigError('changeFeed.resyncIntervalSeconds must be a whole number of seconds, at least 1');
}

/**
 * The Azure container named by `blobStore: azure://<account>/<container>` and the connection string
 * that reaches it; undefined when blobs stay in the data directory.
 */
export function azureBlobStoreSettings(
  config: BerthConfig,
): { account: string; container: string; connectionString: string } | undefined {
  let spec;
  try {
    spec = blobStoreSpec(config.blobStore, config.azureStorageConnectionString);
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
  return spec.kind === 'azure'
    ? { account: spec.account, container: spec.container, connectionString: spec.connectionString }
    : undefined;
}
