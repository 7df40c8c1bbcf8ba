// Builds the emulator's HTTP server: HighLevel's public API, its OAuth pages, the emulated
// HighLevel UI with a custom page, and the /__emulator control API.
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import formbody from '@fastify/formbody';
import { Emulator, type EmulatorOptions } from './emulator.ts';
import { authenticate, installHttpBasics, type Access, type AuthContext } from './http.ts';
import { RateLimiter } from './rate-limit.ts';
import { registerOauthRoutes } from './routes/oauth.ts';
import { registerContactsRoutes } from './routes/contacts.ts';
import { registerSearchRoutes } from './routes/search.ts';
import { registerUsersRoutes } from './routes/users.ts';
import { registerLocationsRoutes } from './routes/locations.ts';
import { registerCustomFieldsRoutes } from './routes/custom-fields.ts';
import { registerControlRoutes } from './routes/control.ts';
import { registerUiRoutes } from './routes/ui.ts';

export interface RouteContext {
  emu: Emulator;
  limiter: RateLimiter;
  /** Authenticates and rate-limits a public API request; throws a HighLevel-shaped error. */
  auth(req: FastifyRequest, reply: FastifyReply, spec: { scopes: string[]; access: Access }): AuthContext;
}

export interface RunningEmulator {
  emu: Emulator;
  app: FastifyInstance;
  url: string;
  close(): Promise<void>;
}

export function buildEmulatorApp(emu: Emulator, opts: { logger?: boolean } = {}): FastifyInstance {
  const app = Fastify({ logger: opts.logger ?? false, bodyLimit: 1024 * 1024, forceCloseConnections: true });
  void app.register(formbody);
  // HighLevel accepts an empty body sent as application/json: the official SDK sends exactly that
  // on every DELETE (its axios instance always sets Content-Type). Fastify's default parser 400s it.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    if (body === '') return done(null, undefined);
    try {
      done(null, JSON.parse(body as string));
    } catch (err) {
      (err as { statusCode?: number }).statusCode = 400;
      done(err as Error, undefined);
    }
  });
  const limiter = new RateLimiter();
  const ctx: RouteContext = {
    emu,
    limiter,
    auth: (req, reply, spec) => authenticate(emu, limiter, req, reply, spec),
  };
  installHttpBasics(app, emu);
  registerOauthRoutes(app, ctx);
  registerContactsRoutes(app, ctx);
  registerSearchRoutes(app, ctx);
  registerUsersRoutes(app, ctx);
  registerLocationsRoutes(app, ctx);
  registerCustomFieldsRoutes(app, ctx);
  registerControlRoutes(app, ctx);
  registerUiRoutes(app, ctx);
  return app;
}

/** Starts an emulator on `port` (0 = any free port) and resolves once it listens. */
export async function startEmulator(
  options: EmulatorOptions & { port?: number; host?: string; logger?: boolean } = {},
): Promise<RunningEmulator> {
  const emu = new Emulator(options);
  const app = buildEmulatorApp(emu, { logger: options.logger });
  const host = options.host ?? '127.0.0.1';
  await app.listen({ port: options.port ?? 0, host });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  emu.baseUrl = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
  return {
    emu,
    app,
    url: emu.baseUrl,
    async close() {
      emu.close();
      await app.close();
    },
  };
}
