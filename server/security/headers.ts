// Security headers for every response (helmet). Nothing Tandem serves may be framed, except the
// panel (/panel/ and its assets), which HighLevel shows in an iframe: its CSP `frame-ancestors`
// lists HighLevel's origins, every active agency's white-label domain, and the configured
// HighLevel (the emulator in the sandbox). The panel sends no X-Frame-Options, which would block it.
import Fastify, { type FastifyInstance } from 'fastify';
import helmet, { type FastifyHelmetOptions } from '@fastify/helmet';
import type { Config } from '../config.ts';
import type { Db } from '../../db/client.ts';
import { activeWhitelabelDomains } from '../../db/installations.ts';

/**
 * HighLevel's own hosts, as CONTRACT names them: the app and marketplace live on gohighlevel.com,
 * the white-label app, marketplace and API on leadconnectorhq.com. msgsndr.com is left out on
 * purpose: the spec shows it only as a host of location websites, which customers build.
 */
export const HIGHLEVEL_FRAME_ORIGINS = ['https://*.gohighlevel.com', 'https://*.leadconnectorhq.com'] as const;

/** Where the panel is served; every route under it is framable, nothing else is. */
export const PANEL_PREFIX = '/panel/';

export function isPanelRoute(url: string): boolean {
  return url.startsWith(PANEL_PREFIX);
}

/** `https://<host>` for a white-label domain as HighLevel reports it; null when not a plain host name. */
export function whitelabelOrigin(domain: string): string | null {
  const host = domain
    .trim()
    .toLowerCase()
    .replace(/^https?:\/\//, '')
    .replace(/\/.*$/, '');
  // Only letters, digits, dots and dashes reach the header: a domain is data from a webhook.
  if (!/^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}$/.test(host)) return null;
  return `https://${host}`;
}

/**
 * The configured HighLevel's origins when they are not HighLevel's public hosts (the sandbox's
 * emulator, a staging HighLevel). A loopback origin is allowed under both of its names, since a
 * browser may open the emulator as localhost or as 127.0.0.1.
 */
export function configuredHighLevelOrigins(config: Pick<Config, 'highlevel'>): string[] {
  const out = new Set<string>();
  for (const url of [config.highlevel.marketplaceUrl, config.highlevel.apiUrl]) {
    const u = new URL(url);
    if (u.protocol === 'https:' && /(^|\.)(gohighlevel|leadconnectorhq)\.com$/.test(u.hostname)) continue;
    out.add(u.origin);
    if (u.hostname === 'localhost' || u.hostname === '127.0.0.1') {
      const other = u.hostname === 'localhost' ? '127.0.0.1' : 'localhost';
      out.add(`${u.protocol}//${other}${u.port ? `:${u.port}` : ''}`);
    }
  }
  return [...out];
}

export function registerSecurityHeaders(app: FastifyInstance, deps: { config: Config; db: Db }): void {
  const { config, db } = deps;
  const https = config.publicUrl.startsWith('https:');
  const fixedAncestors = [...HIGHLEVEL_FRAME_ORIGINS, ...configuredHighLevelOrigins(config), ...config.frameAncestors];

  // Helmet's defaults, minus what does not fit: HSTS and upgrade-insecure-requests only when
  // Tandem is served over https (the sandbox runs on http://localhost).
  const base = {
    defaultSrc: ["'self'"],
    baseUri: ["'self'"],
    fontSrc: ["'self'", 'data:'],
    formAction: ["'self'"],
    imgSrc: ["'self'", 'data:'],
    objectSrc: ["'none'"],
    scriptSrc: ["'self'"],
    scriptSrcAttr: ["'none'"],
    styleSrc: ["'self'", "'unsafe-inline'"],
    upgradeInsecureRequests: https ? [] : null,
  };

  const global: FastifyHelmetOptions = {
    global: true,
    contentSecurityPolicy: { useDefaults: false, directives: { ...base, frameAncestors: ["'none'"] } },
    xFrameOptions: { action: 'deny' },
    strictTransportSecurity: https ? { maxAge: 31_536_000, includeSubDomains: true } : false,
  };

  // The white-label list is read per request (one small query, only for panel responses) so an
  // agency can open the panel the moment its INSTALL webhook is stored; no cache to invalidate.
  const whitelabel = () =>
    activeWhitelabelDomains(db)
      .map(whitelabelOrigin)
      .filter((o): o is string => o !== null)
      .join(' ');
  const panel = {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        ...base,
        // The built panel has no inline <style> or style="" (test/integration/security-headers.test.ts,
        // and the e2e test sees no CSP violation), so styles need no 'unsafe-inline'.
        styleSrc: ["'self'"],
        connectSrc: ["'self'"],
        frameAncestors: [...fixedAncestors, whitelabel],
      },
    },
    xFrameOptions: false,
  } satisfies Omit<FastifyHelmetOptions, 'global'>;

  // @fastify/helmet applies `config.helmet` of the matched route over the global options; static
  // file routes are registered by a plugin, so the marking happens here, for every route. Every
  // other route's headers never change, yet helmet rebuilds them on each request (a measurable
  // share of a webhook's acknowledgement): they are computed once, by helmet itself at start, and
  // set with one call. Answers without a route (404) still go through helmet.
  let fixed: Record<string, string> | undefined;
  app.addHook('onRoute', (route) => {
    const helmetConfig = isPanelRoute(route.url ?? '') ? panel : FIXED_HEADERS;
    route.config = Object.assign(route.config ?? {}, { helmet: helmetConfig });
  });
  app.addHook('onRequest', (req, reply, done) => {
    if ((req.routeOptions.config as { helmet?: unknown }).helmet === FIXED_HEADERS) reply.headers(fixed!);
    done();
  });
  void app.register(async () => {
    fixed = await helmetHeaders(global);
  });
  void app.register(helmet, global);
}

/** Route marker: helmet skips the route, whose headers are set from the headers computed once. */
const FIXED_HEADERS = Object.freeze({ skipRoute: true as const });

/** The headers helmet sets with these options, read from one answer of a throwaway instance. */
async function helmetHeaders(options: FastifyHelmetOptions): Promise<Record<string, string>> {
  const probe = Fastify({ logger: false });
  await probe.register(helmet, options);
  probe.get('/', () => 'probe');
  const res = await probe.inject('/');
  await probe.close();
  const plain = new Set(['content-type', 'content-length', 'date', 'connection', 'keep-alive']);
  return Object.fromEntries(Object.entries(res.headers).filter(([k, v]) => !plain.has(k) && typeof v === 'string')) as Record<string, string>;
}
