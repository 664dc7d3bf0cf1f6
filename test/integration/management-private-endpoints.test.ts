import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { DEFAULT_SKU_PLANS } from '../../src/management/skus.js';
import {
  apiFor,
  canConnect,
  createRegistry,
  dataPlane,
  expectApiError,
  freePort,
  pushImageTo,
  uniqueName,
  type Api,
} from '../helpers/management.js';
import { startTestBerth, type TestBerth } from '../helpers/server.js';

let berth: TestBerth;
let limited: TestBerth;
let api: Api;
before(async () => {
  berth = await startTestBerth();
  limited = await startTestBerth({
    skus: { ...DEFAULT_SKU_PLANS, Premium: { ...DEFAULT_SKU_PLANS.Premium, maxPrivateEndpoints: 1 } },
  });
  api = apiFor(berth);
});
after(async () => {
  await berth.stop();
  await limited.stop();
});

const pePath = (registry: string, pe: string) =>
  `/api/registries/${registry}/privateEndpointConnections/${pe}`;
const createBody = (address: string, status?: string) => ({
  properties: {
    privateEndpoint: { address },
    ...(status ? { privateLinkServiceConnectionState: { status } } : {}),
  },
});
const setState = (status: string, description?: string) => ({
  properties: { privateLinkServiceConnectionState: { status, ...(description ? { description } : {}) } },
});

/** A data-plane request to a private endpoint's own listener (the Host names some other registry). */
const viaEndpoint = (port: number, path = '/v2/') =>
  dataPlane({ url: `http://127.0.0.1:${port}` }, 'default', 'GET', path, {
    headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' },
  });

/** Waits (bounded) until a port stops accepting connections. */
async function closedSoon(port: number): Promise<boolean> {
  for (let i = 0; i < 50; i++) {
    if (!(await canConnect('127.0.0.1', port, 500))) return true;
    await sleep(20);
  }
  return false;
}

test('create a private endpoint connection: 201 Pending, its own listener, shown everywhere', async () => {
  const name = uniqueName('pecreate');
  await createRegistry(api, name, 'Premium');
  const port = await freePort();
  const res = await api('PUT', pePath(name, 'pe-one'), createBody(`127.0.0.1:${port}`));
  assert.equal(res.status, 201, res.text);
  const expected = {
    id: `/registries/${name}/privateEndpointConnections/pe-one`,
    name: 'pe-one',
    type: 'Berth/registries/privateEndpointConnections',
    properties: {
      privateEndpoint: { address: `127.0.0.1:${port}` },
      privateLinkServiceConnectionState: { status: 'Pending', description: '', actionsRequired: 'None' },
      provisioningState: 'Succeeded',
    },
  };
  assert.deepEqual(res.body, expected);
  assert.ok(await canConnect('127.0.0.1', port), 'the listener accepts connections');

  assert.deepEqual((await api('GET', pePath(name, 'pe-one'))).body, expected);
  assert.deepEqual((await api('GET', `/api/registries/${name}/privateEndpointConnections`)).body, {
    value: [expected],
  });
  const registry = await api('GET', `/api/registries/${name}`);
  assert.deepEqual(registry.body.properties.privateEndpointConnections, [expected]);
  const endpoints = await api('GET', `/api/registries/${name}/endpoints`);
  assert.deepEqual(endpoints.body.privateEndpoints, [
    { name: 'pe-one', address: `127.0.0.1:${port}`, state: 'Pending' },
  ]);
  expectApiError(await api('GET', pePath(name, 'other')), 404, 'ResourceNotFound', 'other');
});

