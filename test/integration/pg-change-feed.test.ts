import assert from 'node:assert/strict';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import pg from 'pg';
import { pino } from 'pino';
import type { ChangeEvent } from '../../src/store/change-feed.js';
import { PgChangeFeed } from '../../src/store/pg-change-feed.js';
import { PostgresMetadataStore } from '../../src/store/postgres-metadata-store.js';
import { DatabaseConfigError, openSqlDatabase } from '../../src/store/sql/database.js';
import { METADATA_MIGRATIONS } from '../../src/store/sql/metadata-schema.js';
import { migrate } from '../../src/store/sql/migrations.js';
import { waitFor } from '../helpers/net.js';
import { digestOf } from '../helpers/oci.js';
import { postgresDatabase } from '../helpers/postgres.js';

/** A logger whose lines the test can read. */
function capturingLog(): { log: pino.Logger; lines: { msg: string }[] } {
  const lines: { msg: string }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean))
        lines.push(JSON.parse(line) as { msg: string });
      done();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}

function recorder(feed: PgChangeFeed): ChangeEvent[] {
  const seen: ChangeEvent[] = [];
  feed.subscribe((event) => seen.push(event));
  return seen;
}

/** Runs `query` on a connection of its own (an operator's psql). */
async function admin<T extends pg.QueryResultRow>(url: string, query: string, values: unknown[] = []) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(query, values)).rows;
  } finally {
    await client.end();
  }
}

const listenConnections = (url: string, node: string) =>
  admin<{ pid: number }>(url, 'SELECT pid FROM pg_stat_activity WHERE application_name = $1', [
    `berth-feed-listen:${node}`,
  ]);

const ipSet = (name: string): ChangeEvent => ({ kind: 'ipSet', name });

/**
 * A TCP relay in front of PostgreSQL whose open connections can be frozen: bytes stop flowing both
 * ways and nothing is closed, as in a network partition. Connections made later flow normally.
 */
