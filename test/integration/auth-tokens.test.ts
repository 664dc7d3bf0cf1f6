// Repository-scoped tokens and scope maps, as ACR: each action against the endpoints it governs,
// wildcards, system scope maps, disabled tokens, expired and renewed passwords, and the SKU limit.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { DEFAULT_CONFIG } from '../../src/config.js';
import { bearerToken, errorCode, fetchToken, tokenRequest } from '../helpers/auth.js';
import {
  apiFor,
  basic,
  createRegistry,
  dataPlane,
  pushImageTo,
  sha256,
  uniqueName,
  type Api,
} from '../helpers/management.js';
import { startTestBerth, type TestBerth } from '../helpers/server.js';

let berth: TestBerth;
let api: Api;
let reg: string;

before(async () => {
  const skus = structuredClone(DEFAULT_CONFIG.skus);
  skus.Basic.maxTokens = 2;
  berth = await startTestBerth({ skus });
  api = apiFor(berth);
  reg = uniqueName('tok');
  await createRegistry(api, reg, 'Premium');
  for (const repo of ['app', 'team/one', 'team/two', 'other']) await pushImageTo(berth, reg, repo, 'v1');
});
after(() => berth.stop());

/** Creates a scope map and a token using it; returns the token's password1. */
async function tokenWith(actions: string[], registry = reg): Promise<{ name: string; password: string }> {
  const name = uniqueName('t');
  const map = await api('PUT', `/api/registries/${registry}/scopeMaps/${name}-map`, {
    properties: { actions },
  });
  assert.equal(map.status, 201, map.text);
  const token = await api('PUT', `/api/registries/${registry}/tokens/${name}`, {
    properties: { scopeMapId: `/registries/${registry}/scopeMaps/${name}-map` },
  });
  assert.equal(token.status, 201, token.text);
  const generated = await api('POST', `/api/registries/${registry}/generateCredentials`, { tokenId: name });
  assert.equal(generated.status, 200, generated.text);
  assert.deepEqual(
    (generated.body.passwords as { name: string }[]).map((p) => p.name),
    ['password1', 'password2'],
  );
  return { name, password: generated.body.passwords[0].value as string };
}

async function statusOf(auth: string, method: string, path: string, body?: Buffer): Promise<number> {
  return (
    await dataPlane(berth, reg, method, path, { headers: { Authorization: auth }, ...(body ? { body } : {}) })
  ).status;
}

test('each scope-map action allows exactly its endpoints', async () => {
  const blob = randomBytes(24);
  const upload = `/v2/app/blobs/uploads/?digest=${sha256(blob)}`;
  const cases: [string, { pull: number; tags: number; push: number; catalog: number }][] = [
    ['content/read', { pull: 200, tags: 200, push: 403, catalog: 403 }],
    ['content/write', { pull: 403, tags: 403, push: 201, catalog: 403 }],
    ['metadata/read', { pull: 403, tags: 403, push: 403, catalog: 200 }],
    ['metadata/write', { pull: 403, tags: 403, push: 403, catalog: 403 }],
  ];
  for (const [action, want] of cases) {
    const { name, password } = await tokenWith([`repositories/app/${action}`]);
    const auth = basic(name, password);
    assert.deepEqual(
      {
        pull: await statusOf(auth, 'GET', '/v2/app/manifests/v1'),
        tags: await statusOf(auth, 'GET', '/v2/app/tags/list'),
        push: await statusOf(auth, 'POST', upload, blob),
        catalog: await statusOf(auth, 'GET', '/v2/_catalog'),
      },
      want,
      action,
    );
  }
  // content/delete deletes manifests (and nothing else).
  const victim = await pushImageTo(berth, reg, 'app', 'doomed');
  const { name, password } = await tokenWith(['repositories/app/content/delete']);
  assert.equal(await statusOf(basic(name, password), 'GET', '/v2/app/manifests/v1'), 403);
  assert.equal(await statusOf(basic(name, password), 'DELETE', `/v2/app/manifests/${victim}`), 202);
});

test('wildcards end in /* and cover only that prefix; the grant in a token follows them', async () => {
  const { name, password } = await tokenWith(['repositories/team/*/content/read']);
  const token = await fetchToken(berth, reg, name, password, [
    'repository:team/one:pull',
    'repository:team/two:pull,push',
    'repository:other:pull',
  ]);
  const claims = JSON.parse(Buffer.from(token.token.split('.')[1]!, 'base64url').toString()) as {
    access: { name: string; actions: string[] }[];
  };
  assert.deepEqual(
    claims.access.map((a) => [a.name, a.actions]),
    [
      ['team/one', ['pull']],
      ['team/two', ['pull']],
      ['other', []],
    ],
  );
  const auth = bearerToken(token.token);
  assert.equal(await statusOf(auth, 'GET', '/v2/team/one/manifests/v1'), 200);
  assert.equal(await statusOf(auth, 'GET', '/v2/team/two/manifests/v1'), 200);
  assert.equal(await statusOf(auth, 'GET', '/v2/other/manifests/v1'), 403);
  // Invalid actions and patterns are refused with the reason.
  for (const action of [
    'repositories/team*/content/read',
    'repositories/app/content/steal',
    'app/content/read',
  ]) {
    const res = await api('PUT', `/api/registries/${reg}/scopeMaps/badmap`, {
      properties: { actions: [action] },
    });
    assert.equal(res.status, 400, action);
    assert.equal(res.body.error.code, 'InvalidScopeMapAction');
  }
});

