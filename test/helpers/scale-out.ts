// Several Berth nodes, each its own process with its own data directory, over one PostgreSQL database
// and one Azurite container, sharing one key file: a scale-out deployment on loopback.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { AZURITE_ACCOUNT, azuriteContainer } from './azurite.js';
import { startChildBerth, type ChildBerth } from './child-server.js';
import { postgresDatabase } from './postgres.js';
import type { ConfigOverrides } from './server.js';

/** What every node of one deployment shares, and how to start one more node on it. */
export interface ScaleOut {
  nodes: ChildBerth[];
  databaseUrl: string;
  blobStore: string;
  connectionString: string;
  keyFile: string;
  /** Starts another node (or restarts one: `index` reuses that node's data directory and id). */
  startNode(index: number): Promise<ChildBerth>;
}

/** The settings of node `index` of a deployment. */
function nodeConfig(
  shared: { databaseUrl: string; blobStore: string; connectionString: string; keyFile: string },
  index: number,
  dataDir: string,
  overrides: ConfigOverrides,
): ConfigOverrides {
  return {
    database: shared.databaseUrl,
    blobStore: shared.blobStore,
    azureStorageConnectionString: shared.connectionString,
    secretKeyFile: shared.keyFile,
    nodeId: `node-${index + 1}`,
    dataDir,
    ...overrides,
  };
}

/**
 * Starts `count` nodes at once (as a rolling deployment's first start would) over a fresh database and
 * container. Undefined when PostgreSQL or Azurite is missing (the test was skipped, or failed under
 * BERTH_REQUIRE_E2E=1). Every node is stopped when the test ends.
 */
export async function startScaleOut(
  t: TestContext,
  count = 3,
  overrides: ConfigOverrides = {},
): Promise<ScaleOut | undefined> {
  const databaseUrl = await postgresDatabase(t);
  if (!databaseUrl) return undefined;
  const azure = await azuriteContainer(t);
  if (!azure) return undefined;
  const root = mkdtempSync(join(tmpdir(), 'berth-scale-out-'));
  const shared = {
    databaseUrl,
    blobStore: `azure://${AZURITE_ACCOUNT}/${azure.container}`,
    connectionString: azure.connectionString,
    keyFile: join(root, 'berth.key'),
  };
  const nodes: ChildBerth[] = [];
  t.after(async () => {
    await Promise.allSettled(nodes.map((node) => node.stop()));
    rmSync(root, { recursive: true, force: true });
  });
  const startNode = async (index: number) => {
    const dataDir = join(root, `node-${index + 1}`);
    const node = await startChildBerth(nodeConfig(shared, index, dataDir, overrides));
    nodes[index] = node;
    return node;
  };
  // The first node creates the key file; the others then start together, racing for the schema,
  // the owner account, the default registry and the first signing key.
  await startNode(0);
  await Promise.all(Array.from({ length: count - 1 }, (_, i) => startNode(i + 1)));
  return { nodes, ...shared, startNode };
}
