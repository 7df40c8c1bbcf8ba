// Tandem's REST API under /api/v1: an encapsulated plugin with zod validation and serialization
// (fastify-type-provider-zod, scoped here), its own OpenAPI document (@fastify/swagger, served at
// /api/v1/openapi.json), API-key authentication before anything else is read, and validation errors
// that name what is wrong. The routes live in api-v1-contacts.ts and api-v1-users.ts.
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
import { createJsonSchemaTransform, createJsonSchemaTransformObject, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Clock } from '../clock.ts';
import { errorBody } from '../errors.ts';
import type { Db } from '../../db/client.ts';
import { authenticateApiKeyRequest, unauthorized, type ApiKeyTenant } from '../auth/api-key.ts';
import { registerApiContactRoutes } from './api-v1-contacts.ts';
import { apiSchemas } from './api-v1-schemas.ts';
import { registerApiUserRoutes } from './api-v1-users.ts';
import { tenant } from './tenant.ts';

/** Bodies above this are refused with 413; a contact is a few KiB at most. */
export const API_BODY_LIMIT = 64 * 1024;

export interface ApiV1Deps {
  db: Db;
  clock: Clock;
  /** Nudges the location's sync loop after a local contact write (optional: absent without sync). */
  wake?: (locationId: string) => void;
  /** The country to read phones without a +prefix in, when the contact has none (default 'US'). */
  defaultCountry?: (locationId: string) => string | undefined;
}

export type ApiInstance = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, ZodTypeProvider>;

const tenants = new WeakMap<FastifyRequest, ApiKeyTenant>();

/** The request's location, established by its API key in onRequest. */
export function apiTenant(req: FastifyRequest): ApiKeyTenant {
  const t = tenants.get(req);
  if (!t) throw unauthorized();
  return t;
}

export async function apiV1Plugin(api: FastifyInstance, deps: ApiV1Deps): Promise<void> {
  api.setValidatorCompiler(validatorCompiler);
  api.setSerializerCompiler(serializerCompiler);
  await api.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Tandem REST API',
        version: '1.0.0',
        description:
          'Tandem’s contact book and users, per HighLevel location. Authenticate with an API key created on Tandem’s panel (API keys tab): `Authorization: Bearer tk_…`. The key decides the location. Errors are `{ "error": { "code", "message" } }`; unknown properties are refused with 400.',
      },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'A Tandem API key, "tk_…".' } } },
      security: [{ apiKey: [] }],
      tags: [
        { name: 'contacts', description: 'The contact book; changes made here go to HighLevel as the Sync tab allows.' },
        { name: 'users', description: 'Users of the location: contact owners, paired with HighLevel users by email.' },
      ],
    },
    transform: createJsonSchemaTransform({ schemaRegistry: apiSchemas }),
    transformObject: createJsonSchemaTransformObject({ schemaRegistry: apiSchemas }),
  });

  api.setErrorHandler((err: FastifyError, _req, reply) => {
    if (!err.validation) throw err;
    return reply.code(400).send(errorBody('invalid_request', validationMessage(err)));
  });
  api.addHook('onRoute', (route) => {
    route.bodyLimit ??= API_BODY_LIMIT;
  });
  // Before the body is parsed or validated: nothing about the request is read without a key.
  api.addHook('onRequest', async (req, reply) => {
    if (req.routeOptions.config.tenant !== 'apiKey') return;
    try {
      tenants.set(req, authenticateApiKeyRequest(req, deps));
    } catch (err) {
      reply.header('www-authenticate', 'Bearer realm="tandem"');
      throw err;
    }
  });

  const typed = api.withTypeProvider<ZodTypeProvider>();
  registerApiContactRoutes(typed, deps);
  registerApiUserRoutes(typed, deps);

  api.get('/api/v1/openapi.json', { ...tenant('public'), schema: { hide: true } }, async (_req, reply) => {
    reply.header('cache-control', 'no-cache');
    return api.swagger();
  });
}

/** "Invalid request: unknown properties "a", "b" in body; body.email: must be an email address". */
export function validationMessage(err: FastifyError): string {
  const where = err.validationContext ?? 'request';
  const parts = (err.validation ?? []).map((issue) => {
    const path = issue.instancePath.replace(/^\//, '').replaceAll('/', '.');
    const at = path ? `${where}.${path}` : where;
    if (issue.keyword === 'unrecognized_keys') {
      const keys = (issue.params as { keys?: string[] }).keys ?? [];
      return `unknown ${keys.length === 1 ? 'property' : 'properties'} ${keys.map((k) => `"${k}"`).join(', ')} in ${at}`;
    }
    return `${at}: ${issue.message}`;
  });
  return `Invalid request: ${parts.join('; ') || err.message}`;
}