test('a pull-only token is refused a push with a clear DENIED', async () => {
  const { name, password } = await tokenWith(['repositories/app/content/read']);
  const token = await fetchToken(berth, reg, name, password, ['repository:app:pull,push']);
  const res = await dataPlane(berth, reg, 'POST', '/v2/app/blobs/uploads/', {
    headers: { Authorization: bearerToken(token.token) },
  });
  assert.equal(res.status, 403);
  assert.equal(errorCode(res), 'DENIED');
  assert.match(res.body.toString(), new RegExp(`'${name}' may not push on repository 'app'`));
});

test('system scope maps are listed, usable and read-only', async () => {
  const maps = await api('GET', `/api/registries/${reg}/scopeMaps`);
  const names = (maps.body.value as { name: string; properties: { type: string } }[])
    .filter((m) => m.properties.type === 'SystemDefined')
    .map((m) => m.name);
  assert.deepEqual(names, ['_repositories_pull', '_repositories_push', '_repositories_admin']);
  assert.equal((await api('DELETE', `/api/registries/${reg}/scopeMaps/_repositories_pull`)).status, 409);
  await api('PUT', `/api/registries/${reg}/tokens/pusher`, {
    properties: { scopeMapId: '_repositories_push' },
  });
  const pw = (
    await api('POST', `/api/registries/${reg}/generateCredentials`, { tokenId: 'pusher', name: 'password2' })
  ).body.passwords[0].value as string;
  const blob = randomBytes(8);
  assert.equal(
    await statusOf(basic('pusher', pw), 'POST', `/v2/other/blobs/uploads/?digest=${sha256(blob)}`, blob),
    201,
  );
  assert.equal(await statusOf(basic('pusher', pw), 'GET', '/v2/team/one/manifests/v1'), 200);
  assert.equal(await statusOf(basic('pusher', pw), 'DELETE', '/v2/team/one/manifests/v1'), 403);
});

test('a disabled token, a deleted token and an expired or replaced password sign in to nothing', async () => {
  const { name, password } = await tokenWith(['repositories/app/content/read']);
  assert.equal((await tokenRequest(berth, reg, [], basic(name, password))).status, 200);
  assert.equal(
    (await api('PATCH', `/api/registries/${reg}/tokens/${name}`, { properties: { status: 'disabled' } }))
      .status,
    200,
  );
  const disabled = await tokenRequest(berth, reg, [], basic(name, password));
  assert.equal(disabled.status, 401);
  assert.match(disabled.body.toString(), /disabled or expired/);
  assert.equal(await statusOf(basic(name, password), 'GET', '/v2/app/tags/list'), 401);
  await api('PATCH', `/api/registries/${reg}/tokens/${name}`, { properties: { status: 'enabled' } });
  assert.equal((await tokenRequest(berth, reg, [], basic(name, password))).status, 200);
  // Regenerating password1 ends the old one.
  const renewed = await api('POST', `/api/registries/${reg}/generateCredentials`, {
    tokenId: name,
    name: 'password1',
  });
  assert.equal((await tokenRequest(berth, reg, [], basic(name, password))).status, 401);
  const fresh = renewed.body.passwords[0].value as string;
  assert.equal((await tokenRequest(berth, reg, [], basic(name, fresh))).status, 200);
  // A password with an expiry in the past cannot be made; one with a future expiry works until then.
  const past = await api('POST', `/api/registries/${reg}/generateCredentials`, {
    tokenId: name,
    name: 'password2',
    expiry: new Date(Date.now() - 1000).toISOString(),
  });
  assert.equal(past.status, 400);
  const expiring = await api('POST', `/api/registries/${reg}/generateCredentials`, {
    tokenId: name,
    name: 'password2',
    expiry: new Date(Date.now() + 1500).toISOString(),
  });
  const soon = expiring.body.passwords[0].value as string;
  assert.equal((await tokenRequest(berth, reg, [], basic(name, soon))).status, 200);
  const shown = await api('GET', `/api/registries/${reg}/tokens/${name}`);
  assert.ok(!shown.text.includes(soon) && !shown.text.includes(fresh), 'a token never shows its passwords');
  assert.ok(
    shown.body.properties.credentials.passwords.find((p: { name: string }) => p.name === 'password2').expiry,
  );
  await new Promise((resolve) => setTimeout(resolve, 1700));
  assert.equal((await tokenRequest(berth, reg, [], basic(name, soon))).status, 401);
  // A refresh token minted with a password ends with it.
  const offline = await dataPlane(berth, reg, 'GET', `/oauth2/token?service=x&offline_token=true`, {
    headers: { Authorization: basic(name, fresh) },
  });
  const refresh = (JSON.parse(offline.body.toString()) as { refresh_token: string }).refresh_token;
  assert.ok(refresh);
  assert.equal(
    (await tokenRequest(berth, reg, [], basic('00000000-0000-0000-0000-000000000000', refresh))).status,
    200,
  );
  await api('DELETE', `/api/registries/${reg}/tokens/${name}/passwords/password1`);
  assert.equal(
    (await tokenRequest(berth, reg, [], basic('00000000-0000-0000-0000-000000000000', refresh))).status,
    401,
  );
  assert.equal((await api('DELETE', `/api/registries/${reg}/tokens/${name}`)).status, 204);
  assert.equal((await tokenRequest(berth, reg, [], basic(name, fresh))).status, 401);
});

