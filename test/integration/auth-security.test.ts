// Sign-in hardening: failed sign-in limits on both listeners, the sign-in log, files on disk, and a
// management caller without a role learning nothing.

import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { DEFAULT_CONFIG } from '../../src/config.js';
import { errorCode, tokenRequest } from '../helpers/auth.js';
import {
  apiFor,
  basic,
  bearer,
  createApiKey,
  createRegistry,
  dataPlane,
  uniqueName,
  type Api,
} from '../helpers/management.js';
import { send } from '../helpers/net.js';
import { startTestBerth, TEST_ADMIN_PASSWORD, type TestBerth } from '../helpers/server.js';

let berth: TestBerth;
let api: Api;

before(async () => {
  berth = await startTestBerth({
    auth: {
      ...DEFAULT_CONFIG.auth,
      maxFailuresPerAccount: 3,
      maxFailuresPerAddress: 6,
      failureWindowSeconds: 60,
    },
  });
  api = apiFor(berth);
});
after(() => berth.stop());

test('failed sign-ins per account are limited: 429 TOOMANYREQUESTS with Retry-After, even for the right password', async () => {
  const name = uniqueName('rl');
  await createRegistry(api, name, 'Standard', { adminUserEnabled: true });
  const password = (await api('POST', `/api/registries/${name}/listCredentials`)).body.passwords[0]
    .value as string;
  for (let i = 0; i < 3; i++)
    assert.equal((await tokenRequest(berth, name, [], basic(name, 'wrong'), '127.0.0.4')).status, 401);
  // From another address too: the account is what is being guessed.
  const limited = await tokenRequest(berth, name, [], basic(name, password), '127.0.0.5');
  assert.equal(limited.status, 429);
  assert.equal(errorCode(limited), 'TOOMANYREQUESTS');
  const retryAfter = Number(limited.headers['retry-after']);
  assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${limited.headers['retry-after']}`);
  // Basic on /v2/ is the same sign-in.
  const direct = await dataPlane(berth, name, 'GET', '/v2/', {
    headers: { Authorization: basic(name, password) },
    from: '127.0.0.5',
  });
  assert.equal(direct.status, 429);
  // Other accounts are not locked out by it.
  assert.equal(
    (await tokenRequest(berth, name, [], basic('admin', TEST_ADMIN_PASSWORD), '127.0.0.5')).status,
    200,
  );
});

test('garbage API keys count per address only: they cannot lock the real API keys of a registry out', async () => {
  const name = uniqueName('keys');
  await createRegistry(api, name, 'Standard');
  const key = await createApiKey(api, uniqueName('ci'), 'Reader', name);
  // Past the per-account limit (3) in all, from addresses each under the per-address limit (6).
  for (const from of ['127.0.0.10', '127.0.0.11', '127.0.0.12']) {
    for (let i = 0; i < 2; i++) {
      const res = await dataPlane(berth, name, 'GET', '/v2/', {
        headers: { Authorization: bearer(`berth_guess${i}`) },
        from,
      });
      assert.equal(res.status, 401);
    }
  }
  const real = await dataPlane(berth, name, 'GET', '/v2/', {
    headers: { Authorization: key.auth },
    from: '127.0.0.13',
  });
  assert.equal(real.status, 200);
  const asPassword = await tokenRequest(berth, name, [], basic('anyone', key.key), '127.0.0.13');
  assert.equal(asPassword.status, 200);
});

test('failed sign-ins per client address are limited across accounts and on the management API', async () => {
  const from = '127.0.0.6';
  for (let i = 0; i < 6; i++) {
    const res = await tokenRequest(berth, 'default', [], basic(`guess${i}`, 'x'), from);
    assert.equal(res.status, 401);
  }
  assert.equal(
    (await tokenRequest(berth, 'default', [], basic('admin', TEST_ADMIN_PASSWORD), from)).status,
    429,
  );
  // The management listener shares the limiter: same address, same answer (ARM-shaped).
  const limited = await send(berth.managementUrl, '/api/whoami', {
    from,
    headers: { Authorization: basic('admin', TEST_ADMIN_PASSWORD) },
  });
  assert.equal(limited.status, 429);
  assert.equal((JSON.parse(limited.text) as { error: { code: string } }).error.code, 'TooManyRequests');
  assert.ok(Number(limited.headers['retry-after']) >= 1);
  // A management guesser is limited too, from a fresh address.
  for (let i = 0; i < 6; i++)
    await send(berth.managementUrl, '/api/whoami', {
      from: '127.0.0.7',
      headers: { Authorization: basic(`m${i}`, 'x') },
    });
  const mgmt = await send(berth.managementUrl, '/api/whoami', {
    from: '127.0.0.7',
    headers: { Authorization: basic('admin', TEST_ADMIN_PASSWORD) },
  });
  assert.equal(mgmt.status, 429);
});

test('every sign-in is recorded, aggregated, and queryable per registry and overall', async () => {
  const name = uniqueName('log');
  await createRegistry(api, name, 'Standard');
  for (let i = 0; i < 3; i++)
    await tokenRequest(berth, name, [], basic('admin', TEST_ADMIN_PASSWORD), '127.0.0.8');
  await tokenRequest(berth, name, [], basic('admin', 'bad'), '127.0.0.9');
  const res = await api('GET', `/api/registries/${name}/signIns`);
  assert.equal(res.status, 200, res.text);
  const rows = res.body.value as {
    identity: string;
    clientIp: string;
    result: string;
    count: number;
    registry: string;
  }[];
  const ok = rows.find((r) => r.clientIp === '127.0.0.8' && r.result === 'success');
  assert.deepEqual(ok && { identity: ok.identity, count: ok.count, registry: ok.registry }, {
    identity: 'admin',
    count: 3,
    registry: name,
  });
  assert.ok(rows.some((r) => r.clientIp === '127.0.0.9' && r.result === 'failure' && r.identity === 'admin'));
  const failures = await api('GET', `/api/registries/${name}/signIns?result=failure`);
  assert.ok((failures.body.value as { result: string }[]).every((r) => r.result === 'failure'));
  const all = await api('GET', '/api/signIns?top=1000');
  assert.ok(
    (all.body.value as { registry: string; listener: string }[]).some(
      (r) => r.registry === '*' && r.listener === 'management',
    ),
  );
  assert.equal((await api('GET', '/api/signIns?since=yesterday')).status, 400);
});

test('the data directory is 0700, the database and key file 0600, and admin passwords are not in SQLite in the clear', async () => {
  const name = uniqueName('disk');
  await createRegistry(api, name, 'Basic', { adminUserEnabled: true });
  const creds = (await api('POST', `/api/registries/${name}/listCredentials`)).body.passwords as {
    value: string;
  }[];
  assert.equal(statSync(berth.dataDir).mode & 0o777, 0o700);
  for (const file of ['metadata.db', 'berth.key'])
    assert.equal(statSync(join(berth.dataDir, file)).mode & 0o777, 0o600, file);
  const db = new Database(join(berth.dataDir, 'metadata.db'), { readonly: true });
  try {
    const dump = JSON.stringify(db.prepare('SELECT properties FROM registries').all());
    for (const { value } of creds)
      assert.ok(!dump.includes(value), 'an admin password is stored in the clear');
    const keys = JSON.stringify(db.prepare('SELECT sealed_private_jwk FROM signing_keys').all());
    assert.ok(!keys.includes('"d"'), 'the signing key is sealed');
  } finally {
    db.close();
  }
  assert.ok(!readFileSync(join(berth.dataDir, 'berth.key'), 'utf8').includes(creds[0]!.value));
});

test('a caller with no role is told the same about a registry that exists and one that does not', async () => {
  const name = uniqueName('hidden');
  await createRegistry(api, name);
  const other = (
    await api('POST', '/api/apiKeys', { name: uniqueName('nobody'), role: 'Reader', registry: 'default' })
  ).body.key as string;
  const body = { sku: { name: 'Basic' } };
  const existing = await api('PUT', `/api/registries/${name}`, body, `Bearer ${other}`);
  const missing = await api('PUT', `/api/registries/${uniqueName('absent')}`, body, `Bearer ${other}`);
  assert.equal(existing.status, 403);
  assert.equal(missing.status, 403);
  assert.equal(existing.body.error.message, missing.body.error.message);
});