async function partitionableRelay(url: string) {
  const target = new URL(url);
  const sockets: Socket[] = [];
  const frozen = new WeakSet<Socket>();
  const server = createServer((downstream) => {
    const upstream = connect(Number(target.port), target.hostname);
    sockets.push(downstream, upstream);
    const pipe = (from: Socket, to: Socket) =>
      from.on('data', (chunk) => {
        if (!frozen.has(from)) to.write(chunk);
      });
    pipe(downstream, upstream);
    pipe(upstream, downstream);
    const close = () => {
      downstream.destroy();
      upstream.destroy();
    };
    downstream.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const relayed = new URL(url);
  relayed.port = String((server.address() as AddressInfo).port);
  return {
    url: relayed.toString(),
    freeze: () => sockets.forEach((socket) => frozen.add(socket)),
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('PgChangeFeed', () => {
  it('delivers an event published on one node to the other, once to the publisher, in order', async (t) => {
    const url = await postgresDatabase(t);
    if (!url) return;
    const { log } = capturingLog();
    const a = await PgChangeFeed.start({ url, nodeId: 'A', log, resyncIntervalMs: 0 });
    const b = await PgChangeFeed.start({ url, nodeId: 'B', log, resyncIntervalMs: 0 });
    try {
      const onA = recorder(a);
      const onB = recorder(b);
      a.publish(ipSet('first'));
      assert.deepEqual(
        onA,
        [ipSet('first')],
        'the publisher’s own subscribers have it before publish returns',
      );
      await waitFor('B to receive the event', () => onB.length === 1);
      assert.deepEqual(onB, [ipSet('first')]);
      b.publish(ipSet('reply'));
      await waitFor('A to receive the reply', () => onA.length >= 2);
      // PostgreSQL delivers notifications in commit order: an echo of 'first' would have come before.
      assert.deepEqual(onA, [ipSet('first'), ipSet('reply')], 'A ignored its own echo');
      const burst = Array.from({ length: 50 }, (_, i) => ipSet(`burst${i}`));
      for (const event of burst) a.publish(event);
      await waitFor('the burst to arrive on B', () => onB.length >= 2 + burst.length);
      assert.deepEqual(onB.slice(2), burst, 'one node’s events arrive in the order it published them');
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('reconnects after its LISTEN connection is terminated, delivers resync, and receives again', async (t) => {
    const url = await postgresDatabase(t);
    if (!url) return;
    const { log, lines } = capturingLog();
    const a = await PgChangeFeed.start({ url, nodeId: 'A', log, resyncIntervalMs: 0 });
    const b = await PgChangeFeed.start({ url, nodeId: 'B', log, resyncIntervalMs: 0, reconnectMs: 20 });
    try {
      const onB = recorder(b);
      const [listener] = await listenConnections(url, 'B');
      assert.ok(listener, 'B listens on a connection of its own');
      await admin(url, 'SELECT pg_terminate_backend($1)', [listener.pid]);
      await waitFor('B to resync', () => onB.some((event) => event.kind === 'resync'));
      assert.ok(lines.some((line) => line.msg === 'change feed reconnected'));
      await waitFor('B to listen on a new connection (and the old one to be gone)', async () => {
        const pids = (await listenConnections(url, 'B')).map((row) => row.pid);
        return pids.length === 1 && pids[0] !== listener.pid;
      });
      a.publish(ipSet('after'));
      await waitFor('B to receive the next event', () => onB.some((event) => 'name' in event));
      assert.deepEqual(onB, [{ kind: 'resync' }, ipSet('after')]);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('notices a LISTEN connection that went silent (a partition), reconnects and resyncs', async (t) => {
    const url = await postgresDatabase(t);
    if (!url) return;
    const relay = await partitionableRelay(url);
    const { log, lines } = capturingLog();
    const a = await PgChangeFeed.start({ url, nodeId: 'A', log, resyncIntervalMs: 0 });
    const b = await PgChangeFeed.start({
      url: relay.url,
      nodeId: 'B',
      log,
      resyncIntervalMs: 0,
      heartbeatMs: 100,
      reconnectMs: 20,
    });
    try {
      const onB = recorder(b);
      a.publish(ipSet('before'));
      await waitFor('B to receive the first event', () => onB.length === 1);
      relay.freeze();
      await waitFor('B to resync over a new connection', () => onB.some((event) => event.kind === 'resync'));
      assert.ok(lines.some((line) => line.msg === 'change feed listen connection unresponsive'));
      a.publish(ipSet('after'));
      await waitFor('B to receive the next event', () => onB.length === 3);
      assert.deepEqual(onB, [ipSet('before'), { kind: 'resync' }, ipSet('after')]);
    } finally {
      await Promise.all([a.close(), b.close()]);
      await relay.close();
    }
  });

  it('delivers a periodic resync; close stops its timers and connections', async (t) => {
    const url = await postgresDatabase(t);
    if (!url) return;
    const { log } = capturingLog();
    const feed = await PgChangeFeed.start({ url, nodeId: 'C', log, resyncIntervalMs: 30, reconnectMs: 20 });
    const seen = recorder(feed);
    await waitFor('two periodic resyncs', () => seen.length >= 2);
    assert.ok(seen.every((event) => event.kind === 'resync'));
    const [listener] = await listenConnections(url, 'C');
    assert.ok(listener);
    // Closing while the connection is being lost must not leave a reconnect behind.
    await admin(url, 'SELECT pg_terminate_backend($1)', [listener.pid]);
    await feed.close();
    feed.publish(ipSet('after close'));
    await waitFor(
      'the LISTEN connection to be gone',
      async () => (await listenConnections(url, 'C')).length === 0,
    );
    // If a timer or connection survived close, this test process would not exit and the run would hang.
  });

  it('carries the metadata store’s registry and manifest events to the other node', async (t) => {
    const url = await postgresDatabase(t);
    if (!url) return;
    const { log } = capturingLog();
    const handles = await Promise.all([0, 1].map(() => openSqlDatabase({ postgresUrl: url, poolSize: 2 })));
    await migrate(handles[0]!, [METADATA_MIGRATIONS]);
    const feeds = await Promise.all(
      ['A', 'B'].map((nodeId) => PgChangeFeed.start({ url, nodeId, log, resyncIntervalMs: 0 })),
    );
    const [storeA, storeB] = handles.map((handle, i) => new PostgresMetadataStore(handle, feeds[i]));
    try {
      const onB: ChangeEvent[] = [];
      storeB!.onChange((event) => onB.push(event));
      await storeA!.createRegistry({ name: 'reg', createdAt: new Date(), properties: {} });
      await storeA!.deleteTag('reg', 'repo', 'missing');
      await storeA!.deleteRepository('reg', 'repo');
      await storeA!.updateRegistry('reg', { a: 1 });
      const content = Buffer.from('{"schemaVersion":2}');
      const digest = digestOf(content);
      const record = {
        digest,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        size: content.length,
        content,
      };
      assert.equal(await storeA!.putManifest('reg', 'repo', record, 'v1'), undefined);
      assert.equal(await storeA!.deleteTag('reg', 'repo', 'v1'), true);
      await waitFor('B to see the events', () => onB.length >= 4);
      assert.deepEqual(onB, [
        { kind: 'registry', registry: 'reg', change: 'created' },
        { kind: 'registry', registry: 'reg', change: 'updated' },
        { kind: 'manifest', registry: 'reg', repository: 'repo', digest, tag: 'v1' },
        { kind: 'manifest', registry: 'reg', repository: 'repo', tag: 'v1' },
      ]);
      // And B's store reads what A wrote: one database.
      assert.deepEqual((await storeB!.getManifest('reg', 'repo', digest))?.content, content);
    } finally {
      await Promise.all([storeA!.close(), storeB!.close()]);
      await Promise.all(feeds.map((feed) => feed.close()));
      await Promise.all(handles.map((handle) => handle.close()));
    }
  });

  it('fails to start, naming the setting, when PostgreSQL cannot be reached', async () => {
    const { log } = capturingLog();
    await assert.rejects(
      PgChangeFeed.start({ url: 'postgres://berth:s3cret@127.0.0.1:1/berth', nodeId: 'X', log }),
      (error: unknown) => {
        assert.ok(error instanceof DatabaseConfigError);
        assert.match(
          error.message,
          /^database \(BERTH_DATABASE_URL\): cannot listen for changes on PostgreSQL at 127\.0\.0\.1:1\/berth/,
        );
        assert.doesNotMatch(error.message, /s3cret/);
        return true;
      },
    );
  });
});