test('a scope map in use cannot be deleted; a token needs an existing scope map', async () => {
  const { name } = await tokenWith(['repositories/app/content/read']);
  const res = await api('DELETE', `/api/registries/${reg}/scopeMaps/${name}-map`);
  assert.equal(res.status, 409);
  assert.match(res.body.error.message, new RegExp(name));
  const missing = await api('PUT', `/api/registries/${reg}/tokens/${uniqueName('t')}`, {
    properties: { scopeMapId: 'nosuchmap' },
  });
  assert.equal(missing.status, 404);
});

test("the SKU's token limit is enforced", async () => {
  const small = uniqueName('small');
  await createRegistry(api, small, 'Basic');
  await api('PUT', `/api/registries/${small}/scopeMaps/readall`, {
    properties: { actions: ['repositories/app/content/read'] },
  });
  for (const n of [1, 2])
    assert.equal(
      (
        await api('PUT', `/api/registries/${small}/tokens/tokn${n}`, {
          properties: { scopeMapId: 'readall' },
        })
      ).status,
      201,
    );
  const third = await api('PUT', `/api/registries/${small}/tokens/tokn3`, {
    properties: { scopeMapId: 'readall' },
  });
  assert.equal(third.status, 400);
  assert.equal(third.body.error.code, 'TokenLimitExceeded');
  assert.match(third.body.error.message, /at most 2 tokens/);
  // Updating an existing token is not a new one.
  assert.equal(
    (await api('PATCH', `/api/registries/${small}/tokens/tokn1`, { properties: { status: 'disabled' } }))
      .status,
    200,
  );
});

test('concurrent PATCHes of one scope map all succeed (retried on a version conflict), one wins', async () => {
  const name = uniqueName('cc');
  await api('PUT', `/api/registries/${reg}/scopeMaps/${name}`, {
    properties: { actions: ['repositories/app/content/read'] },
  });
  const results = await Promise.all(
    ['one', 'two', 'three'].map((repo) =>
      api('PATCH', `/api/registries/${reg}/scopeMaps/${name}`, { properties: { description: repo } }),
    ),
  );
  for (const r of results) assert.equal(r.status, 200, r.text);
  const shown = await api('GET', `/api/registries/${reg}/scopeMaps/${name}`);
  assert.ok(['one', 'two', 'three'].includes(shown.body.properties.description as string));
});

test('a token with metadata/read sees only its repositories in the catalog, with Basic and with a token', async () => {
  const { name, password } = await tokenWith([
    'repositories/team/*/metadata/read',
    'repositories/app/content/read',
  ]);
  const basicList = await dataPlane(berth, reg, 'GET', '/v2/_catalog', {
    headers: { Authorization: basic(name, password) },
  });
  assert.equal(basicList.status, 200, basicList.body.toString());
  assert.deepEqual(JSON.parse(basicList.body.toString()), { repositories: ['team/one', 'team/two'] });
  const token = await fetchToken(berth, reg, name, password, ['registry:catalog:*']);
  const paged = await dataPlane(berth, reg, 'GET', '/v2/_catalog?n=1', {
    headers: { Authorization: bearerToken(token.token) },
  });
  assert.deepEqual(JSON.parse(paged.body.toString()), { repositories: ['team/one'] });
  assert.match(String(paged.headers.link), /last=team%2Fone/);
  const rest = await dataPlane(berth, reg, 'GET', '/v2/_catalog?n=1&last=team%2Fone', {
    headers: { Authorization: bearerToken(token.token) },
  });
  assert.deepEqual(JSON.parse(rest.body.toString()), { repositories: ['team/two'] });
  assert.equal(rest.headers.link, undefined);
  // The owner still sees everything.
  const all = JSON.parse((await dataPlane(berth, reg, 'GET', '/v2/_catalog')).body.toString()) as {
    repositories: string[];
  };
  assert.ok(all.repositories.includes('app') && all.repositories.includes('other'));
});
