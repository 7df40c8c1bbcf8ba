// What every HighLevel API response shares: NestJS-style error envelopes with a traceId, the
// Version header check, bearer-token authentication, scopes, location access and rate limits
// (CONTRACT §2, §6, §9.1-2, §9.8), plus the emulator's fault injection and request log.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Emulator } from './emulator.ts';
import { traceId } from './ids.ts';
import { RateLimiter } from './rate-limit.ts';
import type { AccessToken } from './state.ts';

export const ACCEPTED_VERSIONS = new Set(['2021-04-15', '2021-07-28', '2023-02-21', 'v3']);

const ERROR_NAMES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
};

export class HttpFailure extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
  ) {
    super(typeof body.message === 'string' ? body.message : `HTTP ${status}`);
  }
}

/** Throws a HighLevel-shaped error: `{ statusCode, message, error, traceId, ...extra }`. */
export function fail(status: number, message: string | string[], extra: Record<string, unknown> = {}): never {
  throw new HttpFailure(status, { statusCode: status, message, error: ERROR_NAMES[status] ?? 'Error', ...extra });
}

/** 422 with the array of validation messages HighLevel's class-validator produces. */
export function unprocessable(messages: string[]): never {
  fail(422, messages);
}

/** Sends a success body with a traceId, as every HighLevel response carries one. */
export function ok(reply: FastifyReply, status: number, body: Record<string, unknown>): FastifyReply {
  return reply.code(status).send({ ...body, traceId: traceId() });
}

export type Access = 'location' | 'company' | 'both';

export interface AuthContext {
  token: AccessToken;
  /** The location the token stands for (Location tokens and private integration tokens). */
  locationId?: string;
  companyId: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    auth?: AuthContext;
    faultRule?: number;
    dropAfterHandling?: boolean;
    logged?: boolean;
  }
}

const AUTH_CLASS_MESSAGE =
  'This authClass type is not allowed to access this scope. Please reach out to the Platform team to get it added.';

/**
 * Authenticates the bearer token, counts the request against the token's rate budget and checks
 * the scope and the token type. Order: token → rate limit → scope → auth class.
 */
export function authenticate(
  emu: Emulator,
  limiter: RateLimiter,
  req: FastifyRequest,
  reply: FastifyReply,
  spec: { scopes: string[]; access: Access },
): AuthContext {
  const token = bearerToken(emu, req);
  if (!token) fail(401, 'Invalid JWT');

  const resource = token.locationId ?? token.companyId;
  const bucket = token.kind === 'private' ? `pit:${resource}` : `${token.appId}:${resource}`;
  const decision = limiter.take(bucket, emu.now(), emu.config.rateLimit);
  reply.headers(decision.headers);
  // Guess (CONTRACT §10): the 429 body follows the NestJS envelope; no Retry-After header.
  if (!decision.allowed) fail(429, 'Too Many Requests');

  if (token.kind === 'oauth' && !spec.scopes.some((s) => token.scopes.includes(s))) {
    fail(401, 'The token is not authorized for this scope.');
  }
  if (spec.access === 'location' && token.authClass !== 'Location') fail(401, AUTH_CLASS_MESSAGE);
  if (spec.access === 'company' && token.authClass !== 'Company') fail(401, AUTH_CLASS_MESSAGE);

  const ctx: AuthContext = { token, locationId: token.locationId, companyId: token.companyId };
  req.auth = ctx;
  return ctx;
}

/** 403 unless the token may act on `locationId` (a Company token may act on its company's locations). */
export function requireLocation(emu: Emulator, ctx: AuthContext, locationId: string | undefined): void {
  if (!locationId) return;
  if (ctx.token.authClass === 'Location') {
    if (ctx.locationId !== locationId) fail(403, 'The token does not have access to this location.');
    return;
  }
  const location = emu.world.locations[locationId];
  if (!location || location.companyId !== ctx.companyId) fail(403, 'The token does not have access to this location.');
}

/** Paths the Version header rule does not apply to. */
function exemptFromVersion(path: string): boolean {
  return (
    path === '/oauth/token' ||
    path.startsWith('/__emulator') ||
    path.startsWith('/oauth/chooselocation') ||
    path.startsWith('/v2/oauth/chooselocation') ||
    path.startsWith('/v2/location/') ||
    path === '/' ||
    path.startsWith('/favicon')
  );
}

/** The request's bearer token while it is valid (known, not revoked, not expired); nothing is counted or checked beyond that. */
function bearerToken(emu: Emulator, req: FastifyRequest): AccessToken | undefined {
  const header = req.headers.authorization;
  const raw = typeof header === 'string' && /^bearer /i.test(header) ? header.slice(7).trim() : '';
  const token = raw ? emu.world.accessTokens[raw] : undefined;
  return token && !token.revoked && token.expiresAt > emu.now() ? token : undefined;
}

/**
 * The location a request is of, for location-scoped faults and the request log: the one it names
 * (query, body or path), else the one its token stands for, else the one of the contact it names (a
 * Company token). Read from the request itself, not from req.auth alone: the fault hook runs before
 * a route's handler authenticates, and a faulted request never reaches it (QA: a fault for a
 * location never matched GET or PUT /contacts/:id, and faulted requests were logged without one).
 */
