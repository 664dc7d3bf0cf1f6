import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import {
  ApiError,
  authorizationHeader,
  ConnectionError,
  ManagementClient,
  probeDataEndpoint,
} from '../../../src/api-client/index.js';

let app: FastifyInstance;
let url: string;
const seen: { url: string; host?: string; auth?: string }[] = [];

before(async () => {
  app = Fastify();
  app.addHook('onRequest', async (request) => {
    seen.push({ url: request.url, host: request.headers.host, auth: request.headers.authorization });
  });
  app.get('/api/registries/:name', async (request, reply) => {
    const { name } = request.params as { name: string };
    if (name === 'missing')
      return reply
        .code(404)
        .send({ error: { code: 'ResourceNotFound', message: "The registry 'missing' was not found." } });
    if (name === 'html') return reply.code(502).type('text/html').send('<h1>Bad gateway</h1>');
    if (name === 'detailed') {
      return reply.code(400).send({
        error: {
          code: 'InvalidRequestContent',
          message: 'bad',
          target: 'body',
          details: [{ code: 'X', message: 'first', target: 'a' }],
        },
      });
    }
    return { name };
  });
  app.get('/api/registries/:name/repositories/:repository/tags', async (request) => ({
    value: [{ name: (request.params as { repository: string }).repository, digest: 'sha256:x' }],
  }));
  app.delete('/api/registries/:name', async (_request, reply) => reply.code(204).send());
  app.get('/v2/', async (request, reply) => {
    if (request.headers.host?.startsWith('denied.')) {
      return reply.code(403).send({
        errors: [
          {
            code: 'DENIED',
            message: "client with IP '127.0.0.1' is not allowed access.",
            detail: { reason: 'ipNotAllowed', clientIp: '127.0.0.1' },
          },
        ],
      });
    }
    return reply.code(401).send({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] });
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
});
after(() => app.close());

describe('ManagementClient', () => {
  test('sends the credentials as Basic or Bearer', async () => {
    await new ManagementClient({ server: url, credentials: { kind: 'apiKey', apiKey: 'k1' } }).getRegistry(
      'abcde',
    );
    assert.equal(seen.at(-1)!.auth, 'Bearer k1');
    await new ManagementClient({
      server: `${url}/`,
      credentials: { kind: 'basic', username: 'u', password: 'p:w' },
    }).getRegistry('abcde');
    assert.equal(seen.at(-1)!.auth, `Basic ${Buffer.from('u:p:w').toString('base64')}`);
    assert.equal(authorizationHeader({ kind: 'none' }), undefined);
  });

  test('repository names with slashes travel as one encoded path segment', async () => {
    const client = new ManagementClient({ server: url, credentials: { kind: 'none' } });
    const tags = await client.listTags('myregistry', 'team/app');
    assert.equal(seen.at(-1)!.url, '/api/registries/myregistry/repositories/team%2Fapp/tags');
    assert.equal(tags[0]!.name, 'team/app');
  });

  test('an API error keeps status, code, message, target and details', async () => {
    const client = new ManagementClient({ server: url, credentials: { kind: 'none' } });
    await assert.rejects(client.getRegistry('missing'), (e: unknown) => {
      assert.ok(e instanceof ApiError);
      assert.equal(e.status, 404);
      assert.equal(e.code, 'ResourceNotFound');
      assert.equal(e.message, "The registry 'missing' was not found.");
      return true;
    });
    await assert.rejects(client.getRegistry('detailed'), (e: unknown) => {
      assert.ok(e instanceof ApiError);
      assert.equal(e.target, 'body');
      assert.deepEqual(e.details, [{ code: 'X', message: 'first', target: 'a' }]);
      return true;
    });
  });

  test('a non-JSON error answer still becomes an ApiError with the status', async () => {
    const client = new ManagementClient({ server: url, credentials: { kind: 'none' } });
    await assert.rejects(
      client.getRegistry('html'),
      (e: unknown) => e instanceof ApiError && e.status === 502 && /502/.test(e.message),
    );
  });

  test('204 resolves to undefined', async () => {
    const client = new ManagementClient({ server: url, credentials: { kind: 'none' } });
    assert.equal(await client.deleteRegistry('abcde'), undefined);
  });

  test('connection refused becomes a ConnectionError that says so', async () => {
    const port = await closedPort();
    const client = new ManagementClient({
      server: `http://127.0.0.1:${port}`,
      credentials: { kind: 'none' },
    });
    await assert.rejects(client.whoami(), (e: unknown) => {
      assert.ok(e instanceof ConnectionError);
      assert.equal(e.causeCode, 'ECONNREFUSED');
      assert.match(e.message, new RegExp(`cannot connect to http://127.0.0.1:${port}: connection refused`));
      return true;
    });
  });

  test('an injected fetch is used instead of the global one', async () => {
    const calls: string[] = [];
    const fake: typeof fetch = async (input) => {
      calls.push(String(input));
      return new Response(JSON.stringify({ name: 'me', kind: 'user', roles: [] }), { status: 200 });
    };
    const client = new ManagementClient({
      server: 'http://nowhere.invalid',
      credentials: { kind: 'none' },
      fetch: fake,
    });
    assert.equal((await client.whoami()).name, 'me');
    assert.deepEqual(calls, ['http://nowhere.invalid/api/whoami']);
  });
});

describe('probeDataEndpoint', () => {
  test('returns the status and the first OCI error; an explicit Host is sent', async () => {
    const denied = await probeDataEndpoint(url, { host: 'denied.localhost:5000' });
    assert.equal(denied.status, 403);
    assert.equal(denied.error?.code, 'DENIED');
    assert.deepEqual(denied.error?.detail, { reason: 'ipNotAllowed', clientIp: '127.0.0.1' });
    assert.equal(seen.at(-1)!.host, 'denied.localhost:5000');
    const open = await probeDataEndpoint(`${url}/`);
    assert.equal(open.status, 401);
    assert.equal(open.url, `${url}/v2/`);
  });

  test('*.localhost names reach loopback even where the resolver does not know them', async () => {
    const port = new URL(url).port;
    const result = await probeDataEndpoint(`http://denied.localhost:${port}`);
    assert.equal(result.status, 403);
  });

  test('a closed port is a ConnectionError', async () => {
    await assert.rejects(probeDataEndpoint(`http://127.0.0.1:${await closedPort()}`), ConnectionError);
  });
});

/** A port that was free a moment ago (nothing listens on it). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
