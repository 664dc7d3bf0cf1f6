import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  apiFor,
  createRegistry,
  dataPlane,
  pushImageTo,
  uniqueName,
  type Api,
} from '../helpers/management.js';
import { startTestBerth, type TestBerth } from '../helpers/server.js';

interface Received {
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
  json: Record<string, unknown>;
}

/** A webhook receiver on loopback; `answer` decides each response's status (or 0: never answer). */
class Receiver {
  readonly received: Received[] = [];
  answer: (n: number) => number = () => 200;
  private server: Server | undefined;
  private waiters: (() => void)[] = [];
  url = '';

  async start(port = 0): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        this.received.push({
          path: req.url ?? '',
          headers: req.headers,
          body,
          json: JSON.parse(body) as Record<string, unknown>,
        });
        const status = this.answer(this.received.length);
        for (const wake of this.waiters.splice(0)) wake();
        if (status > 0) res.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    const address = this.server.address();
    this.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : port}/hook`;
  }

  /** Waits (bounded) until `count` requests arrived. */
  async waitFor(count: number): Promise<Received[]> {
    for (let i = 0; i < 600 && this.received.length < count; i++) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    assert.ok(this.received.length >= count, `expected ${count} deliveries, got ${this.received.length}`);
    return this.received;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }
}

let berth: TestBerth;
let api: Api;
const receivers: Receiver[] = [];
before(async () => {
  berth = await startTestBerth({ webhooks: { retryBaseSeconds: 1, networkDeniedWindowSeconds: 1 } });
  api = apiFor(berth);
});
after(async () => {
  await berth.stop();
  for (const r of receivers) await r.stop();
});

async function receiver(): Promise<Receiver> {
  const r = new Receiver();
  await r.start();
  receivers.push(r);
  return r;
}

async function createHook(registry: string, name: string, properties: Record<string, unknown>) {
  const res = await api('PUT', `/api/registries/${registry}/webhooks/${name}`, { properties });
  assert.equal(res.status, 201, res.text);
  return res.body as { name: string; secret: string; properties: Record<string, unknown> };
}

test('push and delete events reach the receiver with ACR payloads, scope, headers and an HMAC signature', async () => {
  const name = uniqueName('hooks');
  await createRegistry(api, name);
  const r = await receiver();
  const hook = await createHook(name, 'apphook', {
    serviceUri: r.url,
    actions: ['push', 'delete'],
    scope: 'app:*',
    customHeaders: { Authorization: 'Bearer receiver-token' },
  });
  assert.equal(typeof hook.secret, 'string');
  assert.deepEqual(hook.properties.customHeaderNames, ['Authorization']);
  assert.equal(
    JSON.stringify((await api('GET', `/api/registries/${name}/webhooks/apphook`)).body).includes(
      'receiver-token',
    ),
    false,
  );

  await pushImageTo(berth, name, 'other', 'v1'); // out of scope
  const digest = await pushImageTo(berth, name, 'app', 'v1');
  const [push] = await r.waitFor(1);
  assert.equal(push!.path, '/hook');
  assert.equal(push!.headers.authorization, 'Bearer receiver-token');
  assert.equal(push!.headers['content-type'], 'application/json');
  const signature = createHmac('sha256', hook.secret).update(push!.body).digest('hex');
  assert.equal(push!.headers['x-berth-signature-256'], `sha256=${signature}`);
  const event = push!.json as {
    id: string;
    timestamp: string;
    action: string;
    target: Record<string, unknown>;
    request: Record<string, unknown>;
  };
  assert.equal(event.action, 'push');
  assert.equal(typeof event.id, 'string');
  assert.ok(!Number.isNaN(Date.parse(event.timestamp)));
  assert.equal(event.target.repository, 'app');
  assert.equal(event.target.tag, 'v1');
  assert.equal(event.target.digest, digest);
  assert.equal(event.target.mediaType, 'application/vnd.oci.image.manifest.v1+json');
  assert.equal(typeof event.target.size, 'number');
  assert.equal(event.target.length, event.target.size);
  assert.equal(event.request.method, 'PUT');
  assert.equal(event.request.host, `${name}.localhost:${new URL(berth.url).port}`);
  assert.equal(typeof event.request.id, 'string');
  assert.equal(typeof event.request.useragent, 'string');

  assert.equal((await dataPlane(berth, name, 'DELETE', `/v2/app/manifests/${digest}`)).status, 202);
  const [, del] = await r.waitFor(2);
  assert.equal(del!.json.action, 'delete');
  assert.deepEqual(del!.json.target, { digest, repository: 'app' });
  assert.equal(r.received.length, 2, 'the out-of-scope push sent nothing');

  // Deletes through the management API are events too (`berth repository untag|delete`).
  await pushImageTo(berth, name, 'app', 'v2');
  assert.equal((await api('DELETE', `/api/registries/${name}/repositories/app/tags/v2`)).status, 204);
  assert.equal((await api('DELETE', `/api/registries/${name}/repositories/app`)).status, 204);
  const [, , , untag, repoDelete] = await r.waitFor(5);
  assert.deepEqual([untag!.json.action, untag!.json.target], ['delete', { repository: 'app', tag: 'v2' }]);
  assert.deepEqual([repoDelete!.json.action, repoDelete!.json.target], ['delete', { repository: 'app' }]);

  const events = await api('POST', `/api/registries/${name}/webhooks/apphook/listEvents`);
  assert.equal(events.status, 200);
  const log = (
    events.body as {
      value: { action: string; status: string; eventResponseMessage: { statusCode: number } }[];
    }
  ).value;
  assert.deepEqual(
    log.map((e) => [e.action, e.status, e.eventResponseMessage.statusCode]),
    [
      ['delete', 'delivered', 200],
      ['delete', 'delivered', 200],
      ['push', 'delivered', 200],
      ['delete', 'delivered', 200],
      ['push', 'delivered', 200],
    ],
  );
});

test('a webhook disabled, re-enabled or re-scoped applies to the very next push (its list is cached)', async () => {
  const name = uniqueName('hookedit');
  await createRegistry(api, name);
  const r = await receiver();
  await createHook(name, 'edithook', { serviceUri: r.url, actions: ['push'] });
  await pushImageTo(berth, name, 'app', 'v1');
  await r.waitFor(1);
  const patch = (properties: Record<string, unknown>) =>
    api('PATCH', `/api/registries/${name}/webhooks/edithook`, { properties });
  assert.equal((await patch({ status: 'disabled' })).status, 200);
  await pushImageTo(berth, name, 'app', 'v2');
  assert.equal((await patch({ status: 'enabled', scope: 'other:*' })).status, 200);
  await pushImageTo(berth, name, 'app', 'v3');
  assert.equal((await patch({ scope: '' })).status, 200);
  await pushImageTo(berth, name, 'app', 'v4');
  const [, next] = await r.waitFor(2);
  // Deliveries leave in the order they were queued: a stale list would have queued v2 or v3 first.
  assert.equal((next!.json.target as { tag: string }).tag, 'v4');
});

test('a failing receiver is retried with backoff until it answers; a hanging one never slows pushes', async () => {
  const name = uniqueName('retry');
  await createRegistry(api, name);
  const flaky = await receiver();
  flaky.answer = (n) => (n <= 2 ? 500 : 204);
  const hanging = await receiver();
  hanging.answer = () => 0;
  await createHook(name, 'flakyhook', { serviceUri: flaky.url, actions: ['push'] });
  await createHook(name, 'hanginghook', { serviceUri: hanging.url, actions: ['push'] });
  for (let i = 0; i < 5; i++) await pushImageTo(berth, name, 'app', `v${i}`);
  await hanging.waitFor(1);
  // The five pushes were answered while the hanging receiver held its delivery open.
  await flaky.waitFor(7);
  const events = await api('POST', `/api/registries/${name}/webhooks/flakyhook/listEvents`);
  const log = (
    events.body as {
      value: { status: string; attempts: number; eventResponseMessage: { statusCode: number } }[];
    }
  ).value;
  assert.equal(log.length, 5);
  for (let i = 0; i < 60 && !log.every((e) => e.status === 'delivered'); i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const again = await api('POST', `/api/registries/${name}/webhooks/flakyhook/listEvents`);
    log.splice(0, log.length, ...(again.body as { value: typeof log }).value);
  }
  assert.ok(log.every((e) => e.status === 'delivered'));
  assert.equal(
    log.reduce((sum, e) => sum + e.attempts, 0),
    7,
    'two failed attempts were retried',
  );
});

test('ping, networkDenied aggregated per window, update, list and delete', async () => {
  const name = uniqueName('denyhook');
  await createRegistry(api, name);
  const r = await receiver();
  await createHook(name, 'denials', { serviceUri: r.url, actions: ['networkDenied'] });
  const ping = await api('POST', `/api/registries/${name}/webhooks/denials/ping`);
  assert.equal(ping.status, 200);
  const [pinged] = await r.waitFor(1);
  assert.equal(pinged!.json.action, 'ping');
  assert.equal(pinged!.json.id, (ping.body as { id: string }).id);

  await api('PATCH', `/api/registries/${name}`, {
    properties: { networkRuleSet: { defaultAction: 'Deny', ipRules: [] } },
  });
  for (let i = 0; i < 7; i++)
    assert.equal((await dataPlane(berth, name, 'GET', '/v2/', { from: '127.0.0.2' })).status, 403);
  const [, denied] = await r.waitFor(2);
  const target = denied!.json.target as {
    counts: Record<string, number>;
    total: number;
    distinctClients: number;
  };
  assert.equal(denied!.json.action, 'networkDenied');
  assert.deepEqual(target.counts, { ipNotAllowed: 7 });
  assert.equal(target.total, 7);
  assert.equal(target.distinctClients, 1);

  const updated = await api('PATCH', `/api/registries/${name}/webhooks/denials`, {
    properties: { status: 'disabled' },
  });
  assert.equal(updated.status, 200);
  assert.equal((updated.body as { properties: { status: string } }).properties.status, 'disabled');
  const list = await api('GET', `/api/registries/${name}/webhooks`);
  assert.deepEqual(
    (list.body as { value: { name: string }[] }).value.map((w) => w.name),
    ['denials'],
  );
  const bad = await api('PUT', `/api/registries/${name}/webhooks/badhook`, {
    properties: { serviceUri: 'ftp://x', actions: ['push'] },
  });
  assert.equal(bad.status, 400);
  assert.equal(
    (
      await api('PUT', `/api/registries/${name}/webhooks/denials`, {
        properties: { serviceUri: r.url, actions: ['push'] },
      })
    ).status,
    409,
  );
  assert.equal((await api('DELETE', `/api/registries/${name}/webhooks/denials`)).status, 204);
  assert.equal((await api('GET', `/api/registries/${name}/webhooks/denials`)).status, 404);
});

test('deliveries are queued durably: one pending when Berth stops is sent after the restart', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'berth-hooks-'));
  const first = await startTestBerth({ dataDir, webhooks: { retryBaseSeconds: 1 } });
  const r = await receiver();
  const port = Number(new URL(r.url).port);
  await r.stop(); // down while the push happens
  try {
    const firstApi = apiFor(first);
    const res = await firstApi('PUT', `/api/registries/default/webhooks/durable`, {
      properties: { serviceUri: r.url, actions: ['push'] },
    });
    assert.equal(res.status, 201, res.text);
    await pushImageTo(first, 'default', 'app', 'v1');
  } finally {
    await first.close();
  }
  await r.start(port);
  const second = await startTestBerth({ dataDir, webhooks: { retryBaseSeconds: 1 } });
  try {
    const [event] = await r.waitFor(1);
    assert.equal(event!.json.action, 'push');
    assert.equal((event!.json.target as { tag: string }).tag, 'v1');
  } finally {
    await second.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
