// Network helpers for the guard's tests: HTTP from a chosen loopback source address, streamed bodies,
// raw TCP (for PROXY protocol) and the management calls that change a registry's network rules.
// Every connection goes to loopback only, and every wait is bounded.

import assert from 'node:assert/strict';
import { Agent, request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { ADMIN_AUTH, type TestBerth } from './server.js';

/** The name of the registry every test server creates and serves for hosts that name none. */
export const DEFAULT_REGISTRY = 'default';

/** A whole response, with the client socket it travelled on. */
export interface NetResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text: string;
  /** The client socket's local port: equal ports on one agent mean the connection was reused. */
  localPort: number;
  localAddress: string;
}

/** One request: where from, how, and over which agent. */
export interface NetRequest {
  method?: string;
  headers?: OutgoingHttpHeaders;
  body?: Buffer | string;
  /** Source address to bind the client socket to (127.0.0.2, ::1, ...). */
  from?: string;
  /** A keep-alive agent to reuse connections; a fresh connection per request otherwise. */
  agent?: Agent;
  timeoutMs?: number;
  /** Send no credentials: by default `/v2/` requests carry the test owner's (`ADMIN_AUTH`). */
  anonymous?: boolean;
}

/** The request's headers, with the test owner's credentials on data-plane paths unless opted out. */
export function withDefaultAuth(
  path: string,
  headers: OutgoingHttpHeaders | undefined,
  anonymous = false,
): OutgoingHttpHeaders | undefined {
  if (anonymous || !path.startsWith('/v2')) return headers;
  const has = Object.keys(headers ?? {}).some((name) => name.toLowerCase() === 'authorization');
  return has ? headers : { ...headers, Authorization: ADMIN_AUTH };
}

/** `host:port` to connect to for a Berth URL: wildcard listeners are reached over loopback. */
export function endpointOf(url: string): { host: string; port: number } {
  const parsed = new URL(url);
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  const loopback = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return { host: loopback, port: Number(parsed.port) };
}

/** The data-plane URL of a listener of the wanted family (IPv6 listeners are `[...]`). */
export function dataUrl(berth: TestBerth, family: 4 | 6 = 4): string {
  const url = berth.urls.find((u) => new URL(u).hostname.startsWith('[') === (family === 6));
  assert.ok(url, `the test server has no IPv${family} data-plane listener: ${berth.urls.join(', ')}`);
  return url;
}

/** Sends one request to `base` + `path` from the chosen source address and reads the whole answer. */
export function send(base: string, path: string, options: NetRequest = {}): Promise<NetResponse> {
  const { host, port } = endpointOf(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host,
        port,
        path,
        method: options.method ?? 'GET',
        headers: withDefaultAuth(path, options.headers, options.anonymous),
        ...(options.from ? { localAddress: options.from } : {}),
        agent: options.agent ?? false,
      },
      (res) => {
        const socket = res.socket;
        const localPort = socket.localPort ?? 0;
        const localAddress = socket.localAddress ?? '';
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            text: body.toString('utf8'),
            localPort,
            localAddress,
          });
        });
      },
    );
    req.setTimeout(options.timeoutMs ?? 10_000, () =>
      req.destroy(new Error(`request timed out: ${options.method ?? 'GET'} ${path}`)),
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** A keep-alive agent with a single socket, so consecutive requests share one connection. */
export function singleSocketAgent(): Agent {
  return new Agent({ keepAlive: true, maxSockets: 1, keepAliveMsecs: 60_000 });
}

/** The `DENIED` error a refused request carries. */
export interface DeniedError {
  code: string;
  message: string;
  detail: { reason: string; clientIp: string; registry: string };
}

/** Asserts a 403 `DENIED` naming `clientIp` with `reason`, and returns the error. */
export function expectDenied(res: NetResponse, clientIp: string, reason: string): DeniedError {
  assert.equal(res.status, 403, `expected 403 for ${clientIp}, got ${res.status}: ${res.text}`);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  const body = JSON.parse(res.text) as { errors: DeniedError[] };
  assert.equal(body.errors.length, 1, res.text);
  const error = body.errors[0]!;
  assert.equal(error.code, 'DENIED');
  assert.ok(
    error.message.startsWith(`client with IP '${clientIp}' is not allowed access. `),
    `message should name ${clientIp}: ${error.message}`,
  );
  assert.equal(error.detail.reason, reason);
  assert.equal(error.detail.clientIp, clientIp);
  return error;
}

/** A request whose body the test writes piece by piece, to be cut off mid-way. */
export interface StreamingRequest {
  /** Writes a chunk; resolves once Node has handed it to the socket (or the request failed). */
  write(chunk: Buffer): Promise<void>;
  end(): void;
  /** The response, or the error that ended the request (reset, closed); never rejects. */
  result: Promise<{ response?: NetResponse; error?: Error }>;
  /** Whether a response or an error has already arrived. */
  settled(): boolean;
}

/** Starts a request with a declared `Content-Length` and lets the test stream the body slowly. */
export function streamRequest(base: string, path: string, options: NetRequest): StreamingRequest {
  const { host, port } = endpointOf(base);
  let done = false;
  const req = httpRequest({
    host,
    port,
    path,
    method: options.method ?? 'PATCH',
    headers: withDefaultAuth(path, options.headers, options.anonymous),
    ...(options.from ? { localAddress: options.from } : {}),
    agent: options.agent ?? false,
  });
  const result = new Promise<{ response?: NetResponse; error?: Error }>((resolve) => {
    const finish = (value: { response?: NetResponse; error?: Error }) => {
      if (done) return;
      done = true;
      resolve(value);
    };
    req.on('error', (error) => finish({ error }));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', (error) => finish({ error }));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        finish({
          response: {
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            text: body.toString('utf8'),
            localPort: res.socket?.localPort ?? 0,
            localAddress: res.socket?.localAddress ?? '',
          },
        });
      });
    });
    req.setTimeout(options.timeoutMs ?? 15_000, () => req.destroy(new Error('streaming request timed out')));
  });
  return {
    write: (chunk) =>
      new Promise((resolve) => {
        if (done || req.destroyed) return resolve();
        req.write(chunk, () => resolve());
      }),
    end: () => {
      if (!done && !req.destroyed) req.end();
    },
    result,
    settled: () => done,
  };
}

