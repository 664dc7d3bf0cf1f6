import type { FastifyReply, FastifyRequest } from 'fastify';
import type { IdentityService, Principal } from '../../auth/identities.js';
import type { PortalSessions } from '../../auth/sessions.js';
import { ManagementError } from '../../errors/management.js';
import { clientAddressOf } from '../guard.js';
import type { ManagementContext } from './context.js';

/** The portal's session cookie. Path=/api: only the API reads it, never the static files. */
export const SESSION_COOKIE = 'berth_session';
/**
 * Every request that authenticates with the session cookie must carry this header. A page on another
 * origin cannot add a custom header without a CORS preflight, which this API never grants, so the
 * cookie alone cannot be used to forge a request — including from another port of the same host, which
 * counts as the same site for SameSite.
 */
export const PORTAL_HEADER = 'x-requested-by';
export const PORTAL_HEADER_VALUE = 'berth-portal';

const sessionBodySchema = {
  $id: 'SessionBody',
  type: 'object',
  additionalProperties: false,
  properties: {
    username: { type: 'string', minLength: 1, maxLength: 100 },
    password: { type: 'string', minLength: 1, maxLength: 1000 },
    apiKey: { type: 'string', minLength: 1, maxLength: 1000 },
  },
} as const;

type SessionBody = { username?: string; password?: string; apiKey?: string };

/** Whether a request came from the portal (it then gets no Basic challenge, so no browser prompt). */
export function isPortalRequest(request: FastifyRequest): boolean {
  return request.headers[PORTAL_HEADER] === PORTAL_HEADER_VALUE;
}

/** Authenticates a management request: its Authorization header, else the portal's session cookie. */
export async function authenticateRequest(
  request: FastifyRequest,
  identities: IdentityService,
  sessions: PortalSessions,
  clientIp: string,
): Promise<Principal> {
  const token = request.headers.authorization ? undefined : sessionTokenOf(request);
  if (token === undefined) return identities.authenticate(request.headers.authorization, clientIp);
  if (!isPortalRequest(request)) {
    throw new ManagementError(
      'AuthenticationFailed',
      `A session cookie is accepted only with the header '${PORTAL_HEADER}: ${PORTAL_HEADER_VALUE}'.`,
    );
  }
  const id = await sessions.resolve(token);
  const principal = id === undefined ? undefined : await identities.principalById(id);
  if (!principal) throw new ManagementError('AuthenticationFailed', 'Your session has ended; sign in again.');
  return principal;
}

/** Portal sign-in and sign-out: a server-side session behind an HttpOnly, SameSite=Strict cookie. */
export function registerSessionRoutes(ctx: ManagementContext): void {
  const { identities, sessions, route } = ctx;

  route({
    method: 'POST',
    url: '/api/sessions',
    summary: 'Sign in (user name and password, or an API key) and get a session cookie for the portal',
    tag: 'Identities',
    body: sessionBodySchema,
    responses: { 201: { description: 'Signed in; Set-Cookie carries the session' } },
    handler: async (request: FastifyRequest<{ Body: SessionBody }>, reply: FastifyReply) => {
      const { username, password, apiKey } = request.body;
      let authorization: string;
      if (apiKey !== undefined && username === undefined && password === undefined) {
        authorization = `Bearer ${apiKey}`;
      } else if (username !== undefined && password !== undefined && apiKey === undefined) {
        authorization = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
      } else {
        throw new ManagementError(
          'InvalidRequestContent',
          'Send either a user name and a password, or an API key.',
          { target: 'body' },
        );
      }
      const principal = await identities.authenticate(
        authorization,
        clientAddressOf(request, ctx.trustedProxies).text,
      );
      const { token, expiresAt } = await sessions.create(principal.id);
      const maxAge = Math.round((expiresAt.getTime() - Date.now()) / 1000);
      reply.header(
        'Set-Cookie',
        `${SESSION_COOKIE}=${token}; Path=/api; HttpOnly; SameSite=Strict; Max-Age=${maxAge}`,
      );
      reply.header('Cache-Control', 'no-store');
      return reply.code(201).send({
        name: principal.name,
        kind: principal.kind,
        roles: principal.roles.map((r) => ({ registry: r.registry, role: r.role })),
        clientIp: clientAddressOf(request, ctx.trustedProxies).text,
        expiresAt: expiresAt.toISOString(),
      });
    },
  });

  route({
    method: 'DELETE',
    url: '/api/sessions/current',
    summary: 'Sign out: end the portal session of this cookie',
    tag: 'Identities',
    responses: { 204: { description: 'Signed out' } },
    handler: async (request, reply: FastifyReply) => {
      const token = sessionTokenOf(request);
      if (token !== undefined) await sessions.revoke(token);
      reply.header('Set-Cookie', `${SESSION_COOKIE}=; Path=/api; HttpOnly; SameSite=Strict; Max-Age=0`);
      return reply.code(204).send();
    },
  });
}

function sessionTokenOf(request: FastifyRequest): string | undefined {
  const header = request.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === SESSION_COOKIE) {
      const value = part.slice(eq + 1).trim();
      return value === '' ? undefined : value;
    }
  }
  return undefined;
}