function locationOf(emu: Emulator, req: FastifyRequest): string | undefined {
  const named = [req.query, req.body, req.params].map((part) => {
    const value = part && typeof part === 'object' ? (part as Record<string, unknown>).locationId : undefined;
    return typeof value === 'string' ? value : undefined;
  });
  const found = named.find((id) => id !== undefined) ?? (req.auth?.token ?? bearerToken(emu, req))?.locationId;
  if (found) return found;
  const contactId = (req.params as Record<string, unknown> | undefined)?.contactId;
  return typeof contactId === 'string' ? (emu.contact(contactId)?.locationId ?? undefined) : undefined;
}

/** Installs the shared hooks: Version check, fault rules, error rendering and the request log. */
export function installHttpBasics(app: FastifyInstance, emu: Emulator): void {
  app.addHook('onRequest', async (req) => {
    const path = req.url.split('?')[0]!;
    if (exemptFromVersion(path)) return;
    const version = req.headers.version;
    if (version === undefined) fail(401, 'version header was not found.');
    if (typeof version !== 'string' || !ACCEPTED_VERSIONS.has(version)) fail(401, 'version header is invalid');
  });

  app.addHook('preHandler', async (req, reply) => {
    const path = req.url.split('?')[0]!;
    if (path.startsWith('/__emulator')) return;
    const rule = emu.takeFault(req.method, path, locationOf(emu, req));
    if (!rule) return;
    req.faultRule = rule.id;
    if (rule.delayMs) {
      // Stop waiting when the client gives up, so an abandoned request never holds close() open,
      // or when the faults are cleared, so a test can hold a request for as long as it needs.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, rule.delayMs);
        req.raw.socket.once('close', done);
        emu.delayed.set(done, rule.id);
        function done() {
          clearTimeout(timer);
          req.raw.socket.off('close', done);
          emu.delayed.delete(done);
          resolve();
        }
      });
      if (req.raw.socket.destroyed) return reply.hijack();
    }
    if (rule.drop) {
      logOnce(emu, req, 0, reply.elapsedTime);
      req.raw.socket.destroy();
      return reply.hijack();
    }
    if (rule.dropAfterHandling) {
      req.dropAfterHandling = true;
      return;
    }
    if (rule.status) {
      reply.code(rule.status).headers(rule.headers ?? {});
      return reply.send(rule.body ?? { statusCode: rule.status, message: ERROR_NAMES[rule.status] ?? 'Error' });
    }
  });

  app.addHook('onSend', async (req, reply, payload) => {
    if (req.dropAfterHandling) {
      logOnce(emu, req, 0, reply.elapsedTime);
      reply.raw.socket?.destroy();
    }
    return payload;
  });

  app.setErrorHandler((err, req, reply) => {
    if (err instanceof HttpFailure) {
      return reply.code(err.status).send({ ...err.body, traceId: traceId() });
    }
    const e = err as { statusCode?: number; code?: string; message: string };
    if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || e.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || e.statusCode === 400) {
      return reply.code(400).send({ statusCode: 400, message: e.message, error: 'Bad Request', traceId: traceId() });
    }
    if (e.statusCode === 413) {
      return reply.code(413).send({ statusCode: 413, message: 'Payload Too Large', error: 'Payload Too Large', traceId: traceId() });
    }
    req.log.error({ err }, 'emulator handler failed');
    return reply.code(500).send({ statusCode: 500, message: 'Internal server error', traceId: traceId() });
  });

  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send({ statusCode: 404, message: `Cannot ${req.method} ${req.url.split('?')[0]}`, error: 'Not Found' });
  });

  app.addHook('onResponse', async (req, reply) => {
    logOnce(emu, req, reply.statusCode, reply.elapsedTime);
  });
}

/**
 * Records a request in the log once. Dropped connections are logged too (status 0), so a test
 * or benchmark can see that a request reached the emulator even when its client saw no answer.
 */
function logOnce(emu: Emulator, req: FastifyRequest, status: number, elapsedMs: number): void {
  const path = req.url.split('?')[0]!;
  if (path.startsWith('/__emulator') || req.logged) return;
  req.logged = true;
  // A request answered before its handler authenticated (a fault, a drop) is logged as its token's all the same.
  const token = req.auth?.token ?? bearerToken(emu, req);
  emu.logRequest({
    at: new Date(emu.now()).toISOString(),
    method: req.method,
    path,
    query: (req.query ?? {}) as Record<string, unknown>,
    status,
    locationId: locationOf(emu, req),
    companyId: token?.companyId,
    appId: token?.appId,
    tokenKind: token?.kind,
    durationMs: Math.round(elapsedMs * 100) / 100,
    ...(req.faultRule ? { fault: req.faultRule } : {}),
  });
}

/** Strips keys whose value is undefined or null: HighLevel's documents are sparse. */
export function sparse<T extends Record<string, unknown>>(doc: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(doc)) if (v !== undefined && v !== null) out[k] = v;
  return out as T;
}
