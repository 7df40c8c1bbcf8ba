// Tandem's HTTP application: one Fastify instance with the error handler and every route
// registered explicitly, so this file lists everything Tandem answers.
import type { IncomingMessage } from 'node:http';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import formbody from '@fastify/formbody';
import proxyAddr from '@fastify/proxy-addr';
import type { Config } from './config.ts';
import { systemClock, type Clock } from './clock.ts';
import type { Database } from '../db/client.ts';
import { loggerOptions } from './log.ts';
import { BODY_LIMIT, frameworkErrors, installErrorHandlers } from './errors.ts';
import { registerHealthRoutes } from './routes/health.ts';
import { registerPanelRoutes } from './routes/panel.ts';
import { registerPanelApiRoutes } from './routes/panel-api.ts';
import { registerPanelSyncRoutes } from './routes/panel-sync.ts';
import { registerPanelApiKeyRoutes } from './routes/panel-api-keys.ts';
import { registerPanelContactRoutes } from './routes/panel-contacts.ts';
import { registerPanelOperationRoutes } from './routes/panel-operations.ts';
import { apiV1Plugin } from './routes/api-v1.ts';
import { registerSecurityHeaders } from './security/headers.ts';
import { acceptForwardedOnlyFromFront } from './security/front-secret.ts';
import { createPanelSessions, installPanelSessions } from './auth/session.ts';
import { createServices, type Services } from './services.ts';
import { registerInstallRoutes } from './routes/install.ts';
import { registerWebhookRoutes } from './routes/webhooks.ts';

export interface AppDeps {
  config: Config;
  db: Database;
  /** A ready logger, or false for none; default: pino with Tandem's options (server/log.ts). */
  logger?: FastifyBaseLogger | false;
  /** Where the built panel lives (default dist/web). */
  panelDir?: string;
  /** The emulated HighLevel page with Tandem inside (sandbox only): Tandem's `/` leads there. */
  sandboxUrl?: string;
  /** Injected time (default: the system clock). */
  clock?: Clock;
  /** Tandem's services (server/services.ts); created from config, db and clock when absent. Closed with the app. */
  services?: Services;
  /**
   * Requests come through the front thread's proxy (server/front.ts), which appends the client's
   * address to X-Forwarded-For: that first hop is trusted, TRUST_PROXY applies beyond it. Only on
   * requests bearing the front's secret: others lose their forwarded headers (server/security/front-secret.ts).
   */
  behindFront?: boolean;
  /** With behindFront: the secret the front marks its requests with. */
  frontSecret?: string;
}

/** Fastify's `trustProxy` from TRUST_PROXY: which hops' X-Forwarded-For to believe (hop 0 is the socket's peer). */
export function trustFunction(setting: Config['trustProxy'], behindFront: boolean): (address: string, hop: number) => boolean {
  const trusted: (address: string, hop: number) => boolean =
    typeof setting === 'number'
      ? (_address, hop) => hop < setting
      : typeof setting === 'boolean'
        ? () => setting
        : proxyAddr.compile(setting.split(',').map((s) => s.trim()));
  return behindFront ? (address, hop) => hop === 0 || trusted(address, hop - 1) : trusted;
}

export function buildApp(deps: AppDeps): FastifyInstance {
  const { config, db } = deps;
  const clock = deps.clock ?? systemClock;
  void clock;
  // Client addresses (the sign-in rate limit is per address) come through trusted proxies only.
  const trustProxy = trustFunction(config.trustProxy, deps.behindFront ?? false);
  const options: FastifyServerOptions = {
    trustProxy,
    bodyLimit: BODY_LIMIT,
    // What the router refuses itself (a path that does not decode) in Tandem's error shape too.
    frameworkErrors,
    // Fastify's router gives up on a path parameter over 100 characters (a guard for regex
    // parameters, which Tandem has none of): the path then matched no route, or the REST API's
    // 405 wildcard, which named the very method used and answered without a key. Each route's own
    // checks (an id's schema, its lookup) judge a parameter of any length instead; Node's limit on
    // a request's head (16 KiB) bounds it.
    routerOptions: { maxParamLength: Number.MAX_SAFE_INTEGER },
  };
  const app: FastifyInstance =
    deps.logger === undefined
      ? Fastify({ ...options, logger: loggerOptions(config) })
      : deps.logger === false
        ? Fastify({ ...options, logger: false })
        : Fastify({ ...options, loggerInstance: deps.logger });
  if (deps.behindFront) {
    const secret = deps.frontSecret;
    // Without it the internal port would believe anyone's X-Forwarded-For: refuse to start.
    if (!secret) throw new Error('behind the front, the app needs the front\'s secret (frontSecret)');
    // Ahead of Fastify's own listener, so nothing of Fastify (its log line, req.ip, req.host) ever
    // sees forwarded headers the front did not send.
    app.server.prependListener('request', (req: IncomingMessage) => acceptForwardedOnlyFromFront(req.headers, secret));
  }
  const services = deps.services ?? createServices({ config, db, clock, logger: app.log });
  app.addHook('onClose', () => services.close());
  // Fastify closes the connections idle when close() begins, but one busy then (a webhook being
  // answered, with HighLevel's keep-alive) turns idle afterwards and would hold close() open for the
  // keep-alive timeout (72 s): close such connections as soon as their answer is sent.
  let sweep: NodeJS.Timeout | undefined;
  app.addHook('preClose', function (done) {
    const server = this.server;
    sweep = setInterval(() => server.closeIdleConnections(), 25);
    sweep.unref();
    done();
  });
  app.addHook('onClose', (_app, done) => {
    clearInterval(sweep);
    done();
  });

  installErrorHandlers(app);
  // HighLevel's OAuth and install endpoints post forms.
  void app.register(formbody);

  // Before any route: helmet everywhere; only /panel/ may be framed, and only by HighLevel.
  registerSecurityHeaders(app, { config, db: db.db });
  installPanelSessions(app, createPanelSessions({ tokenEncryptionKey: config.tokenEncryptionKey, clock, db: db.db }));

  registerHealthRoutes(app, { db });
  registerPanelRoutes(app, { dir: deps.panelDir, sandboxUrl: deps.sandboxUrl });
  registerPanelApiRoutes(app, { config, db: db.db, clock, sessions: app.panelSessions });
  registerPanelSyncRoutes(app, { db: db.db, clock: services.clock, wake: (locationId) => services.sync.wake(locationId) });
  registerPanelApiKeyRoutes(app, { db: db.db, clock: services.clock });
  registerPanelContactRoutes(app, { db: db.db, clock: services.clock, wake: (locationId) => services.sync.wake(locationId) });
  registerPanelOperationRoutes(app, { db: db.db, operations: services.operations });
  // The REST API is its own plugin: zod compilers and the OpenAPI document stay inside it.
  void app.register(apiV1Plugin, {
    db: db.db,
    clock: services.clock,
    rateLimit: config.apiRateLimit,
    wake: (locationId: string) => (services as { sync?: { wake?: (id: string) => void } }).sync?.wake?.(locationId),
    customFieldsChanged: (locationId: string, at: number) =>
      (services as { sync?: { customFieldsChanged?: (id: string, at: number) => void } }).sync?.customFieldsChanged?.(locationId, at),
  });
  registerInstallRoutes(app, { config, services, db: db.db });
  registerWebhookRoutes(app, {
    inbox: services.webhookInbox,
    clock: services.clock,
    webhookKey: services.webhookKey,
    appId: services.appId,
  });
  return app;
}
