import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { apiFor, createRegistry, expectApiError, uniqueName, type Api } from '../helpers/management.js';
import { startTestBerth, type TestBerth } from '../helpers/server.js';

let berth: TestBerth;
let api: Api;
before(async () => {
  berth = await startTestBerth();
  api = apiFor(berth);
});
after(async () => {
  await berth.stop();
});

interface Credentials {
  username: string;
  passwords: { name: string; value: string }[];
}

function assertCredentials(body: Credentials, username: string): Record<string, string> {
  assert.equal(body.username, username);
  assert.deepEqual(
    body.passwords.map((p) => p.name),
    ['password', 'password2'],
  );
  const [one, two] = body.passwords.map((p) => p.value);
  assert.ok(one && one.length >= 16, 'password is a long random secret');
  assert.ok(two && two.length >= 16, 'password2 is a long random secret');
  assert.notEqual(one, two);
  return Object.fromEntries(body.passwords.map((p) => [p.name, p.value]));
}

test('listCredentials and regenerateCredential with the admin user disabled are 400 AdminUserDisabled', async () => {
  const name = uniqueName('noadmin');
  await createRegistry(api, name, 'Basic');
  expectApiError(await api('POST', `/api/registries/${name}/listCredentials`), 400, 'AdminUserDisabled');
  const regen = await api('POST', `/api/registries/${name}/regenerateCredential`, { name: 'password' });
  expectApiError(regen, 400, 'AdminUserDisabled', /admin/);
});

test('enabling the admin user with PATCH yields a username and two passwords', async () => {
  const name = uniqueName('adminon');
  await createRegistry(api, name, 'Basic');
  const patch = await api('PATCH', `/api/registries/${name}`, { properties: { adminUserEnabled: true } });
  assert.equal(patch.status, 200, patch.text);
  assert.equal(patch.body.properties.adminUserEnabled, true);
  assert.ok(!patch.text.includes('password'), 'the resource never carries the passwords');
  const res = await api('POST', `/api/registries/${name}/listCredentials`);
  assert.equal(res.status, 200, res.text);
  const first = assertCredentials(res.body, name);
  const again = await api('POST', `/api/registries/${name}/listCredentials`);
  assert.deepEqual(assertCredentials(again.body, name), first, 'listing does not change them');
  const got = await api('GET', `/api/registries/${name}`);
  assert.ok(!got.text.includes(first.password!), 'GET does not leak a password');
});

test('a registry created with adminUserEnabled has credentials at once', async () => {
  const name = uniqueName('admincreate');
  await createRegistry(api, name, 'Standard', { adminUserEnabled: true });
  const res = await api('POST', `/api/registries/${name}/listCredentials`);
  assert.equal(res.status, 200, res.text);
  assertCredentials(res.body, name);
});

test('PUT replacing a registry with adminUserEnabled: true has credentials too', async () => {
  const name = uniqueName('adminreplace');
  await createRegistry(api, name, 'Standard');
  const put = await api('PUT', `/api/registries/${name}`, {
    sku: { name: 'Standard' },
    properties: { adminUserEnabled: true },
  });
  assert.equal(put.status, 200, put.text);
  const res = await api('POST', `/api/registries/${name}/listCredentials`);
  assert.equal(res.status, 200, res.text);
  assertCredentials(res.body, name);
});

test('regenerateCredential changes only the named password, and the change is kept', async () => {
  const name = uniqueName('regen');
  await createRegistry(api, name, 'Basic', { adminUserEnabled: true });
  const before = assertCredentials((await api('POST', `/api/registries/${name}/listCredentials`)).body, name);

  const two = await api('POST', `/api/registries/${name}/regenerateCredential`, { name: 'password2' });
  assert.equal(two.status, 200, two.text);
  const afterTwo = assertCredentials(two.body, name);
  assert.equal(afterTwo.password, before.password);
  assert.notEqual(afterTwo.password2, before.password2);

  const one = await api('POST', `/api/registries/${name}/regenerateCredential`, { name: 'password' });
  const afterOne = assertCredentials(one.body, name);
  assert.notEqual(afterOne.password, before.password);
  assert.equal(afterOne.password2, afterTwo.password2);

  const listed = await api('POST', `/api/registries/${name}/listCredentials`);
  assert.deepEqual(assertCredentials(listed.body, name), afterOne);
});

test('disabling the admin user makes listCredentials 400 again', async () => {
  const name = uniqueName('adminoff');
  await createRegistry(api, name, 'Basic', { adminUserEnabled: true });
  assert.equal((await api('POST', `/api/registries/${name}/listCredentials`)).status, 200);
  const off = await api('PATCH', `/api/registries/${name}`, { properties: { adminUserEnabled: false } });
  assert.equal(off.body.properties.adminUserEnabled, false);
  expectApiError(await api('POST', `/api/registries/${name}/listCredentials`), 400, 'AdminUserDisabled');
});
