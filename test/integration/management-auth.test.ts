import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import {
  apiFor,
  basic,
  bearer,
  createApiKey,
  createRegistry,
  expectApiError,
  uniqueName,
  type Api,
  type ApiResponse,
} from '../helpers/management.js';
import { startTestBerth, TEST_ADMIN_PASSWORD, type TestBerth } from '../helpers/server.js';

let berth: TestBerth;
let api: Api;
let registry: string;
before(async () => {
  berth = await startTestBerth();
  api = apiFor(berth);
  registry = uniqueName('auth');
  await createRegistry(api, registry, 'Premium');
});
after(async () => {
  await berth.stop();
});

/** The parts of an OpenAPI operation object the structural checks read. */
interface Operation {
  operationId?: unknown;
  responses: Record<string, { description?: unknown }>;
  parameters?: { name: string; in: string; required?: boolean }[];
  security?: Record<string, unknown>[];
}

function expectUnauthenticated(res: ApiResponse): void {
  expectApiError(res, 401, 'AuthenticationFailed');
  const challenge = res.headers.get('www-authenticate') ?? '';
  assert.match(challenge, /Basic realm="berth"/);
  assert.match(challenge, /Bearer/);
}

test('no credentials, a wrong password or an unknown user are 401 with WWW-Authenticate', async () => {
  expectUnauthenticated(await api('GET', '/api/registries', undefined, null));
  expectUnauthenticated(await api('GET', '/api/registries', undefined, basic('admin', 'wrong')));
  expectUnauthenticated(await api('GET', '/api/registries', undefined, basic('admin', '')));
  expectUnauthenticated(await api('GET', '/api/registries', undefined, basic('nobody', TEST_ADMIN_PASSWORD)));
  expectUnauthenticated(await api('GET', '/api/registries', undefined, 'Basic not-base64-without-colon'));
  expectUnauthenticated(await api('GET', '/api/registries', undefined, 'Basic'));
  expectUnauthenticated(await api('GET', '/api/registries', undefined, 'Digest username="admin"'));
  const ok = await api('GET', '/api/registries', undefined, basic('admin', TEST_ADMIN_PASSWORD));
  assert.equal(ok.status, 200, 'the right password works');
});

test('a bad API key is 401: unknown id, wrong secret, wrong prefix, or a user password as bearer', async () => {
  const { key } = await createApiKey(api, uniqueName('goodkey'), 'Reader');
  const [prefix, id] = [key.slice(0, 'berth_'.length), key.slice('berth_'.length, 'berth_'.length + 36)];
  assert.equal(prefix, 'berth_');
  for (const bad of [
    `berth_${randomUUID()}_secret`,
    `${key.slice(0, -2)}xx`,
    `berth_${id}`,
    key.replace('berth_', 'other_'),
    TEST_ADMIN_PASSWORD,
    '',
  ]) {
    expectUnauthenticated(await api('GET', '/api/whoami', undefined, bearer(bad)));
  }
  assert.equal((await api('GET', '/api/whoami', undefined, bearer(key))).status, 200, 'the key itself works');
  // An API key is not a user: its name and key do not work as Basic credentials.
  expectUnauthenticated(await api('GET', '/api/whoami', undefined, basic('goodkey', key)));
});

test('every documented operation except the OpenAPI document requires authentication', async () => {
  const doc = (await api('GET', '/api/openapi.json', undefined, null)).body;
  let checked = 0;
  for (const [path, operations] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
    const concrete = path.replace(/\{[^}]+\}/g, (m) =>
      m === '{name}' ? registry : m === '{id}' ? randomUUID() : 'x',
    );
    for (const method of Object.keys(operations)) {
      if (path === '/api/openapi.json') continue;
      // Signing in is where credentials are presented, so it checks those in its body instead.
      if (path === '/api/sessions' && method === 'post') {
        expectUnauthenticated(await api('POST', path, { username: 'admin', password: 'wrong' }, null));
        checked++;
        continue;
      }
      const body = ['put', 'patch', 'post'].includes(method) ? {} : undefined;
      const res = await api(method.toUpperCase(), concrete, body, null);
      expectUnauthenticated(res);
      checked++;
    }
  }
  assert.ok(checked >= 20, `checked ${checked} operations`);
  // Unknown paths under /api need credentials too (no probing for routes anonymously).
  expectUnauthenticated(await api('GET', '/api/nothing-here', undefined, null));
});

