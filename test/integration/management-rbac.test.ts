import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  apiFor,
  createApiKey,
  createRegistry,
  expectApiError,
  freePort,
  uniqueName,
  type Api,
} from '../helpers/management.js';
import { startTestBerth, type TestBerth } from '../helpers/server.js';

let berth: TestBerth;
let api: Api;
let regA: string;
let regB: string;
before(async () => {
  berth = await startTestBerth();
  api = apiFor(berth);
  regA = uniqueName('rbaca');
  regB = uniqueName('rbacb');
  await createRegistry(api, regA, 'Premium', { adminUserEnabled: true });
  await createRegistry(api, regB, 'Premium');
});
after(async () => {
  await berth.stop();
});

const forbidden = (res: Awaited<ReturnType<Api>>, what: string) =>
  expectApiError(res, 403, 'AuthorizationFailed', what);

test('POST /api/apiKeys returns the key once; GET /api/apiKeys never shows secrets', async () => {
  const name = uniqueName('listed');
  const res = await api('POST', '/api/apiKeys', { name, role: 'Reader', registry: regA });
  assert.equal(res.status, 201, res.text);
  const { id, key } = res.body;
  assert.deepEqual(res.body, { id, name, role: 'Reader', registry: regA, trustedService: false, key });
  assert.match(key, /^berth_[0-9a-f-]{36}_[A-Za-z0-9_-]{20,}$/);
  assert.ok(key.includes(id));

  const list = await api('GET', '/api/apiKeys');
  assert.equal(list.status, 200, list.text);
  const entry = list.body.value.find((k: { id: string }) => k.id === id);
  assert.deepEqual(Object.keys(entry).sort(), ['createdAt', 'id', 'name', 'roles']);
  assert.deepEqual(entry.roles, [{ registry: regA, role: 'Reader' }]);
  assert.ok(!Number.isNaN(Date.parse(entry.createdAt)));
  const secret = key.slice(key.lastIndexOf('_') + 1);
  assert.ok(!list.text.includes(secret), 'the secret is not listed');
  assert.ok(!/scrypt|secretHash|"key"/.test(list.text), 'no hash or key field is listed');

  const dup = await api('POST', '/api/apiKeys', { name, role: 'Owner' });
  expectApiError(dup, 409, 'Conflict', name);
  const onUnknown = await api('POST', '/api/apiKeys', {
    name: uniqueName('k'),
    role: 'Reader',
    registry: 'nosuchreg1',
  });
  expectApiError(onUnknown, 404, 'ResourceNotFound');
  const badRole = await api('POST', '/api/apiKeys', { name: uniqueName('k'), role: 'Admin' });
  expectApiError(badRole, 400, 'InvalidRequestContent', /role/);
  const badName = await api('POST', '/api/apiKeys', { name: 'has space', role: 'Reader' });
  expectApiError(badName, 400, 'InvalidRequestContent', /name/);
});

test('a key created without registry has its role on *', async () => {
  const res = await api('POST', '/api/apiKeys', { name: uniqueName('star'), role: 'Reader' });
  assert.equal(res.status, 201, res.text);
  assert.equal(res.body.registry, '*');
  const who = await api('GET', '/api/whoami', undefined, `Bearer ${res.body.key}`);
  assert.deepEqual(who.body.roles, [{ registry: '*', role: 'Reader' }]);
});

test('Reader on a registry can GET it but not change, delete or manage it', async () => {
  const reader = (await createApiKey(api, uniqueName('reader'), 'Reader', regA)).auth;
  assert.equal((await api('GET', `/api/registries/${regA}`, undefined, reader)).status, 200);
  assert.equal((await api('GET', `/api/registries/${regA}/endpoints`, undefined, reader)).status, 200);
  assert.equal((await api('GET', `/api/registries/${regA}/repositories`, undefined, reader)).status, 200);
  const check = await api('POST', `/api/registries/${regA}/checkNetworkAccess`, { ip: '1.2.3.4' }, reader);
  assert.equal(check.status, 200);

  const patch = await api(
    'PATCH',
    `/api/registries/${regA}`,
    { properties: { anonymousPullEnabled: true } },
    reader,
  );
  forbidden(patch, 'Contributor');
  forbidden(await api('PUT', `/api/registries/${regA}`, { sku: { name: 'Premium' } }, reader), 'Contributor');
  forbidden(await api('DELETE', `/api/registries/${regA}`, undefined, reader), 'Owner');
  forbidden(await api('POST', `/api/registries/${regA}/listCredentials`, undefined, reader), 'Contributor');
  const pe = await api(
    'PUT',
    `/api/registries/${regA}/privateEndpointConnections/pe1`,
    { properties: { privateEndpoint: { address: `127.0.0.1:${await freePort()}` } } },
    reader,
  );
  forbidden(pe, 'Contributor');
  forbidden(
    await api('POST', '/api/apiKeys', { name: uniqueName('x'), role: 'Reader', registry: regA }, reader),
    'Owner',
  );
  forbidden(await api('GET', '/api/apiKeys', undefined, reader), 'Owner');
  forbidden(
    await api('PUT', `/api/registries/${uniqueName('new')}`, { sku: { name: 'Basic' } }, reader),
    'Contributor',
  );

  const got = await api('GET', `/api/registries/${regA}`);
  assert.equal(got.body.properties.anonymousPullEnabled, false, 'the refused PATCH changed nothing');
  assert.equal(got.status, 200, 'the refused DELETE deleted nothing');
});

