// A private endpoint connection is its own listener, opened and closed live, and governed by its
// approval state alone: the registry's public settings and IP rules do not apply to it.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  api,
  denials,
  expectDenied,
  freePort,
  holdConnection,
  send,
  setNetwork,
  singleSocketAgent,
  streamRequest,
  waitFor,
} from '../helpers/net.js';
import { pushImage } from '../helpers/oci.js';
import { startTestBerth, type TestBerth } from '../helpers/server.js';

const PE_PATH = '/api/registries/default/privateEndpointConnections';

let berth: TestBerth;
before(async () => {
  berth = await startTestBerth();
  await pushImage(berth.url, 'private/app', 'v1');
});
after(() => berth.stop());

async function putConnection(name: string, body: object): Promise<{ status: number; json: unknown }> {
  return api(berth, 'PUT', `${PE_PATH}/${name}`, { properties: body });
}

async function setState(name: string, status: string): Promise<void> {
  const res = await putConnection(name, { privateLinkServiceConnectionState: { status } });
  assert.equal(res.status, 200, JSON.stringify(res.json));
  const state = (res.json as { properties: { privateLinkServiceConnectionState: { status: string } } })
    .properties.privateLinkServiceConnectionState.status;
  assert.equal(state, status);
}

/** Whether a TCP connection to the port is refused (ECONNREFUSED) right now. */
async function refusesConnections(url: string): Promise<boolean> {
  return send(url, '/v2/', { timeoutMs: 2_000 }).then(
    () => false,
    (error: NodeJS.ErrnoException) => error.code === 'ECONNREFUSED',
  );
}

test('lifecycle: Pending refuses, Approved serves despite public rules, Rejected refuses, delete closes', async () => {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  assert.equal(
    await refusesConnections(url),
    true,
    'nothing listens on the port before the connection exists',
  );

  // Public access off and no rule for anyone: the private endpoint is unaffected by either.
  await setNetwork(berth, { publicNetworkAccess: 'Disabled', defaultAction: 'Deny', ipRules: ['10.0.0.1'] });

  const created = await putConnection('pe1', { privateEndpoint: { address: `127.0.0.1:${port}` } });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  const resource = created.json as {
    properties: {
      privateEndpoint: { address: string };
      privateLinkServiceConnectionState: { status: string };
    };
  };
  assert.equal(resource.properties.privateEndpoint.address, `127.0.0.1:${port}`);
  assert.equal(resource.properties.privateLinkServiceConnectionState.status, 'Pending');

  // Pending: the listener accepts connections, and refuses the requests.
  const pending = await send(url, '/v2/', { from: '127.0.0.3' });
  const pendingError = expectDenied(pending, '127.0.0.3', 'privateEndpointNotApproved');
  assert.match(pendingError.message, /private endpoint connection 'pe1' is not approved/);
  expectDenied(
    await send(url, '/v2/private/app/manifests/v1', { from: '127.0.0.3' }),
    '127.0.0.3',
    'privateEndpointNotApproved',
  );

  await setState('pe1', 'Approved');
  for (const from of ['127.0.0.2', '127.0.0.3']) {
    const served = await send(url, '/v2/private/app/tags/list', { from });
    assert.equal(served.status, 200, served.text);
    assert.deepEqual(JSON.parse(served.text), { name: 'private/app', tags: ['v1'] });
  }
  // The public listener still refuses the same address: only the endpoint is exempt.
  expectDenied(
    await send(berth.url, '/v2/', { from: '127.0.0.3' }),
    '127.0.0.3',
    'publicNetworkAccessDisabled',
  );

  // The endpoint's listener serves its own registry whatever the Host header names.
  const otherHost = await send(url, '/v2/private/app/tags/list', {
    headers: { Host: 'elsewhere.localhost' },
  });
  assert.equal(otherHost.status, 200, otherHost.text);

  await setState('pe1', 'Rejected');
  expectDenied(await send(url, '/v2/', { from: '127.0.0.3' }), '127.0.0.3', 'privateEndpointNotApproved');
  await setState('pe1', 'Disconnected');
  expectDenied(await send(url, '/v2/', { from: '127.0.0.3' }), '127.0.0.3', 'privateEndpointNotApproved');
  await setState('pe1', 'Approved');
  assert.equal((await send(url, '/v2/')).status, 200);

  // A connection held open across the delete must be closed too, not just the listening socket.
  const held = await holdConnection({ host: '127.0.0.1', port }, '127.0.0.2');
  assert.equal(await held.get('/v2/', `127.0.0.1:${port}`), 200);
  const agent = singleSocketAgent();
  const pooled = await send(url, '/v2/', { agent, from: '127.0.0.3' });
  assert.equal(pooled.status, 200);

  const deleted = await api(berth, 'DELETE', `${PE_PATH}/pe1`);
  assert.equal(deleted.status, 204, deleted.text);
  assert.equal(
    await held.closedWithin(3_000),
    true,
    'an open keep-alive connection must be closed on delete',
  );
  assert.equal(await refusesConnections(url), true, 'a deleted endpoint must refuse new connections');
  // The pooled keep-alive socket is gone as well: the next request cannot reuse it and is refused.
  await assert.rejects(send(url, '/v2/', { agent, from: '127.0.0.3' }), (error: NodeJS.ErrnoException) =>
    ['ECONNREFUSED', 'ECONNRESET', 'EPIPE'].includes(error.code ?? ''),
  );
  agent.destroy();
  held.socket.destroy();

  const gone = await api(berth, 'GET', `${PE_PATH}/pe1`);
  assert.equal(gone.status, 404);
  await setNetwork(berth, { publicNetworkAccess: 'Enabled', defaultAction: 'Allow', ipRules: [] });
});

