// Tandem's REST API under /api/v1: an encapsulated plugin with zod validation and serialization
// (fastify-type-provider-zod, scoped here), its own OpenAPI document (@fastify/swagger, served at
// /api/v1/openapi.json), API-key authentication before anything else is read, and validation errors
// that name what is wrong in the API's own words (api-v1-issues.ts); bodies are JSON only (415
// otherwise), and a path answered under other methods says which (405 with Allow). Requests are
// rate-limited per location and failed authentications per client address (server/auth/api-rate-limit.ts).
// The routes live in api-v1-contacts.ts, api-v1-users.ts and api-v1-custom-fields.ts.
import swagger from '@fastify/swagger';
import type {
  FastifyBaseLogger,
  FastifyError,
  FastifyInstance,
  FastifyRequest,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';
import { createJsonSchemaTransform, createJsonSchemaTransformObject, serializerCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Clock } from '../clock.ts';
import { z } from 'zod';
import { AppError, errorBody, shownPath } from '../errors.ts';
import type { Db } from '../../db/client.ts';
import { authenticateApiKeyRequest, NotInstalledError, unauthorized, type ApiKeyTenant } from '../auth/api-key.ts';
import { API_RATE_LIMIT_DEFAULT, BAD_KEY_LIMIT, createApiLimits, type ApiRateLimit } from '../auth/api-rate-limit.ts';
import { apiValidatorCompiler, issuePath } from './api-v1-issues.ts';
import { registerApiContactRoutes } from './api-v1-contacts.ts';
import { API_BODY_LIMIT, apiSchemas } from './api-v1-schemas.ts';
import { registerApiCustomFieldRoutes } from './api-v1-custom-fields.ts';
import { registerApiUserRoutes } from './api-v1-users.ts';
import { tenant } from './tenant.ts';

export interface ApiV1Deps {
  db: Db;
  clock: Clock;
  /** Nudges the location's sync loop after a local contact write (optional: absent without sync). */
  wake?: (locationId: string) => void;
  /** Asks the location's loop to list its custom fields again at `at` (a write named one Tandem does not know). */
  customFieldsChanged?: (locationId: string, at: number) => void;
  /** The country to read phones without a +prefix in, when the contact has none (default 'US'). */
  defaultCountry?: (locationId: string) => string | undefined;
  /** Requests per location (config.apiRateLimit; default API_RATE_LIMIT_DEFAULT). */
  rateLimit?: ApiRateLimit;
}

export type ApiInstance = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, ZodTypeProvider>;

const tenants = new WeakMap<FastifyRequest, ApiKeyTenant>();

/**
 * An API error that carries more than its code and message, as properties of `error` beside them
 * (a 412's `currentVersion`): what a client acts on is a field, not a number in a sentence.
 */
export class ApiError extends AppError {
  constructor(
    status: number,
    code: string,
    message: string,
    readonly details: Record<string, unknown>,
  ) {
    super(status, code, message);
    this.name = 'ApiError';
  }
}

/** The request's location, established by its API key in onRequest. */
export function apiTenant(req: FastifyRequest): ApiKeyTenant {
  const t = tenants.get(req);
  if (!t) throw unauthorized();
  return t;
}

/**
 * Why a JSON body was refused: Fastify's parser refuses `__proto__` and `constructor.prototype`
 * keys in valid JSON too (prototype poisoning), and says "not valid JSON" either way.
 */
function jsonRefusal(text: string): string {
  try {
    JSON.parse(text);
    return 'the body has a "__proto__" or "constructor" / "prototype" key, which is refused (it could alter objects on the server).';
  } catch {
    return 'the body is not valid JSON.';
  }
}

export async function apiV1Plugin(api: FastifyInstance, deps: ApiV1Deps): Promise<void> {
  api.setValidatorCompiler(apiValidatorCompiler);
  const rateLimit = deps.rateLimit ?? API_RATE_LIMIT_DEFAULT;
  const limits = createApiLimits({ clock: deps.clock, limit: rateLimit });
  api.setSerializerCompiler(serializerCompiler);
  await api.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Tandem REST API',
        version: '1.0.0',
        description:
          `Tandem’s contact book and users, per HighLevel location. Authenticate with an API key created on Tandem’s panel (API keys tab): \`Authorization: Bearer tk_…\`. The key decides the location. Errors are \`{ "error": { "code", "message" } }\`; unknown properties are refused with 400. A location’s keys together may send ${rateLimit.burst} requests at once, then ${rateLimit.perSecond} a second: beyond that the answer is 429 \`rate_limited\` with Retry-After, and every answer carries RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset.`,
      },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'A Tandem API key, "tk_…".' } } },
      security: [{ apiKey: [] }],
      tags: [
        { name: 'contacts', description: 'The contact book; changes made here go to HighLevel as the Sync tab allows.' },
        { name: 'users', description: 'Users of the location: contact owners, paired with HighLevel users by email.' },
        { name: 'custom fields', description: 'The location’s contact custom fields, as HighLevel defines them: what `customFields` of a contact may hold.' },
      ],
    },
    transform: createJsonSchemaTransform({ schemaRegistry: apiSchemas, zodToJsonConfig }),
    transformObject: createJsonSchemaTransformObject({ schemaRegistry: apiSchemas, zodToJsonConfig }),
  });

  // JSON only. Fastify's defaults would also take text/plain (then refused as "expected object,
  // received string") and the root's formbody parser would take forms; both are 415 here. The
  // parser is Fastify's own (it refuses __proto__ / constructor.prototype), except that an empty
  // body is no body: an action that takes none may be sent Content-Type: application/json anyway.
  api.removeAllContentTypeParsers();
  const parseJson = api.getDefaultJsonParser('error', 'error');
  api.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    const text = body.toString();
    if (text === '') return done(null, undefined);
    parseJson(req, text, (err, value) => (err ? done(new AppError(400, 'invalid_request', `Invalid request: ${jsonRefusal(text)}`)) : done(null, value)));
  });

  api.setErrorHandler((err: FastifyError | ApiError, _req, reply) => {
    if (err instanceof ApiError) return reply.code(err.status).send({ error: { ...errorBody(err.code, err.message).error, ...err.details } });
    if (err.validation) return reply.code(400).send(errorBody('invalid_request', validationMessage(err)));
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply
        .code(413)
        .send(errorBody('payload_too_large', `The body is larger than ${API_BODY_LIMIT / (1024 * 1024)} MiB, the most this API takes. Send a smaller one: only the fields that change, or shorter values (a long custom field text, many tags).`));
    }
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return reply.code(415).send(errorBody('unsupported_media_type', 'Send the body as JSON, with Content-Type: application/json.'));
    }
    // Fastify's other 400s (a bad Content-Length, a malformed URL) are malformed input too: one code
    // for all of it here. The root handler (and its `bad_request`) serves the rest of Tandem.
    if (err.statusCode === 400) return reply.code(400).send(errorBody('invalid_request', `Invalid request: ${err.message}`));
    throw err;
  });

  // A route without a body schema (DELETE, the restore / deactivate / reactivate actions) takes no
  // body. Nothing or {} (what some clients always send) is fine; anything else, JSON null included
  // (as the README says), is refused like any unknown property, rather than accepted and ignored. Declaring an empty body schema instead would
  // make the OpenAPI document say these operations require a body. (Fastify does not read a GET's
  // body at all: HTTP gives it no meaning, and it never reaches a route.)
  api.addHook('preValidation', async (req) => {
    const body: unknown = req.body;
    if (req.routeOptions.schema?.body !== undefined || body === undefined) return;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new AppError(400, 'invalid_request', 'Invalid request: body: this request takes none (send nothing, or {}).');
    }
    const keys = Object.keys(body);
    if (keys.length > 0) throw new AppError(400, 'invalid_request', `Invalid request: ${unknownProperties(keys, 'body')}`);
  });

  const routeTable: { pattern: RegExp; methods: Set<string> }[] = [];
  api.addHook('onRoute', (route) => {
    route.bodyLimit ??= API_BODY_LIMIT;
    if (route.url !== ANY_OTHER_API_PATH) routeTable.push({ pattern: pathPattern(route.url), methods: new Set([route.method].flat()) });
  });
  // Before the body is parsed or validated: nothing about the request is read without a key, nor
  // (an address that sent too many bad keys) is the key itself. The limits count here, on the app
  // thread, where the key gives the location and req.ip is the client's (server/auth/api-rate-limit.ts).
  api.addHook('onRequest', async (req, reply) => {
    if (req.routeOptions.config.tenant !== 'apiKey') return;
    limits.admit(req, reply);
    let tenant: ApiKeyTenant;
    try {
      tenant = authenticateApiKeyRequest(req, deps);
    } catch (err) {
      if (err instanceof AppError && err.status === 401) {
        limits.refused(req);
        reply.header('www-authenticate', 'Bearer realm="tandem"');
      }
      // Still the location's key: a flood of them is limited like any other (a 429 once spent).
      if (err instanceof NotInstalledError) limits.spend(err.locationId, reply);
      throw err;
    }
    limits.spend(tenant.locationId, reply);
    tenants.set(req, tenant);
  });

  const typed = api.withTypeProvider<ZodTypeProvider>();
  registerApiContactRoutes(typed, deps);
  registerApiUserRoutes(typed, deps);
  registerApiCustomFieldRoutes(typed, deps);

  api.get('/api/v1/openapi.json', { ...tenant('public'), schema: { hide: true } }, async (_req, reply) => {
    reply.header('cache-control', 'no-cache');
    return withRateLimitHeaders(withoutUnusedSchemas(api.swagger() as OpenApiDocument), rateLimit);
  });

  // Fastify answers a known path under an unknown method with 404 "No route". Under /api/v1 that is
  // a 405 naming the methods that path has, and OPTIONS is a 204 naming them (no CORS headers: an
  // API key is not for browsers). The wildcard only matches what no route above does; it answers in
  // onRequest, before any body is read, and needs no key: the methods are those of the public
  // OpenAPI document.
  api.route({
    method: [...ALLOW_ORDER, 'OPTIONS'],
    url: ANY_OTHER_API_PATH,
    exposeHeadRoute: false,
    ...tenant('public'),
    schema: { hide: true },
    onRequest: async (req, reply) => {
      const path = req.url.split('?')[0]!;
      const allowed = new Set(routeTable.filter((r) => r.pattern.test(path)).flatMap((r) => [...r.methods]));
      if (allowed.has('GET')) allowed.add('HEAD');
      // A method the path has here means the router refused the request's path for another reason
      // (as it did an id over 100 characters, before buildApp lifted that limit): a 405 would name
      // the very method used. Not reachable today; a 404 rather than a self-contradiction.
      if (allowed.size === 0 || allowed.has(req.method)) return reply.callNotFound();
      const allow = `${ALLOW_ORDER.filter((m) => allowed.has(m)).join(', ')}, OPTIONS`;
      if (req.method === 'OPTIONS') return reply.code(204).header('allow', allow).send();
      return reply.code(405).header('allow', allow).send(errorBody('method_not_allowed', `${req.method} is not allowed on ${shownPath(path)}; use ${allow}.`));
    },
    handler: async () => {
      throw new AppError(500, 'internal_error', 'unreachable: answered in onRequest');
    },
  });
}