test('Contributor can PATCH and read credentials but not delete the registry or create keys', async () => {
  const contributor = (await createApiKey(api, uniqueName('contrib'), 'Contributor', regA)).auth;
  const patch = await api(
    'PATCH',
    `/api/registries/${regA}`,
    { properties: { networkRuleBypassOptions: 'None' } },
    contributor,
  );
  assert.equal(patch.status, 200, patch.text);
  assert.equal(patch.body.properties.networkRuleBypassOptions, 'None');
  assert.equal(
    (await api('POST', `/api/registries/${regA}/listCredentials`, undefined, contributor)).status,
    200,
  );

  forbidden(await api('DELETE', `/api/registries/${regA}`, undefined, contributor), 'Owner');
  const key = await api(
    'POST',
    '/api/apiKeys',
    { name: uniqueName('y'), role: 'Reader', registry: regA },
    contributor,
  );
  forbidden(key, 'Owner');
  const assign = await api(
    'PUT',
    `/api/registries/${regA}/roleAssignments/admin`,
    { role: 'Reader' },
    contributor,
  );
  forbidden(assign, 'Owner');
  // A registry-scoped Contributor cannot create new registries (that needs a role on *).
  forbidden(
    await api('PUT', `/api/registries/${uniqueName('new')}`, { sku: { name: 'Basic' } }, contributor),
    'registries',
  );
  assert.equal((await api('GET', `/api/registries/${regA}`)).status, 200);
});

test('a key scoped to registry A cannot see registry B: GET is 403 and the list omits B', async () => {
  const owner = (await createApiKey(api, uniqueName('scoped'), 'Owner', regA)).auth;
  forbidden(await api('GET', `/api/registries/${regB}`, undefined, owner), regB);
  forbidden(await api('PATCH', `/api/registries/${regB}`, {}, owner), regB);
  forbidden(await api('GET', `/api/registries/${regB}/repositories`, undefined, owner), regB);
  forbidden(await api('GET', `/api/registries/${regB}/networkDenials`, undefined, owner), regB);
  forbidden(await api('GET', `/api/registries/${regB}/privateEndpointConnections`, undefined, owner), regB);
  const list = await api('GET', '/api/registries', undefined, owner);
  assert.equal(list.status, 200);
  assert.deepEqual(
    list.body.value.map((r: { name: string }) => r.name),
    [regA],
  );
  // Owner on A may hand out keys for A, but not for B or for every registry.
  const forA = await api(
    'POST',
    '/api/apiKeys',
    { name: uniqueName('a'), role: 'Reader', registry: regA },
    owner,
  );
  assert.equal(forA.status, 201, forA.text);
  forbidden(
    await api('POST', '/api/apiKeys', { name: uniqueName('b'), role: 'Reader', registry: regB }, owner),
    regB,
  );
  forbidden(
    await api('POST', '/api/apiKeys', { name: uniqueName('s'), role: 'Reader' }, owner),
    'registries',
  );
});

test('a registry-scoped Owner cannot mint a trusted-service key (it would bypass every registry)', async () => {
  const owner = (await createApiKey(api, uniqueName('ownera'), 'Owner', regA)).auth;
  const res = await api(
    'POST',
    '/api/apiKeys',
    { name: uniqueName('trusted'), role: 'Reader', registry: regA, trustedService: true },
    owner,
  );
  forbidden(res, 'registries');
  const byAdmin = await api('POST', '/api/apiKeys', {
    name: uniqueName('trusted'),
    role: 'Reader',
    registry: regA,
    trustedService: true,
  });
  assert.equal(byAdmin.status, 201, byAdmin.text);
  assert.equal(byAdmin.body.trustedService, true);
});

test('Reader and Contributor on * reach every registry with their role', async () => {
  const reader = (await createApiKey(api, uniqueName('rstar'), 'Reader')).auth;
  const list = await api('GET', '/api/registries', undefined, reader);
  const names = list.body.value.map((r: { name: string }) => r.name);
  assert.ok(names.includes(regA) && names.includes(regB) && names.includes('default'));
  forbidden(await api('PATCH', `/api/registries/${regB}`, {}, reader), 'Contributor');

  const contributor = (await createApiKey(api, uniqueName('cstar'), 'Contributor')).auth;
  const name = uniqueName('bycontrib');
  const created = await api('PUT', `/api/registries/${name}`, { sku: { name: 'Basic' } }, contributor);
  assert.equal(created.status, 201, created.text);
  forbidden(await api('DELETE', `/api/registries/${name}`, undefined, contributor), 'Owner');
});