test('path tricks do not skip authentication', async () => {
  for (const path of [
    '//api/registries',
    '/api//registries',
    '/%61pi/registries',
    '/api/registries/',
    '/API/registries',
    `/api/openapi.json/../registries/${registry}`,
  ]) {
    const res = await api('GET', path, undefined, null);
    assert.notEqual(res.status, 200, `GET ${path} answered 200 without credentials: ${res.text}`);
    assert.ok(!res.text.includes(`"loginServer"`), `GET ${path} leaked a registry`);
  }
  // A query string does not change the path: this is the public document, not the registry list.
  const doc = await api('GET', '/api/openapi.json?/../registries', undefined, null);
  assert.equal(doc.status, 200);
  assert.equal(doc.body.openapi, '3.1.0');
  assert.equal(doc.body.value, undefined);
});

/** Sends one raw HTTP/1.1 request (any request-target) and returns the status and body. */
function rawTarget(target: string): Promise<{ status: number; body: string }> {
  const url = new URL(berth.managementUrl);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: url.hostname, port: Number(url.port) }, () =>
      socket.write(`GET ${target} HTTP/1.1\r\nHost: ${url.host}\r\nConnection: close\r\n\r\n`),
    );
    let text = '';
    socket.setTimeout(5000, () => socket.destroy(new Error(`no answer to GET ${target}`)));
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    socket.on('error', reject);
    socket.on('end', () => {
      const split = text.indexOf('\r\n\r\n');
      resolve({ status: Number(text.split(' ')[1]), body: text.slice(split + 4) });
    });
  });
}

test('an absolute-form request target does not skip authentication', async () => {
  for (const path of ['/api/registries', '/api/whoami', `/api/registries/${registry}`]) {
    const res = await rawTarget(`${berth.managementUrl}${path}`);
    assert.equal(res.status, 401, `${path}: ${res.body}`);
    assert.ok(!res.body.includes('loginServer'));
  }
  const doc = await rawTarget(`${berth.managementUrl}/api/openapi.json`);
  assert.equal(doc.status, 200, 'the public document stays public');
});

test('/api/openapi.json needs no auth and is an OpenAPI 3.1 document', async () => {
  const res = await api('GET', '/api/openapi.json', undefined, null);
  assert.equal(res.status, 200, res.text);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  const doc = res.body;
  assert.match(doc.openapi, /^3\.1\.\d+$/);
  assert.equal(typeof doc.info.title, 'string');
  assert.equal(typeof doc.info.version, 'string');
  assert.ok(doc.paths && typeof doc.paths === 'object');

  const operationIds = new Set<string>();
  const methods = new Set(['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace']);
  for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, Operation>>)) {
    assert.match(path, /^\//);
    const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
    for (const [method, op] of Object.entries(item)) {
      assert.ok(methods.has(method), `${path}: '${method}' is not an HTTP method`);
      const operationId = op.operationId;
      assert.ok(typeof operationId === 'string', `${method} ${path} has an operationId`);
      assert.ok(!operationIds.has(operationId), `operationId ${operationId} is not unique`);
      operationIds.add(operationId);
      const responses = Object.entries(op.responses);
      assert.ok(responses.length > 0, `${method} ${path} has responses`);
      for (const [status, response] of responses) {
        assert.match(status, /^([1-5][0-9][0-9]|default)$/);
        assert.equal(typeof response.description, 'string', `${method} ${path} ${status} description`);
      }
      const params = op.parameters ?? [];
      const pathParams = params.filter((p) => p.in === 'path');
      assert.deepEqual(pathParams.map((p) => p.name).sort(), templated, `${method} ${path} path parameters`);
      for (const p of pathParams) assert.equal(p.required, true, `path parameter ${p.name} is required`);
      for (const p of params) assert.ok(['path', 'query', 'header', 'cookie'].includes(p.in));
      for (const scheme of op.security ?? []) {
        for (const name of Object.keys(scheme)) assert.ok(doc.components.securitySchemes[name], name);
      }
    }
  }
  // Every $ref resolves within the document.
  const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"([^"]+)"/g)].map((m) => m[1]!);
  assert.ok(refs.length > 0);
  for (const ref of refs) {
    assert.match(ref, /^#\//);
    let node: unknown = doc;
    for (const part of ref.slice(2).split('/')) node = (node as Record<string, unknown> | undefined)?.[part];
    assert.ok(node, `$ref ${ref} does not resolve`);
  }
  assert.equal(doc.paths['/api/openapi.json'].get.security, undefined, 'the document itself is public');
  assert.ok(doc.paths['/api/registries'].get.security.length > 0);
});

