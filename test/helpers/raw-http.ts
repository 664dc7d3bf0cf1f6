// A raw TCP connection that speaks just enough HTTP/1.1 for tests that must send what no client
// library would (lying Content-Length, broken chunking, a hang-up mid-body) and still read the answers
// one by one on the same connection. Loopback only; every wait is bounded.

import { connect, type Socket } from 'node:net';
import { endpointOf } from './net.js';
import { ADMIN_AUTH } from './server.js';

/** One parsed response. */
export interface RawHttpResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** A loopback connection to a Berth listener. */
export class RawConnection {
  private buffer = Buffer.alloc(0);
  private waiter: (() => void) | undefined;
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.waiter?.();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
  }

  /** Connects to `url`'s host and port (optionally from a chosen loopback source address). */
  static open(url: string, from?: string): Promise<RawConnection> {
    const { host, port } = endpointOf(url);
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port, ...(from ? { localAddress: from } : {}) });
      socket.once('connect', () => resolve(new RawConnection(socket)));
      socket.once('error', reject);
    });
  }

  /** Writes bytes; resolves once they are handed to the kernel (false when the server closed). */
  write(data: Buffer | string): Promise<boolean> {
    if (this.closed || this.socket.destroyed) return Promise.resolve(false);
    return new Promise((resolve) => this.socket.write(data, (error) => resolve(!error)));
  }

  /** Reads the next whole response, or undefined when the connection closes first or time runs out. */
  async read(timeoutMs = 10_000, head = false): Promise<RawHttpResponse | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const parsed = parseResponse(this.buffer, head);
      if (parsed) {
        this.buffer = this.buffer.subarray(parsed.consumed);
        return parsed.response;
      }
      if (this.closed || Date.now() >= deadline) return undefined;
      await this.wait(deadline - Date.now());
    }
  }

  /** Waits until the server closes the connection; false when it is still open after `timeoutMs`. */
  async waitClosed(timeoutMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await this.wait(deadline - Date.now());
    return this.closed;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, Math.max(1, ms));
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.waiter = () => {
        this.waiter = undefined;
        done();
      };
    });
  }
}

/** Request head bytes with the test owner's credentials (`extra` lines are added as given). */
export function requestHead(method: string, path: string, extra: string[] = []): string {
  return [
    `${method} ${path} HTTP/1.1`,
    'Host: localhost',
    `Authorization: ${ADMIN_AUTH}`,
    ...extra,
    '',
    '',
  ].join('\r\n');
}

function parseResponse(
  buffer: Buffer,
  head: boolean,
): { response: RawHttpResponse; consumed: number } | undefined {
  const end = buffer.indexOf('\r\n\r\n');
  if (end === -1) return undefined;
  const lines = buffer.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let offset = end + 4;
  if (status === 100) return { response: { status, headers, body: Buffer.alloc(0) }, consumed: offset };
  if (head || status === 204 || status === 304)
    return { response: { status, headers, body: Buffer.alloc(0) }, consumed: offset };
  if (headers['transfer-encoding']?.toLowerCase() === 'chunked') {
    const parts: Buffer[] = [];
    for (;;) {
      const lineEnd = buffer.indexOf('\r\n', offset);
      if (lineEnd === -1) return undefined;
      const size = parseInt(buffer.subarray(offset, lineEnd).toString('latin1'), 16);
      if (buffer.length < lineEnd + 2 + size + 2) return undefined;
      parts.push(buffer.subarray(lineEnd + 2, lineEnd + 2 + size));
      offset = lineEnd + 2 + size + 2;
      if (size === 0) return { response: { status, headers, body: Buffer.concat(parts) }, consumed: offset };
    }
  }
  const length = Number(headers['content-length'] ?? 0);
  if (buffer.length < offset + length) return undefined;
  return {
    response: { status, headers, body: Buffer.from(buffer.subarray(offset, offset + length)) },
    consumed: offset + length,
  };
}
