// Tandem's HTTP application: one Fastify instance with the error handler and every route
// registered explicitly, so this file lists everything Tandem answers.
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import formbody from '@fastify/formbody';
import type { Config } from './config.ts';
import { systemClock, type Clock } from './clock.ts';
import type { Database } from '../db/client.ts';
import { loggerOptions } from './log.ts';
import { installErrorHandlers } from './errors.ts';
import { registerHealthRoutes } from './routes/health.ts';
import { registerPanelRoutes } from './routes/panel.ts';

export interface AppDeps {
  config: Config;
  db: Database;
  /** A ready logger, or false for none; default: pino with Tandem's options (server/log.ts). */
  logger?: FastifyBaseLogger | false;
  /** Where the built panel lives (default dist/web). */
  panelDir?: string;
  /** Injected time (default: the system clock). */
  clock?: Clock;
}

export function buildApp(deps: AppDeps): FastifyInstance {
  const { config, db } = deps;
  const clock = deps.clock ?? systemClock;
  void clock;
  const app: FastifyInstance =
    deps.logger === undefined
      ? Fastify({ logger: loggerOptions(config) })
      : deps.logger === false
        ? Fastify({ logger: false })
        : Fastify({ loggerInstance: deps.logger });

  installErrorHandlers(app);
  // HighLevel's OAuth and install endpoints post forms.
  void app.register(formbody);

  // Security headers belong here, before any route: helmet with a CSP whose frame-ancestors lets
  // only HighLevel (and the agency's white-label domain) frame /panel/, and nothing else be framed.

  registerHealthRoutes(app, { db });
  registerPanelRoutes(app, { dir: deps.panelDir });
  return app;
}
