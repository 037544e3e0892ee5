/**
 * The web app for compliance staff and operators, served at /ui: one page, one bundled script
 * (CodeMirror and the app, built by `npm run build:ui` into src/api/ui/build, or into
 * dist/api/ui/build by `npm run build`) and one style sheet. The page holds no data: it asks
 * for a token, keeps it in the tab, and calls this API with it. The strict CSP allows nothing
 * but this origin.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import { API_ERR_UI_NOT_BUILT } from '../../shared/errors/index.ts';

/** Where the page lives. */
export const UI_PREFIX = '/ui';

const FILES = [
  { route: '/ui', file: 'index.html', type: 'text/html; charset=utf-8' },
  { route: '/ui/app.js', file: 'app.js', type: 'text/javascript; charset=utf-8' },
  { route: '/ui/app.css', file: 'app.css', type: 'text/css; charset=utf-8' },
] as const;

/**
 * Nothing but this origin, except style elements carrying this response's nonce: the editor
 * (CodeMirror) writes its styles into a style element, which a plain `style-src 'self'` blocks.
 */
const csp = (nonce: string): string =>
  `default-src 'self'; script-src 'self'; style-src 'self' 'nonce-${nonce}'; connect-src 'self'; frame-ancestors 'none'`;
/** Where the page tells the script its nonce. */
const NONCE_MARK = '__CSP_NONCE__';

/**
 * Registers GET /ui, /ui/app.js and /ui/app.css, read once at registration. A checkout where
 * the app was never built answers 503 with the command that builds it, rather than failing
 * the whole API.
 * @param app - the encapsulated instance.
 */
export async function uiRoutes(app: FastifyInstance): Promise<void> {
  for (const f of FILES) {
    const body = await readFile(new URL(`../ui/build/${f.file}`, import.meta.url), 'utf8').catch(() => undefined);
    app.get(f.route, { config: { access: 'public' }, schema: { hide: true } }, async (_request, reply) => {
      if (body === undefined) {
        throw API_ERR_UI_NOT_BUILT.create();
      }
      const nonce = randomBytes(16).toString('base64');
      return reply
        .type(f.type)
        .header('content-security-policy', csp(nonce))
        .header('x-content-type-options', 'nosniff')
        .header('cache-control', 'no-cache')
        .send(f.file === 'index.html' ? body.replace(NONCE_MARK, nonce) : body);
    });
  }
}