test('approve and reject: only an Approved connection serves, and only its own registry', async () => {
  const name = uniqueName('peapprove');
  await createRegistry(api, name, 'Premium');
  const digest = await pushImageTo(berth, name, 'app', 'v1');
  const port = await freePort();
  assert.equal((await api('PUT', pePath(name, 'pe1'), createBody(`127.0.0.1:${port}`))).status, 201);

  const pending = await viaEndpoint(port);
  assert.equal(pending.status, 403);
  assert.match(pending.body.toString(), /DENIED/);
  assert.match(pending.body.toString(), /not approved/);

  const approve = await api('PUT', pePath(name, 'pe1'), setState('Approved', 'ok by ops'));
  assert.equal(approve.status, 200, approve.text);
  assert.deepEqual(approve.body.properties.privateLinkServiceConnectionState, {
    status: 'Approved',
    description: 'ok by ops',
    actionsRequired: 'None',
  });
  const served = await viaEndpoint(port, '/v2/app/manifests/v1');
  assert.equal(served.status, 200, served.body.toString());
  assert.equal(
    served.headers['docker-content-digest'],
    digest,
    'the endpoint serves its registry whatever Host says',
  );

  // Public network rules do not apply to the private endpoint.
  const off = await api('PATCH', `/api/registries/${name}`, {
    properties: { publicNetworkAccess: 'Disabled' },
  });
  assert.equal(off.status, 200, off.text);
  assert.equal((await dataPlane(berth, name, 'GET', '/v2/')).status, 403, 'public entry refused');
  assert.equal((await viaEndpoint(port)).status, 200, 'private entry still served');

  const reject = await api('PUT', pePath(name, 'pe1'), setState('Rejected'));
  assert.equal(reject.status, 200, reject.text);
  assert.equal(reject.body.properties.privateLinkServiceConnectionState.status, 'Rejected');
  assert.equal(reject.body.properties.privateLinkServiceConnectionState.description, 'ok by ops', 'kept');
  assert.equal((await viaEndpoint(port)).status, 403);
  const denials = await api('GET', `/api/registries/${name}/networkDenials`);
  const reasons = denials.body.value.map((d: { reason: string; entry: string }) => `${d.reason} ${d.entry}`);
  assert.ok(reasons.includes('privateEndpointNotApproved private:pe1'), reasons.join(', '));
});

test('a connection may be created already Approved; re-sending its address is fine, changing it is 400', async () => {
  const name = uniqueName('peaddr');
  await createRegistry(api, name, 'Premium');
  const port = await freePort();
  const created = await api('PUT', pePath(name, 'pe1'), createBody(`127.0.0.1:${port}`, 'Approved'));
  assert.equal(created.status, 201, created.text);
  assert.equal((await viaEndpoint(port)).status, 200);

  const same = await api('PUT', pePath(name, 'pe1'), createBody(`127.0.0.1:${port}`, 'Approved'));
  assert.equal(same.status, 200, same.text);
  const other = await freePort();
  const moved = await api('PUT', pePath(name, 'pe1'), createBody(`127.0.0.1:${other}`));
  expectApiError(moved, 400, 'InvalidParameter', /cannot change/);
  assert.equal(
    (await api('GET', pePath(name, 'pe1'))).body.properties.privateEndpoint.address,
    `127.0.0.1:${port}`,
  );
});

test('bad addresses, names and bodies are 400 and open nothing', async () => {
  const name = uniqueName('pebad');
  await createRegistry(api, name, 'Premium');
  const port = await freePort();
  for (const address of [
    'localhost:5000',
    '127.0.0.1',
    `127.0.0.1:0`,
    '127.0.0.1:70000',
    '[::1]',
    ':5000',
    '1.2.3:80',
  ]) {
    const res = await api('PUT', pePath(name, 'pe1'), createBody(address));
    expectApiError(res, 400, 'InvalidParameter', address);
  }
  expectApiError(await api('PUT', pePath(name, 'pe1'), {}), 400, 'InvalidRequestContent', /address/);
  expectApiError(
    await api('PUT', pePath(name, '-dash'), createBody(`127.0.0.1:${port}`)),
    400,
    'InvalidParameter',
  );
  expectApiError(
    await api('PUT', pePath(name, 'a'.repeat(81)), createBody(`127.0.0.1:${port}`)),
    400,
    'InvalidParameter',
  );
  const state = await api('PUT', pePath(name, 'pe1'), createBody(`127.0.0.1:${port}`, 'Maybe'));
  expectApiError(state, 400, 'InvalidRequestContent', /Pending, Approved, Rejected, Disconnected/);
  const extra = await api('PUT', pePath(name, 'pe1'), {
    properties: { privateEndpoint: { address: `127.0.0.1:${port}`, vnet: 'x' } },
  });
  expectApiError(extra, 400, 'InvalidRequestContent', "'vnet'");
  assert.deepEqual((await api('GET', `/api/registries/${name}/privateEndpointConnections`)).body.value, []);
  assert.equal(await canConnect('127.0.0.1', port, 500), false, 'nothing listens on the port');
});

test('IPv6 addresses are stored canonically', async () => {
  const name = uniqueName('pev6');
  await createRegistry(api, name, 'Premium');
  const port = await freePort('::1');
  const res = await api('PUT', pePath(name, 'v6'), createBody(`[0:0:0:0:0:0:0:1]:${port}`));
  assert.equal(res.status, 201, res.text);
  assert.equal(res.body.properties.privateEndpoint.address, `[::1]:${port}`);
  assert.ok(await canConnect('::1', port));
  assert.equal((await api('DELETE', pePath(name, 'v6'))).status, 204);
});

