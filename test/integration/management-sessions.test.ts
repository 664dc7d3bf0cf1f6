// Portal sign-in: a server-side session behind an HttpOnly, SameSite=Strict cookie, usable only with
// the portal's header; and the portal's static files on the management listener.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  apiFor,
  createApiKey,
  createRegistry,
  expectApiError,
  uniqueName,
  type Api,
} from '../helpers/management.js';
import { startTestBerth, TEST_ADMIN_PASSWORD, type TestBerth } from '../helpers/server.js';

let berth: TestBerth;
let api: Api;
before(async () => {
  berth = await startTestBerth();
  api = apiFor(berth);
});
after(async () => {
  await berth.stop();
});

const PORTAL = { 'X-Requested-By': 'berth-portal' };

/** Signs in and returns the session cookie (`name=value`) and the answer. */
async function signIn(body: Record<string, string | undefined>) {
  const res = await fetch(`${berth.managementUrl}/api/sessions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...PORTAL },
    body: JSON.stringify(body),
  });
  const setCookie = res.headers.get('set-cookie') ?? '';
  return { res, setCookie, cookie: setCookie.split(';')[0] ?? '', json: await res.json() };
}

/** A request with a cookie, with or without the portal header. */
async function withCookie(cookie: string, method: string, path: string, portal = true, body?: unknown) {
  const res = await fetch(`${berth.managementUrl}${path}`, {
    method,
    headers: {
      Cookie: cookie,
      ...(portal ? PORTAL : {}),
      ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, body: text ? JSON.parse(text) : undefined };
}

test('signing in sets an HttpOnly, SameSite=Strict session cookie scoped to /api, and names the caller', async () => {
  const { res, setCookie, cookie, json } = await signIn({ username: 'admin', password: TEST_ADMIN_PASSWORD });
  assert.equal(res.status, 201);
  assert.match(setCookie, /^berth_session=[A-Za-z0-9_-]{40,};/);
  assert.match(setCookie, /; HttpOnly/);
  assert.match(setCookie, /; SameSite=Strict/);
  assert.match(setCookie, /; Path=\/api/);
  assert.match(setCookie, /; Max-Age=\d+/);
  assert.equal(res.headers.get('cache-control'), 'no-store');
  assert.equal(json.name, 'admin');
  assert.equal(json.clientIp, '127.0.0.1');
  assert.deepEqual(json.roles, [{ registry: '*', role: 'Owner' }]);
  assert.ok(Date.parse(json.expiresAt) > Date.now());

  const whoami = await withCookie(cookie, 'GET', '/api/whoami');
  assert.equal(whoami.status, 200, whoami.text);
  assert.equal(whoami.body.name, 'admin');
});

test('a wrong password, an unknown user and a bad key are 401; a mixed or empty body is 400', async () => {
  for (const body of [
    { username: 'admin', password: 'wrong' },
    { username: 'nobody', password: 'x' },
    { apiKey: 'berth_not-a-key' },
  ]) {
    const { res, setCookie, json } = await signIn(body);
    assert.equal(res.status, 401, JSON.stringify(json));
    assert.equal(json.error.code, 'AuthenticationFailed');
    assert.equal(setCookie, '');
    // No Basic challenge for the portal, so the browser shows no sign-in box of its own.
    assert.doesNotMatch(res.headers.get('www-authenticate') ?? '', /Basic/);
  }
  for (const body of [{}, { username: 'admin' }, { username: 'admin', password: 'x', apiKey: 'y' }]) {
    const { res, json } = await signIn(body);
    assert.equal(res.status, 400, JSON.stringify(json));
    assert.equal(json.error.code, 'InvalidRequestContent');
  }
});

test('the cookie works only with the portal header, so another page cannot use it to forge a request', async () => {
  const { cookie } = await signIn({ username: 'admin', password: TEST_ADMIN_PASSWORD });
  const name = uniqueName('csrf');
  const forged = await withCookie(cookie, 'PUT', `/api/registries/${name}`, false, {
    sku: { name: 'Basic' },
  });
  expectApiError(
    { ...forged, headers: forged.headers },
    401,
    'AuthenticationFailed',
    "'x-requested-by: berth-portal'",
  );
  assert.equal((await api('GET', `/api/registries/${name}`)).status, 404, 'nothing was created');
  const real = await withCookie(cookie, 'PUT', `/api/registries/${name}`, true, { sku: { name: 'Basic' } });
  assert.equal(real.status, 201, real.text);
});

test('signing out ends the session on the server; an unknown cookie is 401', async () => {
  const { cookie } = await signIn({ username: 'admin', password: TEST_ADMIN_PASSWORD });
  const out = await withCookie(cookie, 'DELETE', '/api/sessions/current');
  assert.equal(out.status, 204);
  assert.match(out.headers.get('set-cookie') ?? '', /^berth_session=; .*Max-Age=0/);
  const again = await withCookie(cookie, 'GET', '/api/whoami');
  expectApiError(again, 401, 'AuthenticationFailed', 'sign in again');
  const unknown = await withCookie('berth_session=forged', 'GET', '/api/whoami');
  expectApiError(unknown, 401, 'AuthenticationFailed');
});

test('a session follows its identity: a new role applies at once, and deleting the key ends it', async () => {
  const registry = uniqueName('sess');
  await createRegistry(api, registry, 'Basic');
  const key = await createApiKey(api, uniqueName('sesskey'), 'Reader', registry);
  const { cookie, json } = await signIn({ apiKey: key.key });
  assert.deepEqual(json.roles, [{ registry, role: 'Reader' }]);
  const patch = { properties: { adminUserEnabled: true } };
  expectApiError(
    await withCookie(cookie, 'PATCH', `/api/registries/${registry}`, true, patch),
    403,
    'AuthorizationFailed',
  );
  const assigned = await api('PUT', `/api/registries/${registry}/roleAssignments/${key.id}`, {
    role: 'Contributor',
  });
  assert.equal(assigned.status, 200, assigned.text);
  const allowed = await withCookie(cookie, 'PATCH', `/api/registries/${registry}`, true, patch);
  assert.equal(allowed.status, 200, allowed.text);
  assert.equal((await api('DELETE', `/api/apiKeys/${key.id}`)).status, 204);
  expectApiError(await withCookie(cookie, 'GET', '/api/whoami'), 401, 'AuthenticationFailed');
});

test('the portal is served under / with a strict content security policy; /api keeps its own 404s', async () => {
  const index = await fetch(`${berth.managementUrl}/`);
  assert.equal(index.status, 200, 'the portal must be built (npm run build; npm ci does it)');
  assert.match(index.headers.get('content-type') ?? '', /^text\/html/);
  const html = await index.text();
  assert.match(html, /<div id="app">/);
  const csp = index.headers.get('content-security-policy') ?? '';
  assert.match(csp, /default-src 'self'/);
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.equal(index.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(index.headers.get('cache-control'), 'no-cache');

  const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
  assert.ok(script, 'index.html names its script');
  const asset = await fetch(`${berth.managementUrl}${script}`);
  assert.equal(asset.status, 200);
  assert.match(asset.headers.get('content-type') ?? '', /javascript/);
  assert.match(asset.headers.get('cache-control') ?? '', /immutable/);

  const missing = await fetch(`${berth.managementUrl}/assets/../../package.json`);
  assert.equal(missing.status, 404);
  await missing.text();
  expectApiError(await api('GET', '/api/nothing-here', undefined, null), 401, 'AuthenticationFailed');
});
