// Who may do what on the data plane: management roles, the data-plane roles AcrPull/AcrPush/AcrDelete,
// the admin user, anonymous pull, trusted services, and mounts needing pull on their source.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { bearerToken, errorCode, fetchToken, tokenRequest } from '../helpers/auth.js';
import {
  apiFor,
  basic,
  bearer,
  createRegistry,
  dataPlane,
  pushBlobTo,
  pushImageTo,
  sha256,
  uniqueName,
  type Api,
} from '../helpers/management.js';
import { setNetwork } from '../helpers/net.js';
import { startTestBerth, type TestBerth } from '../helpers/server.js';

let berth: TestBerth;
let api: Api;
let reg: string;
/** A registry the data-plane-role keys hold Reader on, so they have no management role on `reg`. */
let parking: string;

before(async () => {
  berth = await startTestBerth();
  api = apiFor(berth);
  reg = uniqueName('ident');
  await createRegistry(api, reg, 'Standard');
  parking = uniqueName('parking');
  await createRegistry(api, parking, 'Basic');
  await pushImageTo(berth, reg, 'team/app', 'v1');
});
after(() => berth.stop());

/** An API key holding exactly `role` on `reg`. */
async function keyWith(role: string): Promise<string> {
  const name = uniqueName(`k${role.toLowerCase()}`);
  const dataPlaneRole = role.startsWith('Acr');
  const created = await api('POST', '/api/apiKeys', {
    name,
    role: dataPlaneRole ? 'Reader' : role,
    registry: dataPlaneRole ? parking : reg,
  });
  assert.equal(created.status, 201, created.text);
  if (dataPlaneRole) {
    const assigned = await api('PUT', `/api/registries/${reg}/roleAssignments/${name}`, { role });
    assert.equal(assigned.status, 200, assigned.text);
  }
  return created.body.key as string;
}

/** What each kind of request answers for one credential: pull, push, delete, catalog. */
async function matrix(authorization: string) {
  const manifest = await dataPlane(berth, reg, 'GET', '/v2/team/app/manifests/v1', {
    headers: { Authorization: authorization },
  });
  const blob = randomBytes(32);
  const push = await dataPlane(berth, reg, 'POST', `/v2/team/app/blobs/uploads/?digest=${sha256(blob)}`, {
    body: blob,
    headers: { Authorization: authorization },
  });
  const target = await pushImageTo(berth, reg, 'team/victim', uniqueName('t'));
  const del = await dataPlane(berth, reg, 'DELETE', `/v2/team/victim/manifests/${target}`, {
    headers: { Authorization: authorization },
  });
  const catalog = await dataPlane(berth, reg, 'GET', '/v2/_catalog', {
    headers: { Authorization: authorization },
  });
  return { pull: manifest.status, push: push.status, delete: del.status, catalog: catalog.status };
}

test('each role gets exactly its actions, with Basic credentials and with tokens', async () => {
  const expected: Record<string, { pull: number; push: number; delete: number; catalog: number }> = {
    Owner: { pull: 200, push: 201, delete: 202, catalog: 200 },
    Contributor: { pull: 200, push: 201, delete: 202, catalog: 200 },
    Reader: { pull: 200, push: 403, delete: 403, catalog: 200 },
    AcrPull: { pull: 200, push: 403, delete: 403, catalog: 200 },
    AcrPush: { pull: 200, push: 201, delete: 403, catalog: 200 },
    AcrDelete: { pull: 403, push: 403, delete: 202, catalog: 403 },
  };
  for (const [role, want] of Object.entries(expected)) {
    const key = await keyWith(role);
    assert.deepEqual(await matrix(basic('key', key)), want, `${role} with Basic`);
    const token = await fetchToken(berth, reg, 'key', key, [
      'repository:team/app:pull,push',
      'repository:team/victim:delete',
      'registry:catalog:*',
    ]);
    // With a token, what was asked and refused is 403 as well (asking again will not help).
    assert.deepEqual(await matrix(bearerToken(token.token)), want, `${role} with a token`);
  }
});