type OpenApiDocument = { components?: { schemas?: Record<string, unknown> } } & Record<string, unknown>;

/**
 * The document without the named schemas nothing refers to: the schema registry publishes an input
 * twin of every named schema ("ContactInput" of the Contact response, with its read-only fields
 * required), which no request uses and which would only mislead a client generator.
 */
function withoutUnusedSchemas(doc: OpenApiDocument): OpenApiDocument {
  const schemas = doc.components?.schemas;
  if (!schemas) return doc;
  const used = (name: string, within: unknown) => JSON.stringify(within).includes(`"#/components/schemas/${name}"`);
  const { components, ...rest } = doc;
  const kept = Object.fromEntries(Object.entries(schemas).filter(([name]) => used(name, rest) || Object.entries(schemas).some(([other, s]) => other !== name && used(name, s))));
  return { ...rest, components: { ...components, schemas: kept } };
}

/**
 * The document with what a 429 carries, which the schema transform cannot say (it keeps only a
 * response's description and body): Retry-After, the RateLimit headers, and this server's limit.
 */
function withRateLimitHeaders(doc: OpenApiDocument, limit: ApiRateLimit): OpenApiDocument {
  const seconds = (description: string) => ({ description, schema: { type: 'integer', minimum: 0 } });
  const headers = {
    'Retry-After': seconds('Seconds to wait before trying again.'),
    'RateLimit-Limit': seconds('The location’s burst: requests its keys may send at once.'),
    'RateLimit-Remaining': seconds('Requests the location’s keys may send now.'),
    'RateLimit-Reset': seconds('Seconds until the location’s allowance is full again.'),
  };
  const description = `Too many requests (\`rate_limited\`): the location’s keys sent more than ${limit.burst} at once or more than ${limit.perSecond} a second after that, or this address sent too many unknown or revoked keys (${BAD_KEY_LIMIT.capacity}, then one every ${BAD_KEY_LIMIT.windowMs / BAD_KEY_LIMIT.capacity / 1000} seconds). Wait as Retry-After says. Every answer to a valid key carries the RateLimit headers.`;
  type Operation = { responses?: Record<string, object> };
  const withHeaders = (op: Operation): Operation =>
    op.responses?.['429'] ? { ...op, responses: { ...op.responses, 429: { ...op.responses['429'], description, headers } } } : op;
  // A copy: the document @fastify/swagger hands out is its cached one.
  const paths = Object.entries((doc.paths ?? {}) as Record<string, Record<string, Operation>>).map(
    ([path, operations]) => [path, Object.fromEntries(Object.entries(operations).map(([method, op]) => [method, withHeaders(op)]))] as const,
  );
  return { ...doc, paths: Object.fromEntries(paths) };
}

