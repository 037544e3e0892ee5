/**
 * The rules page for compliance staff: one static HTML page and one plain JS file (no build
 * step) served at /ui. The page holds no data; it asks for a token and calls the API with it.
 */
import { readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';

/** Where the page lives. */
export const UI_PREFIX = '/ui';

const FILES = [
  { route: '/ui', file: 'index.html', type: 'text/html; charset=utf-8' },
  { route: '/ui/app.js', file: 'app.js', type: 'text/javascript; charset=utf-8' },
  { route: '/ui/app.css', file: 'app.css', type: 'text/css; charset=utf-8' },
] as const;

const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; frame-ancestors 'none'";

/**
 * Registers GET /ui, /ui/app.js and /ui/app.css (read once at registration).
 * @param app - the encapsulated instance.
 */
export async function uiRoutes(app: FastifyInstance): Promise<void> {
  for (const f of FILES) {
    const body = await readFile(new URL(`../ui/${f.file}`, import.meta.url), 'utf8');
    app.get(
      f.route,
      { config: { access: 'public' }, schema: { hide: true, response: { 200: { type: 'string' } } } },
      async (_request, reply) =>
        reply
          .type(f.type)
          .header('content-security-policy', CSP)
          .header('x-content-type-options', 'nosniff')
          .header('cache-control', 'no-cache')
          .send(body),
    );
  }
}