test('a connection created Approved serves at once; a request in flight is refused after Rejected', async () => {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const created = await putConnection('pe2', {
    privateEndpoint: { address: `127.0.0.1:${port}` },
    privateLinkServiceConnectionState: { status: 'Approved', description: 'pre-approved' },
  });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  const agent = singleSocketAgent();
  try {
    const first = await send(url, '/v2/', { agent });
    assert.equal(first.status, 200);
    await setState('pe2', 'Rejected');
    const second = await send(url, '/v2/', { agent });
    assert.equal(second.localPort, first.localPort, 'same keep-alive connection');
    expectDenied(second, '127.0.0.1', 'privateEndpointNotApproved');
  } finally {
    agent.destroy();
  }
  const log = await denials(berth, '?ip=127.0.0.1');
  assert.ok(
    log.value.some((d) => d.entry === 'private:pe2' && d.reason === 'privateEndpointNotApproved'),
    `the denial log names the private entry: ${JSON.stringify(log.value)}`,
  );
  assert.equal((await api(berth, 'DELETE', `${PE_PATH}/pe2`)).status, 204);
  await waitFor('the pe2 listener to close', () => refusesConnections(url));
});

test('a trusted-service key does not bypass an unapproved private endpoint', async () => {
  const key = await api(berth, 'POST', '/api/apiKeys', {
    name: 'pe-bypass',
    role: 'Reader',
    trustedService: true,
  });
  assert.equal(key.status, 201);
  await setNetwork(berth, { networkRuleBypassOptions: 'AzureServices' });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  assert.equal(
    (await putConnection('pe3', { privateEndpoint: { address: `127.0.0.1:${port}` } })).status,
    201,
  );
  const res = await send(url, '/v2/', {
    from: '127.0.0.3',
    headers: { Authorization: `Bearer ${(key.json as { key: string }).key}` },
  });
  expectDenied(res, '127.0.0.3', 'privateEndpointNotApproved');
  assert.equal((await api(berth, 'DELETE', `${PE_PATH}/pe3`)).status, 204);
});

