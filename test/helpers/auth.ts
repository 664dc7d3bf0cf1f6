// Sign-in helpers for data-plane tests: ask /oauth2/token for a token, and read challenges.

import assert from 'node:assert/strict';
import { basic, dataPlane } from './management.js';
import type { RawResponse } from './oci.js';
import type { TestBerth } from './server.js';

/** What `/oauth2/token` answers. */
export interface TokenResponse {
  token: string;
  access_token: string;
  expires_in: number;
  issued_at: string;
  refresh_token?: string;
}

/** `GET /oauth2/token` on `registry` (by Host) with Basic credentials; asserts 200 and returns the body. */
export async function fetchToken(
  berth: Pick<TestBerth, 'url'>,
  registry: string,
  user: string,
  password: string,
  scopes: string[] = [],
  from?: string,
): Promise<TokenResponse> {
  const res = await tokenRequest(berth, registry, scopes, basic(user, password), from);
  assert.equal(res.status, 200, `token for ${user} on ${registry}: ${res.body.toString()}`);
  return JSON.parse(res.body.toString()) as TokenResponse;
}

/** `GET /oauth2/token` with the given Authorization (or none): the raw answer. */
export function tokenRequest(
  berth: Pick<TestBerth, 'url'>,
  registry: string,
  scopes: string[],
  authorization: string | undefined,
  from?: string,
): Promise<RawResponse> {
  const query = new URLSearchParams({ service: `${registry}.localhost` });
  for (const scope of scopes) query.append('scope', scope);
  return dataPlane(berth, registry, 'GET', `/oauth2/token?${query}`, {
    ...(authorization ? { headers: { Authorization: authorization } } : { anonymous: true }),
    ...(from ? { from } : {}),
  });
}

/** `POST /oauth2/token` with a form body. */
export function tokenForm(
  berth: Pick<TestBerth, 'url'>,
  registry: string,
  form: Record<string, string | string[]>,
  from?: string,
): Promise<RawResponse> {
  const body = new URLSearchParams();
  for (const [key, value] of Object.entries(form))
    for (const v of Array.isArray(value) ? value : [value]) body.append(key, v);
  return dataPlane(berth, registry, 'POST', '/oauth2/token', {
    body: Buffer.from(body.toString()),
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    anonymous: true,
    ...(from ? { from } : {}),
  });
}

/** The `Authorization` value for a token. */
export const bearerToken = (token: string): string => `Bearer ${token}`;

/** Parses `WWW-Authenticate: Bearer k="v",…` into its parameters; asserts it is a Bearer challenge. */
export function parseChallenge(res: RawResponse): Record<string, string> {
  const header = res.headers['www-authenticate'];
  assert.ok(typeof header === 'string', `a WWW-Authenticate header (status ${res.status})`);
  assert.match(header, /^Bearer /);
  const params: Record<string, string> = {};
  for (const match of header.slice(7).matchAll(/(\w+)="([^"]*)"/g)) params[match[1]!] = match[2]!;
  return params;
}

/** The OCI error code of a raw response. */
export function errorCode(res: RawResponse): string | undefined {
  try {
    return (JSON.parse(res.body.toString()) as { errors?: { code: string }[] }).errors?.[0]?.code;
  } catch {
    return undefined;
  }
}
