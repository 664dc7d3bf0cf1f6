// The docker token protocol end to end: challenge → token → request, Basic on /v2/, refresh tokens,
// scope intersection, and every way a JWT can be wrong.

import assert from 'node:assert/strict';
import { generateKeyPair, SignJWT, decodeProtectedHeader } from 'jose';
import { after, before, test } from 'node:test';
import {
  bearerToken,
  errorCode,
  fetchToken,
  parseChallenge,
  tokenForm,
  tokenRequest,
} from '../helpers/auth.js';
import { apiFor, basic, createRegistry, dataPlane, pushImageTo, uniqueName } from '../helpers/management.js';
import { setNetwork } from '../helpers/net.js';
import { DEFAULT_CONFIG } from '../../src/config.js';
import { startTestBerth, TEST_ADMIN_PASSWORD, type TestBerth } from '../helpers/server.js';

let berth: TestBerth;
const REG = 'default';

before(async () => {
  berth = await startTestBerth();
  await pushImageTo(berth, REG, 'proto/app', 'v1');
});
after(() => berth.stop());

const owner = (scopes: string[] = []) => fetchToken(berth, REG, 'admin', TEST_ADMIN_PASSWORD, scopes);

test('without credentials every endpoint is 401 UNAUTHORIZED with a Bearer challenge naming its scope', async () => {
  const cases: [string, string, string | undefined][] = [
    ['GET', '/v2/', undefined],
    ['GET', '/v2/_catalog', 'registry:catalog:*'],
    ['GET', '/v2/proto/app/tags/list', 'repository:proto/app:pull'],
    ['GET', '/v2/proto/app/manifests/v1', 'repository:proto/app:pull'],
    ['HEAD', '/v2/proto/app/manifests/v1', 'repository:proto/app:pull'],
    ['PUT', '/v2/proto/app/manifests/v2', 'repository:proto/app:push'],
    ['DELETE', '/v2/proto/app/manifests/v1', 'repository:proto/app:delete'],
    ['POST', '/v2/proto/app/blobs/uploads/', 'repository:proto/app:push'],
    ['GET', `/v2/proto/app/referrers/sha256:${'0'.repeat(64)}`, 'repository:proto/app:pull'],
  ];
  for (const [method, path, scope] of cases) {
    const res = await dataPlane(berth, REG, method, path, { anonymous: true });
    assert.equal(res.status, 401, `${method} ${path}`);
    if (method !== 'HEAD') assert.equal(errorCode(res), 'UNAUTHORIZED');
    const challenge = parseChallenge(res);
    assert.match(challenge.realm!, /^http:\/\/default\.localhost:\d+\/oauth2\/token$/);
    assert.equal(challenge.service, 'default.localhost');
    assert.equal(challenge.scope, scope, `${method} ${path}`);
  }
  // A mount also names the source repository it would read from.
  const mount = await dataPlane(
    berth,
    REG,
    'POST',
    '/v2/proto/b/blobs/uploads/?mount=sha256:abc&from=proto/app',
    {
      anonymous: true,
    },
  );
  assert.equal(parseChallenge(mount).scope, 'repository:proto/b:push repository:proto/app:pull');
});

test('GET /oauth2/token with Basic grants what was asked and allowed; the token works on /v2/', async () => {
  const body = await owner(['repository:proto/app:pull,push', 'registry:catalog:*']);
  assert.equal(body.token, body.access_token);
  assert.equal(body.expires_in, 300);
  assert.ok(!Number.isNaN(Date.parse(body.issued_at)));
  const header = decodeProtectedHeader(body.token);
  assert.equal(header.alg, 'ES256');
  assert.ok(header.kid);
  const claims = JSON.parse(Buffer.from(body.token.split('.')[1]!, 'base64url').toString()) as {
    aud: string;
    sub: string;
    exp: number;
    iat: number;
    access: { type: string; name: string; actions: string[] }[];
  };
  assert.equal(claims.aud, 'default.localhost');
  assert.equal(claims.sub, 'admin');
  assert.equal(claims.exp - claims.iat, 300);
  assert.deepEqual(claims.access, [
    { type: 'repository', name: 'proto/app', actions: ['pull', 'push'] },
    { type: 'registry', name: 'catalog', actions: ['*'] },
  ]);
  const auth = { headers: { Authorization: bearerToken(body.token) } };
  assert.equal((await dataPlane(berth, REG, 'GET', '/v2/', auth)).status, 200);
  assert.equal((await dataPlane(berth, REG, 'GET', '/v2/proto/app/manifests/v1', auth)).status, 200);
  assert.equal((await dataPlane(berth, REG, 'GET', '/v2/_catalog', auth)).status, 200);
  // Another repository was not asked for: the client is challenged to ask again.
  const other = await dataPlane(berth, REG, 'GET', '/v2/proto/other/tags/list', auth);
  assert.equal(other.status, 401);
  assert.equal(parseChallenge(other).error, 'insufficient_scope');
  assert.equal(parseChallenge(other).scope, 'repository:proto/other:pull');
});