test('a role on another registry signs in to nothing here; role assignments list and delete', async () => {
  const other = uniqueName('other');
  await createRegistry(api, other);
  const key = (
    await api('POST', '/api/apiKeys', { name: uniqueName('kother'), role: 'Owner', registry: other })
  ).body.key as string;
  assert.equal((await tokenRequest(berth, reg, [], basic('x', key))).status, 401);
  assert.equal(
    (
      await dataPlane(berth, reg, 'GET', '/v2/team/app/tags/list', {
        headers: { Authorization: bearer(key) },
      })
    ).status,
    401,
  );

  const name = uniqueName('kpull');
  const created = await api('POST', '/api/apiKeys', { name, role: 'Reader', registry: other });
  await api('PUT', `/api/registries/${reg}/roleAssignments/${name}`, { role: 'AcrPull' });
  const listed = await api('GET', `/api/registries/${reg}/roleAssignments`);
  assert.equal(listed.status, 200);
  assert.ok(
    (listed.body.value as { principalName: string; role: string }[]).some(
      (a) => a.principalName === name && a.role === 'AcrPull',
    ),
  );
  const auth = { headers: { Authorization: basic('k', created.body.key as string) } };
  assert.equal((await dataPlane(berth, reg, 'GET', '/v2/team/app/tags/list', auth)).status, 200);
  assert.equal(
    (await api('DELETE', `/api/registries/${reg}/roleAssignments/${name}?role=AcrPull`)).status,
    204,
  );
  // The verified-credential cache does not outlive the role: roles are read on every sign-in.
  assert.equal((await dataPlane(berth, reg, 'GET', '/v2/team/app/tags/list', auth)).status, 401);
  assert.equal(
    (await api('DELETE', `/api/registries/${reg}/roleAssignments/${name}?role=AcrPull`)).status,
    404,
  );
});

test('the admin user signs in with either password while enabled, and never after', async () => {
  const name = uniqueName('admn');
  await createRegistry(api, name, 'Basic', { adminUserEnabled: true });
  await pushImageTo(berth, name, 'app', 'v1');
  const creds = (await api('POST', `/api/registries/${name}/listCredentials`)).body as {
    username: string;
    passwords: { name: string; value: string }[];
  };
  assert.equal(creds.username, name);
  for (const p of creds.passwords) {
    const token = await fetchToken(berth, name, name, p.value, [`repository:app:pull,push,delete`]);
    const auth = { headers: { Authorization: bearerToken(token.token) } };
    assert.equal((await dataPlane(berth, name, 'GET', '/v2/app/manifests/v1', auth)).status, 200);
    await pushBlobTo(berth, name, 'app', randomBytes(16));
  }
  assert.equal((await tokenRequest(berth, name, [], basic(name, 'wrong'))).status, 401);
  // The admin user is for its own registry only.
  assert.equal((await tokenRequest(berth, reg, [], basic(name, creds.passwords[0]!.value))).status, 401);
  // Renewing password2 ends it at once; password keeps working.
  const renewed = await api('POST', `/api/registries/${name}/regenerateCredential`, { name: 'password2' });
  assert.equal(renewed.status, 200);
  assert.equal((await tokenRequest(berth, name, [], basic(name, creds.passwords[1]!.value))).status, 401);
  assert.equal((await tokenRequest(berth, name, [], basic(name, creds.passwords[0]!.value))).status, 200);
  await api('PATCH', `/api/registries/${name}`, { properties: { adminUserEnabled: false } });
  assert.equal((await tokenRequest(berth, name, [], basic(name, creds.passwords[0]!.value))).status, 401);
  assert.equal(
    (
      await dataPlane(berth, name, 'GET', '/v2/app/tags/list', {
        headers: { Authorization: basic(name, creds.passwords[0]!.value) },
      })
    ).status,
    401,
  );
});

test('anonymous pull: pulls without credentials, never push, delete or catalog; Basic refuses it', async () => {
  const name = uniqueName('anon');
  await createRegistry(api, name, 'Standard');
  const digest = await pushImageTo(berth, name, 'pub/app', 'v1');
  const anonymous = { anonymous: true } as const;
  assert.equal((await dataPlane(berth, name, 'GET', '/v2/pub/app/manifests/v1', anonymous)).status, 401);
  assert.equal((await tokenRequest(berth, name, ['repository:pub/app:pull'], undefined)).status, 401);
  assert.equal(
    (await api('PATCH', `/api/registries/${name}`, { properties: { anonymousPullEnabled: true } })).status,
    200,
  );
  assert.equal((await dataPlane(berth, name, 'GET', '/v2/pub/app/manifests/v1', anonymous)).status, 200);
  assert.equal((await dataPlane(berth, name, 'GET', '/v2/pub/app/tags/list', anonymous)).status, 200);
  // The docker flow: an anonymous token grants pull and nothing else.
  const res = await tokenRequest(
    berth,
    name,
    ['repository:pub/app:pull,push', 'registry:catalog:*'],
    undefined,
  );
  assert.equal(res.status, 200, res.body.toString());
  const token = (JSON.parse(res.body.toString()) as { token: string }).token;
  const auth = { headers: { Authorization: bearerToken(token) } };
  assert.equal((await dataPlane(berth, name, 'GET', '/v2/pub/app/manifests/v1', auth)).status, 200);
  assert.equal((await dataPlane(berth, name, 'GET', '/v2/_catalog', auth)).status, 401);
  for (const [method, path] of [
    ['POST', '/v2/pub/app/blobs/uploads/'],
    ['DELETE', `/v2/pub/app/manifests/${digest}`],
    ['GET', '/v2/_catalog'],
  ] as const) {
    const refused = await dataPlane(berth, name, method, path, anonymous);
    assert.equal(refused.status, 401, `${method} ${path}`);
    assert.equal(errorCode(refused), 'UNAUTHORIZED');
  }
  // Basic cannot have anonymous pull turned on; the API says why.
  const basicReg = uniqueName('anonb');
  await createRegistry(api, basicReg, 'Basic');
  const refused = await api('PATCH', `/api/registries/${basicReg}`, {
    properties: { anonymousPullEnabled: true },
  });
  assert.equal(refused.status, 400);
  assert.equal(refused.body.error.code, 'SkuNotSupported');
});