test('an address another connection uses is 409; one bound by another process is 400', async () => {
  const a = uniqueName('pedupa');
  const b = uniqueName('pedupb');
  await createRegistry(api, a, 'Premium');
  await createRegistry(api, b, 'Premium');
  const port = await freePort();
  assert.equal((await api('PUT', pePath(a, 'pe1'), createBody(`127.0.0.1:${port}`))).status, 201);
  expectApiError(
    await api('PUT', pePath(b, 'pe1'), createBody(`127.0.0.1:${port}`)),
    409,
    'Conflict',
    `127.0.0.1:${port}`,
  );
  expectApiError(await api('PUT', pePath(a, 'pe2'), createBody(`127.0.0.1:${port}`)), 409, 'Conflict');

  const squatter: Server = createServer();
  const taken = await freePort();
  await new Promise<void>((resolve) => squatter.listen(taken, '127.0.0.1', resolve));
  try {
    const res = await api('PUT', pePath(b, 'pe1'), createBody(`127.0.0.1:${taken}`));
    expectApiError(res, 400, 'InvalidParameter', /Cannot listen on 127\.0\.0\.1:\d+/);
    assert.deepEqual((await api('GET', `/api/registries/${b}/privateEndpointConnections`)).body.value, []);
  } finally {
    await new Promise<void>((resolve) => squatter.close(() => resolve()));
  }
  const managementPort = Number(new URL(berth.managementUrl).port);
  const onApi = await api('PUT', pePath(b, 'pe1'), createBody(`127.0.0.1:${managementPort}`));
  assert.ok([400, 409].includes(onApi.status), `the management listener's own address: ${onApi.status}`);
  assert.equal((await api('GET', '/api/whoami')).status, 200, 'the management API still answers');
});

test('DELETE closes the listener at once; the address can then be reused', async () => {
  const name = uniqueName('pedelete');
  await createRegistry(api, name, 'Premium');
  const port = await freePort();
  assert.equal(
    (await api('PUT', pePath(name, 'pe1'), createBody(`127.0.0.1:${port}`, 'Approved'))).status,
    201,
  );
  assert.equal((await viaEndpoint(port)).status, 200);

  const del = await api('DELETE', pePath(name, 'pe1'));
  assert.equal(del.status, 204, del.text);
  assert.equal(await canConnect('127.0.0.1', port, 500), false, 'the port stops accepting');
  expectApiError(await api('GET', pePath(name, 'pe1')), 404, 'ResourceNotFound');
  expectApiError(await api('DELETE', pePath(name, 'pe1')), 404, 'ResourceNotFound');
  assert.deepEqual((await api('GET', `/api/registries/${name}/privateEndpointConnections`)).body.value, []);

  const again = await api('PUT', pePath(name, 'pe2'), createBody(`127.0.0.1:${port}`));
  assert.equal(again.status, 201, again.text);
  assert.equal((await api('DELETE', pePath(name, 'pe2'))).status, 204);
});

test('deleting a registry closes its private endpoint listeners', async () => {
  const name = uniqueName('peregdel');
  await createRegistry(api, name, 'Premium');
  const port = await freePort();
  assert.equal(
    (await api('PUT', pePath(name, 'pe1'), createBody(`127.0.0.1:${port}`, 'Approved'))).status,
    201,
  );
  assert.equal((await api('DELETE', `/api/registries/${name}`)).status, 204);
  assert.ok(await closedSoon(port), 'the listener of a deleted registry closes');
});

test('the number of connections per registry is limited by the SKU plan', async () => {
  const limitedApi = apiFor(limited);
  const name = uniqueName('pelimit');
  await createRegistry(limitedApi, name, 'Premium');
  const first = await limitedApi('PUT', pePath(name, 'pe1'), createBody(`127.0.0.1:${await freePort()}`));
  assert.equal(first.status, 201, first.text);
  const port = await freePort();
  const second = await limitedApi('PUT', pePath(name, 'pe2'), createBody(`127.0.0.1:${port}`));
  expectApiError(second, 400, 'InvalidParameter', /at most 1 private endpoint/);
  assert.equal(await canConnect('127.0.0.1', port, 500), false);
  const state = await limitedApi('PUT', pePath(name, 'pe1'), setState('Approved'));
  assert.equal(state.status, 200, 'changing an existing connection is not limited');
});
