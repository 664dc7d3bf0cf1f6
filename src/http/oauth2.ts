import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type DataPlaneCredentials, type DataPlaneIdentity } from '../auth/credentials.js';
import { catalogPatterns, grant } from '../auth/permissions.js';
import { parseScopes } from '../auth/scope.js';
import type { TokenService } from '../auth/tokens.js';
import { OciError } from '../errors/oci.js';
import { assertIdentityNetwork, bearerChallenge, decodeBasic } from './v2/auth.js';

const MAX_FORM_BYTES = 64 * 1024;

/**
 * `GET /oauth2/token` (docker's token flow, Basic credentials or anonymous) and `POST /oauth2/token`
 * (the OAuth2 form: `grant_type=password` or `refresh_token`, `access_type=offline` for a refresh token),
 * as distribution's token.md and oauth.md describe. The network guard has run before either.
 */
export function registerTokenRoutes(
  app: FastifyInstance,
  credentials: DataPlaneCredentials,
  tokens: TokenService,
): void {
  const issue = async (
    request: FastifyRequest,
    reply: FastifyReply,
    identity: DataPlaneIdentity,
    scopes: string[],
    offline: boolean,
  ) => {
    const settings = await credentials.settings(request.registry);
    if (!settings) throw new OciError('UNAUTHORIZED', 'no such registry');
    assertIdentityNetwork(request, identity);
    const asked = parseScopes(scopes);
    const access = grant(identity.permissions, asked);
    const catalog = access.some((a) => a.type === 'registry' && a.actions.includes('*'))
      ? catalogPatterns(identity.permissions)
      : undefined;
    const issued = await tokens.issueAccess(settings.loginServer, identity.ref, access, asked, catalog);
    const refresh =
      offline && identity.ref.kind !== 'anonymous'
        ? await tokens.issueRefresh(settings.loginServer, identity.ref)
        : undefined;
    return reply
      .header('Cache-Control', 'no-store')
      .header('Content-Type', 'application/json')
      .send(
        JSON.stringify({
          token: issued.token,
          access_token: issued.token,
          expires_in: issued.expiresIn,
          issued_at: issued.issuedAt.toISOString(),
          scope: asked.map((a) => `${a.type}:${a.name}:${a.actions.join(',')}`).join(' '),
          ...(refresh ? { refresh_token: refresh } : {}),
        }),
      );
  };
  const clientIp = (request: FastifyRequest) => request.clientAddress?.text ?? 'unknown';

  app.get('/oauth2/token', async (request, reply) => {
    const query = new URLSearchParams(request.url.split('?')[1] ?? '');
    const authorization = request.headers.authorization;
    let identity: DataPlaneIdentity;
    if (authorization && /^basic /i.test(authorization)) {
      const { username, password } = decodeBasic(authorization.slice(6).trim());
      identity = await credentials.signIn(request.registry, username, password, clientIp(request));
    } else {
      const settings = await credentials.settings(request.registry);
      if (!settings?.anonymousPull)
        throw new OciError('UNAUTHORIZED', 'authentication required: send Basic credentials', undefined, {
          headers: { 'WWW-Authenticate': `Basic realm="${settings?.loginServer ?? request.registry}"` },
        });
      identity = credentials.anonymous(settings);
      credentials.record(request.registry, '<anonymous>', clientIp(request), 'success');
    }
    return issue(request, reply, identity, query.getAll('scope'), query.get('offline_token') === 'true');
  });

  app.post('/oauth2/token', async (request, reply) => {
    const form = new URLSearchParams(await readForm(request));
    const grantType = form.get('grant_type');
    let identity: DataPlaneIdentity;
    if (grantType === 'password') {
      const username = form.get('username') ?? '';
      identity = await credentials.signIn(
        request.registry,
        username,
        form.get('password') ?? '',
        clientIp(request),
      );
    } else if (grantType === 'refresh_token') {
      identity = await credentials.refresh(
        request.registry,
        form.get('refresh_token') ?? '',
        clientIp(request),
      );
    } else {
      throw new OciError('UNSUPPORTED', "grant_type must be 'password' or 'refresh_token'", undefined, {
        status: 400,
      });
    }
    const scopes = form.getAll('scope');
    // A refresh token is asked for with access_type=offline; a refresh grant keeps its refresh token.
    return issue(request, reply, identity, scopes, form.get('access_type') === 'offline');
  });

  // Anything else under /oauth2 gets the OCI error shape and the same challenge as /v2/.
  app.all('/oauth2/*', async (request) => {
    const settings = await credentials.settings(request.registry);
    throw new OciError(
      'UNSUPPORTED',
      `no such endpoint: ${request.method} ${request.url.split('?')[0]}`,
      undefined,
      {
        status: 404,
        headers: {
          'WWW-Authenticate': bearerChallenge(request, settings?.loginServer ?? request.registry, []),
        },
      },
    );
  });
}

/** Reads a form body of at most 64 KiB (the data plane parses no bodies for us). */
async function readForm(request: FastifyRequest): Promise<string> {
  const type = request.headers['content-type'] ?? '';
  if (!/^application\/x-www-form-urlencoded\b/i.test(type))
    throw new OciError(
      'UNSUPPORTED',
      'send the token request as application/x-www-form-urlencoded',
      undefined,
      {
        status: 400,
      },
    );
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request.raw as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES)
      throw new OciError('SIZE_INVALID', 'the token request body is too large', undefined, { status: 413 });
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