test('a mount needs pull on the source repository: without it the answer is a plain upload session', async () => {
  const blob = randomBytes(48);
  const digest = await pushBlobTo(berth, reg, 'secret/src', blob);
  // A token that may push to team/dst but not read secret/src (a scope map on team/dst only).
  await api('PUT', `/api/registries/${reg}/scopeMaps/dstonly`, {
    properties: { actions: ['repositories/team/dst/content/read', 'repositories/team/dst/content/write'] },
  });
  await api('PUT', `/api/registries/${reg}/tokens/dsttoken`, { properties: { scopeMapId: 'dstonly' } });
  const password = (
    await api('POST', `/api/registries/${reg}/generateCredentials`, {
      tokenId: 'dsttoken',
      name: 'password1',
    })
  ).body.passwords[0].value as string;
  const auth = { headers: { Authorization: basic('dsttoken', password) } };
  const refused = await dataPlane(
    berth,
    reg,
    'POST',
    `/v2/team/dst/blobs/uploads/?mount=${digest}&from=secret/src`,
    auth,
  );
  assert.equal(refused.status, 202, refused.body.toString());
  assert.equal((await dataPlane(berth, reg, 'HEAD', `/v2/team/dst/blobs/${digest}`)).status, 404);
  // Without `from`, a repository-scoped token may not reach the whole registry either.
  const noFrom = await dataPlane(berth, reg, 'POST', `/v2/team/dst/blobs/uploads/?mount=${digest}`, auth);
  assert.equal(noFrom.status, 202);
  // The owner may read the source: the mount happens.
  const mounted = await dataPlane(
    berth,
    reg,
    'POST',
    `/v2/team/dst/blobs/uploads/?mount=${digest}&from=secret/src`,
  );
  assert.equal(mounted.status, 201);
});

test('trusted services: only marked keys, only registries their role covers, only the actions it grants', async () => {
  const guarded = uniqueName('trust');
  const other = uniqueName('trusto');
  for (const name of [guarded, other]) {
    await createRegistry(api, name);
    await pushImageTo(berth, name, 'app', 'v1');
    await setNetwork(
      berth,
      { defaultAction: 'Deny', ipRules: [], networkRuleBypassOptions: 'AzureServices' },
      name,
    );
  }
  const create = async (name: string, trustedService: boolean, registry: string) =>
    (await api('POST', '/api/apiKeys', { name, role: 'Reader', registry, trustedService })).body
      .key as string;
  const readerTrusted = await create(uniqueName('scan'), true, guarded);
  const readerPlain = await create(uniqueName('plain'), false, guarded);
  const from = { from: '127.0.0.3' };
  const get = (registry: string, key: string) =>
    dataPlane(berth, registry, 'GET', '/v2/app/manifests/v1', {
      ...from,
      headers: { Authorization: bearer(key) },
    });
  assert.equal((await get(guarded, readerTrusted)).status, 200);
  assert.equal((await get(guarded, readerPlain)).status, 403);
  // Its role is on `guarded` only: the other registry's rules refuse it.
  const elsewhere = await get(other, readerTrusted);
  assert.equal(elsewhere.status, 403);
  assert.equal(errorCode(elsewhere), 'DENIED');
  // A Reader never pushes, bypass or not.
  const blob = randomBytes(16);
  const push = await dataPlane(berth, guarded, 'POST', `/v2/app/blobs/uploads/?digest=${sha256(blob)}`, {
    ...from,
    body: blob,
    headers: { Authorization: bearer(readerTrusted) },
  });
  assert.equal(push.status, 403);
  assert.equal(errorCode(push), 'DENIED');
  assert.match(push.body.toString(), /may not push/);
  // Also sent as the password of Basic credentials.
  assert.equal(
    (
      await dataPlane(berth, guarded, 'GET', '/v2/app/tags/list', {
        ...from,
        headers: { Authorization: basic('scan', readerTrusted) },
      })
    ).status,
    200,
  );
});
