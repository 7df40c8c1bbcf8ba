// Serves the built Svelte panel (dist/web) at /panel/, the custom page URL HighLevel frames.
import { existsSync } from 'node:fs';
import { join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fastifyStatic from '@fastify/static';
import { tenant } from './tenant.ts';

export const DEFAULT_PANEL_DIR = fileURLToPath(new URL('../../dist/web', import.meta.url));

export function registerPanelRoutes(app: FastifyInstance, options: { dir?: string } = {}): void {
  const dir = options.dir ?? DEFAULT_PANEL_DIR;

  // Keep the query string: HighLevel may add parameters to the custom page URL.
  const toPanel = (req: FastifyRequest, reply: FastifyReply) => {
    const query = req.url.indexOf('?');
    return reply.redirect(`/panel/${query >= 0 ? req.url.slice(query) : ''}`, 302);
  };
  app.get('/', { ...tenant('public') }, toPanel);
  app.get('/panel', { ...tenant('public') }, toPanel);

  if (!existsSync(join(dir, 'index.html'))) {
    const notBuilt = (_req: FastifyRequest, reply: FastifyReply) =>
      reply
        .code(503)
        .type('text/plain; charset=utf-8')
        .send('The Tandem panel has not been built yet. Run `npm run build` (or `npm start`, which builds it) and reload.');
    app.get('/panel/', { ...tenant('public') }, notBuilt);
    app.get('/panel/*', { ...tenant('public') }, notBuilt);
    return;
  }

  const assets = join(dir, 'assets') + sep;
  // @fastify/static registers its own routes; a wrapping plugin marks them as public files.
  void app.register(async (files) => {
    files.addHook('onRoute', (route) => {
      route.config = Object.assign(route.config ?? {}, tenant('public').config);
    });
    await files.register(fastifyStatic, {
      root: dir,
      prefix: '/panel/',
      // Cache headers are set below: index.html must be revalidated so a deploy shows at once,
      // while Vite's hashed assets never change under their name.
      cacheControl: false,
      setHeaders(reply, path) {
        if (path.endsWith('.html')) reply.header('cache-control', 'no-cache');
        else if (path.startsWith(assets)) reply.header('cache-control', 'public, max-age=31536000, immutable');
        else reply.header('cache-control', 'public, max-age=3600');
      },
    });
  });
}
