import { existsSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

/** Where `npm run build` puts the portal: dist/portal of the package, from src/ (tsx) and dist/ alike. */
export const PORTAL_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'portal');

// The portal is static files and its own scripts only; it needs nothing from anywhere else.
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join('; ');

/**
 * Serves the built portal under `/` on the management listener. Files are listed once at start
 * (`wildcard: false`), so `/api/...` keeps its own routes and 404s, and nothing outside the build
 * directory can be named. Without a build, `/` says how to make one.
 */
export function registerPortal(app: FastifyInstance, dir = PORTAL_DIR): void {
  if (!existsSync(join(dir, 'index.html'))) {
    app.get('/', async (_request, reply) =>
      reply
        .code(404)
        .type('text/plain; charset=utf-8')
        .send("Berth's portal is not built: run `npm run build`, then restart Berth.\n"),
    );
    return;
  }
  void app.register(fastifyStatic, {
    root: dir,
    prefix: '/',
    wildcard: false,
    // Cache-Control is ours (below): hashed assets forever, index.html revalidated.
    cacheControl: false,
    setHeaders(res, path) {
      res.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY);
      res.setHeader('X-Content-Type-Options', 'nosniff');
      res.setHeader('Referrer-Policy', 'no-referrer');
      // Vite names built assets by their content hash; index.html must always be fetched fresh.
      const immutable = path.includes(`${sep}assets${sep}`);
      res.setHeader('Cache-Control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
    },
  });
}