test('a wrong password or unknown user gets 401 and no token; docker login without scope works', async () => {
  const wrong = await tokenRequest(berth, REG, [], basic('admin', 'wrong'));
  assert.equal(wrong.status, 401);
  assert.equal(errorCode(wrong), 'UNAUTHORIZED');
  assert.equal((await tokenRequest(berth, REG, [], basic('nobody', 'x'))).status, 401);
  assert.equal((await tokenRequest(berth, REG, [], undefined)).status, 401);
  const login = await owner();
  assert.equal(
    (await dataPlane(berth, REG, 'GET', '/v2/', { headers: { Authorization: bearerToken(login.token) } }))
      .status,
    200,
  );
});

test('the grant is the intersection: a Reader asking for pull,push,delete gets pull only', async () => {
  const api = apiFor(berth);
  assert.equal((await api('POST', '/api/apiKeys', { name: 'proto-reader', role: 'Reader' })).status, 201);
  const key = (await api('POST', '/api/apiKeys', { name: 'proto-reader2', role: 'Reader', registry: REG }))
    .body.key as string;
  const body = await fetchToken(berth, REG, 'ignored', key, [
    'repository:proto/app:pull,push,delete',
    'registry:catalog:*',
  ]);
  const claims = JSON.parse(Buffer.from(body.token.split('.')[1]!, 'base64url').toString()) as {
    access: { name: string; actions: string[] }[];
  };
  assert.deepEqual(
    claims.access.map((a) => [a.name, a.actions]),
    [
      ['proto/app', ['pull']],
      ['catalog', ['*']],
    ],
  );
  const auth = { headers: { Authorization: bearerToken(body.token) } };
  assert.equal((await dataPlane(berth, REG, 'GET', '/v2/proto/app/manifests/v1', auth)).status, 200);
  // It asked for push and was refused it: asking again will not help, so this is 403 DENIED.
  const push = await dataPlane(berth, REG, 'PUT', '/v2/proto/app/manifests/v9', {
    ...auth,
    body: Buffer.from('{}'),
  });
  assert.equal(push.status, 403);
  assert.equal(errorCode(push), 'DENIED');
  assert.match(push.body.toString(), /may not push on repository 'proto\/app'/);
});

test('Basic credentials are accepted directly on /v2/; wrong ones are 401', async () => {
  assert.equal((await dataPlane(berth, REG, 'GET', '/v2/proto/app/tags/list')).status, 200);
  const wrong = await dataPlane(berth, REG, 'GET', '/v2/proto/app/tags/list', {
    headers: { Authorization: basic('admin', 'nope') },
  });
  assert.equal(wrong.status, 401);
  assert.equal(errorCode(wrong), 'UNAUTHORIZED');
});

test('POST /oauth2/token: password grant with access_type=offline gives a refresh token that works', async () => {
  const first = await tokenForm(berth, REG, {
    grant_type: 'password',
    username: 'admin',
    password: TEST_ADMIN_PASSWORD,
    service: 'default.localhost',
    client_id: 'berth-tests',
    access_type: 'offline',
    scope: 'repository:proto/app:pull',
  });
  assert.equal(first.status, 200, first.body.toString());
  const body = JSON.parse(first.body.toString()) as { access_token: string; refresh_token?: string };
  assert.ok(body.refresh_token, 'a refresh token for access_type=offline');
  // A refresh token is not an access token.
  assert.equal(
    (
      await dataPlane(berth, REG, 'GET', '/v2/', {
        headers: { Authorization: bearerToken(body.refresh_token) },
      })
    ).status,
    401,
  );
  const refreshed = await tokenForm(berth, REG, {
    grant_type: 'refresh_token',
    refresh_token: body.refresh_token,
    service: 'default.localhost',
    client_id: 'berth-tests',
    scope: ['repository:proto/app:pull', 'repository:proto/other:push'],
  });
  assert.equal(refreshed.status, 200, refreshed.body.toString());
  const token = (JSON.parse(refreshed.body.toString()) as { access_token: string }).access_token;
  assert.equal(
    (
      await dataPlane(berth, REG, 'GET', '/v2/proto/app/manifests/v1', {
        headers: { Authorization: bearerToken(token) },
      })
    ).status,
    200,
  );
  // Without offline there is no refresh token; a bad grant or refresh token is refused.
  const plain = await tokenForm(berth, REG, {
    grant_type: 'password',
    username: 'admin',
    password: TEST_ADMIN_PASSWORD,
  });
  assert.equal((JSON.parse(plain.body.toString()) as { refresh_token?: string }).refresh_token, undefined);
  assert.equal(
    (await tokenForm(berth, REG, { grant_type: 'refresh_token', refresh_token: 'x.y.z' })).status,
    401,
  );
  assert.equal(
    (await tokenForm(berth, REG, { grant_type: 'password', username: 'admin', password: 'no' })).status,
    401,
  );
  const bad = await tokenForm(berth, REG, { grant_type: 'client_credentials' });
  assert.equal(bad.status, 400);
});