test('the OpenAPI document lists every operation of the API contract', async () => {
  const doc = (await api('GET', '/api/openapi.json', undefined, null)).body;
  const contract = readFileSync(new URL('../../docs/management-api.md', import.meta.url), 'utf8');
  const rows = contract.split('\n').filter((line) => line.startsWith('| `'));
  const expected: string[] = [];
  for (const row of rows) {
    const firstCell = row.split('|')[1]!;
    for (const [, methods, path] of firstCell.matchAll(/`([A-Z/]+) (\/api\/[^`]*)`/g)) {
      for (const method of methods!.split('/'))
        expected.push(`${method} ${path!.replace(/\{[^}]+\}/g, '{}')}`);
    }
  }
  assert.ok(expected.length >= 24, `parsed ${expected.length} operations from the contract`);
  const listed = new Set<string>();
  for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
    for (const method of Object.keys(item))
      listed.add(`${method.toUpperCase()} ${path.replace(/\{[^}]+\}/g, '{}')}`);
  }
  const missing = expected.filter((op) => !listed.has(op));
  assert.deepEqual(missing, [], 'operations in the contract but not in the OpenAPI document');
  for (const sample of [
    'PUT /api/registries/{}',
    'POST /api/registries/{}/checkNetworkAccess',
    'DELETE /api/registries/{}/repositories/{}/tags/{}',
    'PUT /api/registries/{}/roleAssignments/{}',
  ]) {
    assert.ok(listed.has(sample), sample);
  }
});

test('the OpenAPI request schema of a registry forbids unknown properties, like the server', async () => {
  const doc = (await api('GET', '/api/openapi.json', undefined, null)).body;
  for (const method of ['put', 'patch']) {
    const schema = doc.paths['/api/registries/{name}'][method].requestBody.content['application/json'].schema;
    assert.equal(schema.additionalProperties, false, `${method}: top level`);
    assert.equal(schema.properties.properties.additionalProperties, false, `${method}: properties`);
    assert.equal(schema.properties.sku.additionalProperties, false, `${method}: sku`);
    const ruleSet = schema.properties.properties.properties.networkRuleSet;
    assert.equal(ruleSet.additionalProperties, false);
    assert.deepEqual(ruleSet.properties.defaultAction.enum, ['Allow', 'Deny']);
    assert.deepEqual(schema.properties.sku.properties.name.enum, ['Basic', 'Standard', 'Premium']);
  }
  const error = doc.components.schemas.Error;
  assert.deepEqual(error.properties.error.required, ['code', 'message']);
});

test('whoami: the owner account is a user with Owner on *', async () => {
  const res = await api('GET', '/api/whoami');
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body, {
    name: 'admin',
    kind: 'user',
    roles: [{ registry: '*', role: 'Owner' }],
    clientIp: '127.0.0.1',
  });
});

test('whoami: an API key shows its name, kind and scoped role', async () => {
  const name = uniqueName('whokey');
  const { auth } = await createApiKey(api, name, 'Contributor', registry);
  const res = await api('GET', '/api/whoami', undefined, auth);
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body, {
    name,
    kind: 'apiKey',
    roles: [{ registry, role: 'Contributor' }],
    clientIp: '127.0.0.1',
  });
});