test('an address already in use is refused, and the refusal opens or records nothing', async () => {
  const port = await freePort();
  assert.equal(
    (await putConnection('first', { privateEndpoint: { address: `127.0.0.1:${port}` } })).status,
    201,
  );
  const clash = await putConnection('second', { privateEndpoint: { address: `127.0.0.1:${port}` } });
  assert.equal(clash.status, 409, JSON.stringify(clash.json));
  assert.equal((await api(berth, 'GET', `${PE_PATH}/second`)).status, 404);
  // The public listener's own address (bound to an ephemeral port) cannot be taken either.
  const taken = await putConnection('third', { privateEndpoint: { address: new URL(berth.url).host } });
  assert.ok([400, 409].includes(taken.status), JSON.stringify(taken.json));
  assert.equal((await api(berth, 'GET', `${PE_PATH}/third`)).status, 404);
  // The first connection is untouched by the failed attempts.
  expectDenied(await send(`http://127.0.0.1:${port}`, '/v2/'), '127.0.0.1', 'privateEndpointNotApproved');
  assert.equal((await api(berth, 'DELETE', `${PE_PATH}/first`)).status, 204);
});

test('an IPv6 endpoint: the address is stored canonically, and re-sending it as first written is no change', async () => {
  const port = await freePort('::1');
  const written = `[0:0:0:0:0:0:0:1]:${port}`;
  const created = await putConnection('pe6', { privateEndpoint: { address: written } });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  const address = (created.json as { properties: { privateEndpoint: { address: string } } }).properties
    .privateEndpoint.address;
  assert.equal(address, `[::1]:${port}`);
  // A client that PUTs back what it first sent, with a new state, is not changing the address.
  const approved = await putConnection('pe6', {
    privateEndpoint: { address: written },
    privateLinkServiceConnectionState: { status: 'Approved' },
  });
  assert.equal(approved.status, 200, JSON.stringify(approved.json));
  const served = await send(`http://[::1]:${port}`, '/v2/', { from: '::1' });
  assert.equal(served.status, 200, served.text);
  // A really different address is still refused.
  const moved = await putConnection('pe6', { privateEndpoint: { address: `[::1]:${port + 1}` } });
  assert.equal(moved.status, 400, JSON.stringify(moved.json));
  assert.equal((await api(berth, 'DELETE', `${PE_PATH}/pe6`)).status, 204);
  await waitFor('the pe6 listener to close', () => refusesConnections(`http://[::1]:${port}`));
});

test('rejecting a connection cuts off an upload in flight through it', async () => {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const created = await putConnection('pe-upload', {
    privateEndpoint: { address: `127.0.0.1:${port}` },
    privateLinkServiceConnectionState: { status: 'Approved' },
  });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  const started = await send(url, '/v2/private/upload/blobs/uploads/', { method: 'POST' });
  assert.equal(started.status, 202, started.text);
  const uploadPath = new URL(started.headers.location!, url).pathname;
  const piece = Buffer.alloc(16 * 1024, 7);
  const stream = streamRequest(url, uploadPath, {
    method: 'PATCH',
    headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(8 * piece.length) },
  });
  await stream.write(piece);
  await sleep(50);
  await setState('pe-upload', 'Rejected');
  for (let i = 1; i < 8 && !stream.settled(); i++) {
    await stream.write(piece);
    await sleep(30);
  }
  stream.end();
  const outcome = await stream.result;
  assert.ok(
    outcome.error || (outcome.response && outcome.response.status >= 400),
    `the upload must be cut off, got ${outcome.response?.status}: ${outcome.response?.text}`,
  );
  await setState('pe-upload', 'Approved');
  const status = await send(url, uploadPath);
  assert.equal(status.status, 204, status.text);
  assert.equal(status.headers.range, '0-0', 'nothing of the cut-off chunk was accepted');
  assert.equal((await api(berth, 'DELETE', `${PE_PATH}/pe-upload`)).status, 204);
});
