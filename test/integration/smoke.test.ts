import assert from 'node:assert/strict';
import { v2fetch } from '../helpers/oci.js';
import { after, before, test } from 'node:test';
import { startTestBerth, type TestBerth } from '../helpers/server.js';

let berth: TestBerth;
before(async () => {
  berth = await startTestBerth();
});
after(async () => {
  await berth.stop();
});

test('GET /v2/ answers 200 with the API version header', async () => {
  const res = await v2fetch(`${berth.url}/v2/`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
  assert.deepEqual(await res.json(), {});
  // The address the network guard decided for, shown by `berth check-health`.
  assert.equal(res.headers.get('berth-client-address'), '127.0.0.1');
});
