import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { ADMIN_AUTH, startTestBerth, type TestBerth } from '../helpers/server.js';

let berth: TestBerth;
before(async () => {
  berth = await startTestBerth();
});
after(async () => {
  await berth.stop();
});

async function setDefaultRegistryRules(body: unknown): Promise<void> {
  const res = await fetch(`${berth.managementUrl}/api/registries/default`, {
    method: 'PATCH',
    headers: { authorization: ADMIN_AUTH, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 200, await res.text());
}

/**
 * Sends a monolithic blob upload with `Expect: 100-continue` and waits for the server's first answer
 * before sending the body, as well-behaved clients do. Returns everything the server said.
 */
function uploadExpectingContinue(blob: Buffer): Promise<{ interim: string; final: string }> {
  const { port } = new URL(berth.url);
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1');
    let received = '';
    let interim = '';
    let sentBody = false;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer; got ${JSON.stringify(received)}`));
    }, 10_000);
    socket.on('connect', () =>
      socket.write(
        `POST /v2/expect/blob/blobs/uploads/?digest=${digest} HTTP/1.1\r\nHost: localhost\r\n` +
          `Authorization: ${ADMIN_AUTH}\r\n` +
          `Content-Type: application/octet-stream\r\nContent-Length: ${blob.length}\r\nExpect: 100-continue\r\n\r\n`,
      ),
    );
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      if (!sentBody && received.startsWith('HTTP/1.1 100 ')) {
        sentBody = true;
        interim = received;
        received = '';
        socket.write(blob);
      }
      const headerEnd = received.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(received)?.[1];
      if (headerEnd !== -1 && length !== undefined && received.length >= headerEnd + 4 + Number(length)) {
        clearTimeout(timer);
        socket.destroy();
        resolve({ interim, final: received });
      }
    });
    socket.on('error', reject);
  });
}

test('a refused client that sends Expect: 100-continue gets 403 at once, never "100 Continue"', async () => {
  await setDefaultRegistryRules({ properties: { networkRuleSet: { defaultAction: 'Deny', ipRules: [] } } });
  const { interim, final } = await uploadExpectingContinue(randomBytes(64 * 1024));
  assert.equal(interim, '');
  assert.match(final, /^HTTP\/1\.1 403 /);
  assert.match(final, /"code":"DENIED"/);
});

test('an allowed client is told "100 Continue" and its upload lands', async () => {
  await setDefaultRegistryRules({
    properties: {
      networkRuleSet: { defaultAction: 'Deny', ipRules: [{ action: 'Allow', value: '127.0.0.1' }] },
    },
  });
  const { interim, final } = await uploadExpectingContinue(randomBytes(64 * 1024));
  assert.match(interim, /^HTTP\/1\.1 100 Continue/);
  assert.match(final, /^HTTP\/1\.1 201 /);
});