test('a deleted key is 401 at once; deleting an unknown key is 404', async () => {
  const { id, auth } = await createApiKey(api, uniqueName('doomed'), 'Reader');
  assert.equal((await api('GET', '/api/whoami', undefined, auth)).status, 200, 'works (and is cached)');
  const del = await api('DELETE', `/api/apiKeys/${id}`);
  assert.equal(del.status, 204, del.text);
  expectApiError(await api('GET', '/api/whoami', undefined, auth), 401, 'AuthenticationFailed');
  const list = await api('GET', '/api/apiKeys');
  assert.ok(!list.body.value.some((k: { id: string }) => k.id === id));
  expectApiError(await api('DELETE', `/api/apiKeys/${id}`), 404, 'ResourceNotFound');
});

test('DELETE /api/apiKeys/{id} deletes only API keys, never a user account', async () => {
  const ownerKey = (await createApiKey(api, uniqueName('globalowner'), 'Owner')).auth;
  // Assigning a role to 'admin' reveals its principal id.
  const assign = await api(
    'PUT',
    `/api/registries/${regB}/roleAssignments/admin`,
    { role: 'Reader' },
    ownerKey,
  );
  assert.equal(assign.status, 200, assign.text);
  const adminId = assign.body.principalId;
  const res = await api('DELETE', `/api/apiKeys/${adminId}`, undefined, ownerKey);
  expectApiError(res, 404, 'ResourceNotFound');
  assert.equal((await api('GET', '/api/whoami')).status, 200, 'the owner account still signs in');
});

test('role assignment: PUT roleAssignments/{principal} grants a role by id or by name', async () => {
  const name = uniqueName('grantee');
  const { id, auth } = await createApiKey(api, name, 'Reader', regA);
  forbidden(await api('PATCH', `/api/registries/${regA}`, {}, auth), 'Contributor');

  const res = await api('PUT', `/api/registries/${regA}/roleAssignments/${id}`, { role: 'Contributor' });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body, { principalId: id, registry: regA, role: 'Contributor' });
  assert.equal((await api('PATCH', `/api/registries/${regA}`, {}, auth)).status, 200, 'the new role applies');

  const byName = await api('PUT', `/api/registries/${regB.toUpperCase()}/roleAssignments/${name}`, {
    role: 'Reader',
  });
  assert.equal(byName.status, 200, byName.text);
  assert.deepEqual(byName.body, { principalId: id, registry: regB, role: 'Reader' });
  const who = await api('GET', '/api/whoami', undefined, auth);
  assert.deepEqual(
    [...who.body.roles].sort((x: { registry: string }, y: { registry: string }) =>
      x.registry.localeCompare(y.registry),
    ),
    [
      { registry: regA, role: 'Contributor' },
      { registry: regB, role: 'Reader' },
    ].sort((x, y) => x.registry.localeCompare(y.registry)),
  );

  expectApiError(
    await api('PUT', `/api/registries/${regA}/roleAssignments/nobody${id}`, { role: 'Reader' }),
    404,
    'ResourceNotFound',
  );
  expectApiError(
    await api('PUT', `/api/registries/${regA}/roleAssignments/${id}`, { role: 'King' }),
    400,
    'InvalidRequestContent',
  );
  expectApiError(
    await api('PUT', `/api/registries/${regA}/roleAssignments/admin`, { role: 'Reader' }),
    409,
    'Conflict',
    /own role/,
  );
});

test('deleting a registry removes its role assignments: a re-created one is not inherited', async () => {
  const name = uniqueName('inherit');
  await createRegistry(api, name, 'Basic');
  const { auth } = await createApiKey(api, uniqueName('heir'), 'Owner', name);
  assert.equal((await api('GET', `/api/registries/${name}`, undefined, auth)).status, 200);
  assert.equal(
    (await api('DELETE', `/api/registries/${name}`, undefined, auth)).status,
    204,
    'Owner may delete',
  );
  await createRegistry(api, name, 'Basic');
  forbidden(await api('GET', `/api/registries/${name}`, undefined, auth), name);
  const who = await api('GET', '/api/whoami', undefined, auth);
  assert.deepEqual(who.body.roles, []);
});

test('a caller without a role on a registry gets 403 whether or not the registry exists', async () => {
  const mine = uniqueName('mine');
  await createRegistry(api, mine);
  const key = await createApiKey(api, uniqueName('scoped'), 'Owner', mine);
  const missing = uniqueName('nosuch');
  for (const path of [
    `/api/registries/${missing}/repositories`,
    `/api/registries/${missing}/privateEndpointConnections`,
    `/api/registries/${missing}/networkDenials`,
  ]) {
    expectApiError(await api('GET', path, undefined, key.auth), 403, 'AuthorizationFailed');
  }
  expectApiError(
    await api('POST', `/api/registries/${missing}/checkNetworkAccess`, { ip: '10.0.0.1' }, key.auth),
    403,
    'AuthorizationFailed',
  );
  // The owner of everything still learns that it does not exist.
  expectApiError(await api('GET', `/api/registries/${missing}/repositories`), 404, 'ResourceNotFound');
});