/** What came back over a raw TCP connection. */
export interface RawExchange {
  /** Everything the server sent, as latin1 text. */
  data: string;
  /** The status code of the first HTTP response in `data`, if there is one. */
  status: number | undefined;
  /** Whether the server closed the connection (rather than the wait running out). */
  closed: boolean;
  /** A socket error such as ECONNRESET or ECONNREFUSED. */
  errorCode: string | undefined;
}

/**
 * Connects from `from` to `host:port`, writes `payload` (an array is written piece by piece, 20 ms
 * apart), and collects the answer until the server closes the connection or `timeoutMs` passes.
 * Requests should say `Connection: close`.
 */
export function rawExchange(
  target: { host: string; port: number },
  payload: Buffer | Buffer[],
  options: { from?: string; timeoutMs?: number } = {},
): Promise<RawExchange> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let errorCode: string | undefined;
    let settled = false;
    const socket = connect({
      host: target.host,
      port: target.port,
      ...(options.from ? { localAddress: options.from } : {}),
    });
    const finish = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const data = Buffer.concat(chunks).toString('latin1');
      const match = /^HTTP\/1\.[01] (\d{3}) /.exec(data);
      resolve({ data, status: match ? Number(match[1]) : undefined, closed, errorCode });
    };
    const timer = setTimeout(() => finish(false), options.timeoutMs ?? 5_000);
    const pieces = Array.isArray(payload) ? payload : [payload];
    socket.on('connect', () => {
      void (async () => {
        for (const [i, piece] of pieces.entries()) {
          if (i > 0) await sleep(20);
          if (settled || socket.destroyed) return;
          socket.write(piece);
        }
      })();
    });
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      errorCode = error.code;
      finish(true);
    });
    socket.on('close', () => finish(true));
  });
}

/** A minimal HTTP/1.1 request as bytes, closing the connection after the answer. */
export function httpBytes(method: string, path: string, host: string, headers: string[] = []): Buffer {
  // Data-plane requests carry the test owner's credentials unless the caller sent its own.
  const auth =
    path.startsWith('/v2') && !headers.some((h) => /^authorization:/i.test(h))
      ? [`Authorization: ${ADMIN_AUTH}`]
      : [];
  const lines = [
    `${method} ${path} HTTP/1.1`,
    `Host: ${host}`,
    'Connection: close',
    ...auth,
    ...headers,
    '',
    '',
  ];
  return Buffer.from(lines.join('\r\n'), 'latin1');
}

/** A TCP connection held open by the test, to watch whether the server closes it. */
export interface HeldConnection {
  socket: Socket;
  /** Sends a keep-alive GET and resolves with the status line's code once a whole response arrived. */
  get(path: string, host: string): Promise<number>;
  /** Resolves true when the server closes the connection within `timeoutMs`, false otherwise. */
  closedWithin(timeoutMs: number): Promise<boolean>;
}