const ANY_OTHER_API_PATH = '/api/v1/*';
/** The methods a 405 may name, in the order its Allow header lists them. */
const ALLOW_ORDER = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

/** "/api/v1/contacts/:id" → a pattern matching "/api/v1/contacts/c_123" (one segment per parameter). */
function pathPattern(url: string): RegExp {
  const source = url
    .split('/')
    .map((segment) => (segment.startsWith(':') ? '[^/]+' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${source}$`);
}

// The schema transform reads metadata only from apiSchemas, so the descriptions written with
// .describe() (kept in zod's global registry) never reached the document: copy them across. This
// replaces the library's default override, whose rewrites (dates, undefined, empty union branches)
// none of these schemas need: the document is otherwise the same as without it.
// The same for readOnly (the read-only properties a PATCH body may carry back unchanged).
const zodToJsonConfig = {
  override: (ctx: { zodSchema: z.core.$ZodType; jsonSchema: { description?: string; readOnly?: boolean } }) => {
    const meta = z.globalRegistry.get(ctx.zodSchema);
    if (meta?.description !== undefined && ctx.jsonSchema.description === undefined) ctx.jsonSchema.description = meta.description;
    if (meta?.readOnly === true) ctx.jsonSchema.readOnly = true;
  },
};

/** "Invalid request: unknown properties "a", "b" in body; body.email: must be an email address; body.tags[0]: must not be empty". */
export function validationMessage(err: FastifyError): string {
  const where = err.validationContext ?? 'request';
  const parts = (err.validation ?? []).map((issue) => {
    const segments = issue.params.path;
    const path = Array.isArray(segments) ? issuePath(segments) : issue.instancePath.replace(/^\//, '').replaceAll('/', '.');
    const at = path ? `${where}${path.startsWith('[') ? '' : '.'}${path}` : where;
    if (issue.keyword === 'unrecognized_keys') return unknownProperties((issue.params as { keys?: string[] }).keys ?? [], at);
    return `${at}: ${issue.message}`;
  });
  return `Invalid request: ${parts.join('; ') || err.message}`;
}

/** 'unknown properties "a", "b" in body' */
function unknownProperties(keys: string[], at: string): string {
  return `unknown ${keys.length === 1 ? 'property' : 'properties'} ${keys.map((k) => `"${k}"`).join(', ')} in ${at}`;
}
