import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { lookup as dnsLookup } from 'node:dns';
import { connectionErrorFrom } from './errors.js';

/** What `GET <endpoint>/v2/` answered, without credentials. */
export interface ProbeResult {
  url: string;
  status: number;
  /** The first OCI error of the body, when there is one. */
  error?: { code: string; message: string; detail?: unknown };
  /** The address the registry saw for this client (Berth's `Berth-Client-Address` on `/v2/`). */
  clientAddress?: string;
}

export interface ProbeOptions {
  /** The Host header to send instead of the endpoint's own (Berth tells registries apart by Host). */
  host?: string;
  timeoutMs?: number;
}

/**
 * Sends an anonymous `GET /v2/` to a registry's data endpoint. `*.localhost` names are resolved to
 * loopback (RFC 6761) because not every resolver does that.
 */
export function probeDataEndpoint(endpoint: string, options: ProbeOptions = {}): Promise<ProbeResult> {
  const url = new URL('v2/', endpoint.endsWith('/') ? endpoint : `${endpoint}/`);
  const transport = url.protocol === 'https:' ? https : http;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (options.host) headers.host = options.host;
  return new Promise((resolve, reject) => {
    const request = transport.request(
      url,
      { method: 'GET', headers, lookup: localhostLookup, timeout: options.timeoutMs ?? 15_000 },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', (error) => reject(connectionErrorFrom(url.href, error)));
        response.on('end', () => {
          const result: ProbeResult = { url: url.href, status: response.statusCode ?? 0 };
          const seen = response.headers['berth-client-address'];
          if (typeof seen === 'string') result.clientAddress = seen;
          const error = firstOciError(Buffer.concat(chunks).toString('utf8'));
          if (error) result.error = error;
          resolve(result);
        });
      },
    );
    request.on('timeout', () =>
      request.destroy(Object.assign(new Error('timed out'), { name: 'TimeoutError' })),
    );
    request.on('error', (error) => reject(connectionErrorFrom(url.href, { cause: error, ...error })));
    request.end();
  });
}

const localhostLookup: LookupFunction = (hostname, options, callback) => {
  const name = hostname.toLowerCase();
  if (name === 'localhost' || name.endsWith('.localhost')) {
    const family = (options as { family?: number }).family === 6 ? 6 : 4;
    const address = family === 6 ? '::1' : '127.0.0.1';
    if ((options as { all?: boolean }).all) {
      (callback as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [
        { address, family },
      ]);
    } else {
      callback(null, address, family);
    }
    return;
  }
  dnsLookup(hostname, options, callback);
};

function firstOciError(text: string): ProbeResult['error'] {
  try {
    const body = JSON.parse(text) as { errors?: { code?: unknown; message?: unknown; detail?: unknown }[] };
    const first = body.errors?.[0];
    if (first && typeof first.code === 'string') {
      return {
        code: first.code,
        message: typeof first.message === 'string' ? first.message : '',
        ...(first.detail !== undefined ? { detail: first.detail } : {}),
      };
    }
  } catch {
    // not JSON: no OCI error to report
  }
  return undefined;
}