test('forged, alg none, HS256, tampered and other-registry tokens are all 401', async () => {
  const good = (await owner(['repository:proto/app:pull'])).token;
  const [h, p] = good.split('.') as [string, string, string];
  const kid = decodeProtectedHeader(good).kid!;
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
  const { privateKey } = await generateKeyPair('ES256');
  const forged = await new SignJWT(payload).setProtectedHeader({ alg: 'ES256', kid }).sign(privateKey);
  const none = `${Buffer.from(JSON.stringify({ alg: 'none', kid })).toString('base64url')}.${p}.`;
  const hs = await new SignJWT(payload)
    .setProtectedHeader({ alg: 'HS256', kid })
    .sign(new TextEncoder().encode('secret-guess'));
  const tamperedPayload = Buffer.from(
    JSON.stringify({
      ...payload,
      access: [{ type: 'repository', name: 'proto/app', actions: ['pull', 'push', 'delete'] }],
    }),
  ).toString('base64url');
  const tampered = `${h}.${tamperedPayload}.${good.split('.')[2]}`;
  for (const [name, token] of Object.entries({ forged, none, hs, tampered, garbage: 'not-a-jwt' })) {
    const res = await dataPlane(berth, REG, 'GET', '/v2/proto/app/manifests/v1', {
      headers: { Authorization: bearerToken(token) },
    });
    assert.equal(res.status, 401, name);
    assert.equal(parseChallenge(res).error, 'invalid_token', name);
  }
  // A token of the default registry is refused by another one (its audience is the login server).
  const api = apiFor(berth);
  const other = uniqueName('proto');
  await createRegistry(api, other);
  const res = await dataPlane(berth, other, 'GET', '/v2/', { headers: { Authorization: bearerToken(good) } });
  assert.equal(res.status, 401);
});

test('an expired token is 401', async () => {
  const short = await startTestBerth({ auth: { ...DEFAULT_CONFIG.auth, accessTokenTtlSeconds: 1 } });
  try {
    const body = await fetchToken(short, REG, 'admin', TEST_ADMIN_PASSWORD, []);
    const auth = { headers: { Authorization: bearerToken(body.token) } };
    assert.equal((await dataPlane(short, REG, 'GET', '/v2/', auth)).status, 200);
    await new Promise((resolve) => setTimeout(resolve, 2100));
    const res = await dataPlane(short, REG, 'GET', '/v2/', auth);
    assert.equal(res.status, 401);
    assert.equal(parseChallenge(res).error, 'invalid_token');
  } finally {
    await short.stop();
  }
});

test('the network guard decides first: /oauth2/token from a refused address is 403 DENIED, and an allowed token is refused there', async () => {
  const api = apiFor(berth);
  const name = uniqueName('guard');
  await createRegistry(api, name);
  await setNetwork(
    berth,
    { defaultAction: 'Deny', ipRules: ['127.0.0.2'], networkRuleBypassOptions: 'None' },
    name,
  );
  const minted = await fetchToken(berth, name, 'admin', TEST_ADMIN_PASSWORD, [], '127.0.0.2');
  const auth = { headers: { Authorization: bearerToken(minted.token) } };
  assert.equal((await dataPlane(berth, name, 'GET', '/v2/', { ...auth, from: '127.0.0.2' })).status, 200);
  const refused = await dataPlane(berth, name, 'GET', '/v2/', { ...auth, from: '127.0.0.3' });
  assert.equal(refused.status, 403);
  assert.equal(errorCode(refused), 'DENIED');
  const token = await tokenRequest(berth, name, [], basic('admin', TEST_ADMIN_PASSWORD), '127.0.0.3');
  assert.equal(token.status, 403);
  assert.equal(errorCode(token), 'DENIED');
  assert.doesNotMatch(token.body.toString(), /token/);
  // Even a wrong password is told DENIED, never 401: the refused network learns nothing about it.
  const wrong = await tokenRequest(berth, name, [], basic('admin', 'wrong'), '127.0.0.3');
  assert.equal(wrong.status, 403);
});