/** Opens a raw keep-alive connection (Content-Length responses only: enough for small JSON answers). */
export async function holdConnection(target: { host: string; port: number }, from?: string) {
  const socket = connect({ host: target.host, port: target.port, ...(from ? { localAddress: from } : {}) });
  let closed = false;
  const closeWaiters: (() => void)[] = [];
  socket.on('close', () => {
    closed = true;
    for (const waiter of closeWaiters.splice(0)) waiter();
  });
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let buffered = Buffer.alloc(0);
  const held: HeldConnection = {
    socket,
    get: (path, host) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no response on the held connection')), 5_000);
        const onData = (chunk: Buffer) => {
          buffered = Buffer.concat([buffered, chunk]);
          const text = buffered.toString('latin1');
          const end = text.indexOf('\r\n\r\n');
          if (end < 0) return;
          const length = Number(/\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
          if (buffered.length < end + 4 + length) return;
          socket.off('data', onData);
          clearTimeout(timer);
          buffered = buffered.subarray(end + 4 + length);
          resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0));
        };
        socket.on('data', onData);
        socket.write(
          `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: ${ADMIN_AUTH}\r\nConnection: keep-alive\r\n\r\n`,
        );
      }),
    closedWithin: async (timeoutMs) => {
      if (closed) return true;
      const signal = new Promise<boolean>((resolve) => closeWaiters.push(() => resolve(true)));
      const result = await Promise.race([signal, sleep(timeoutMs).then(() => false)]);
      return result || closed;
    },
  };
  return held;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  assert.ok(address && typeof address === 'object');
  return address.port;
}

/** A management API call as the owner (or with `auth`), from `from` when given. */
export async function api(
  berth: TestBerth,
  method: string,
  path: string,
  body?: unknown,
  options: { auth?: string; from?: string } = {},
): Promise<{ status: number; json: unknown; text: string }> {
  const res = await send(berth.managementUrl, path, {
    method,
    headers: {
      Authorization: options.auth ?? ADMIN_AUTH,
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    ...(options.from ? { from: options.from } : {}),
  });
  return {
    status: res.status,
    text: res.text,
    json: res.text ? (JSON.parse(res.text) as unknown) : undefined,
  };
}

/** A registry's network settings, any subset (arrays replace, as in ARM PATCH). */
export interface NetworkSettings {
  publicNetworkAccess?: 'Enabled' | 'Disabled';
  defaultAction?: 'Allow' | 'Deny';
  ipRules?: string[];
  networkRuleBypassOptions?: 'AzureServices' | 'None';
}

/** PATCHes a registry's network settings through the management API and asserts 200. */
export async function setNetwork(
  berth: TestBerth,
  settings: NetworkSettings,
  registry = DEFAULT_REGISTRY,
): Promise<void> {
  const networkRuleSet = {
    ...(settings.defaultAction ? { defaultAction: settings.defaultAction } : {}),
    ...(settings.ipRules ? { ipRules: settings.ipRules.map((value) => ({ action: 'Allow', value })) } : {}),
  };
  const properties = {
    ...(settings.publicNetworkAccess ? { publicNetworkAccess: settings.publicNetworkAccess } : {}),
    ...(settings.networkRuleBypassOptions
      ? { networkRuleBypassOptions: settings.networkRuleBypassOptions }
      : {}),
    ...(Object.keys(networkRuleSet).length > 0 ? { networkRuleSet } : {}),
  };
  const res = await api(berth, 'PATCH', `/api/registries/${registry}`, { properties });
  assert.equal(res.status, 200, `PATCH network settings: ${res.text}`);
}

/** Puts the registry back to ACR's defaults: public access on, allow everyone, no rules. */
export function openNetwork(berth: TestBerth, registry = DEFAULT_REGISTRY): Promise<void> {
  return setNetwork(
    berth,
    { publicNetworkAccess: 'Enabled', defaultAction: 'Allow', ipRules: [], networkRuleBypassOptions: 'None' },
    registry,
  );
}

/** One entry of the denial log as the management API returns it (an address's denials in a minute). */
export interface DenialEntry {
  time: string;
  firstSeen: string;
  minute: string;
  clientIp: string;
  method: string;
  path: string;
  reason: string;
  entry: string;
  count: number;
  samples: { method: string; path: string }[];
  reportOnly?: true;
}

/** The registry's denial log (`GET /api/registries/{name}/networkDenials`). */
export async function denials(
  berth: TestBerth,
  query = '',
  registry = DEFAULT_REGISTRY,
): Promise<{
  value: DenialEntry[];
  countsByIp: { clientIp: string; count: number; lastSeen: string }[];
  timeSeries: { time: string; counts: Record<string, number> }[];
}> {
  const res = await api(berth, 'GET', `/api/registries/${registry}/networkDenials${query}`);
  assert.equal(res.status, 200, res.text);
  return res.json as Awaited<ReturnType<typeof denials>>;
}

/** Polls `check` every 20 ms until it is true, failing after `timeoutMs`. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(20);
  }
  assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
