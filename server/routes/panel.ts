// Serves the built Svelte panel (dist/web) at /panel/, the custom page URL HighLevel frames, and
// what a browser opening Tandem's own address finds: `/` (the panel, or in the sandbox a page that
// leads to the emulated HighLevel) and `/favicon.ico`.
import { existsSync } from 'node:fs';
import { join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fastifyStatic from '@fastify/static';
import { tenant } from './tenant.ts';

export const DEFAULT_PANEL_DIR = fileURLToPath(new URL('../../dist/web', import.meta.url));

export interface PanelRouteOptions {
  /** Where the built panel lives (default dist/web). */
  dir?: string;
  /** The emulated HighLevel page with Tandem inside (sandbox only): `/` then leads there. */
  sandboxUrl?: string;
}

export function registerPanelRoutes(app: FastifyInstance, options: PanelRouteOptions = {}): void {
  const dir = options.dir ?? DEFAULT_PANEL_DIR;

  // Keep the query string: HighLevel may add parameters to the custom page URL.
  const toPanel = (req: FastifyRequest, reply: FastifyReply) => {
    const query = req.url.indexOf('?');
    return reply.redirect(`/panel/${query >= 0 ? req.url.slice(query) : ''}`, 302);
  };
  const { sandboxUrl } = options;
  if (sandboxUrl) {
    // Opened on its own, outside HighLevel, the panel can only say to open it from HighLevel: in
    // the sandbox, the address the banner prints for Tandem leads to the emulated HighLevel instead.
    const page = sandboxLanding(sandboxUrl);
    app.get('/', { ...tenant('public') }, (_req, reply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(page));
  } else {
    app.get('/', { ...tenant('public') }, toPanel);
  }
  app.get('/panel', { ...tenant('public') }, toPanel);
  // Browsers ask for it on every origin they open: no icon, and no 404 in their console.
  app.get('/favicon.ico', { ...tenant('public') }, (_req, reply) => reply.code(204).header('cache-control', 'public, max-age=86400').send());

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

/**
 * The sandbox's landing page. It holds the sandbox URL (ids only, printed in the banner too) and
 * nothing else from the sandbox: its secrets stay in sandbox.json.
 */
export function sandboxLanding(sandboxUrl: string): string {
  const href = escapeHtml(sandboxUrl);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tandem sandbox</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 36rem; margin: 4rem auto; padding: 0 1rem; color: #1f2937; }
  a.open { display: inline-block; margin: 0.5rem 0 1rem; padding: 0.6rem 1rem; border-radius: 6px; background: #2563eb; color: #fff; text-decoration: none; }
  code { font-size: 0.9em; word-break: break-all; }
</style>
</head>
<body>
<h1>Tandem is running in sandbox mode</h1>
<p>Tandem's panel opens inside HighLevel. Here a local HighLevel emulator stands in for it, with a demo agency that has Tandem installed.</p>
<p><a class="open" href="${href}">Open HighLevel sandbox</a></p>
<p>Or paste this address into your browser: <code>${href}</code></p>
</body>
</html>
`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
