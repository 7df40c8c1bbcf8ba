// The panel's API keys: everyone signed in may list the location's keys (never the keys
// themselves); admins create them (the key is in that one answer and nowhere else, ever) and
// revoke them. The location is the session's; the session is checked before the body is read.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Clock } from '../clock.ts';
import { AppError } from '../errors.ts';
import type { Db } from '../../db/client.ts';
import { countActiveApiKeys, createApiKey, listApiKeys, revokeApiKey, type ApiKeyInfo } from '../../db/api-keys.ts';
import { requireAdmin, requireSession } from '../auth/session.ts';
import { tenant } from './tenant.ts';

/** Enough for every integration a location runs; more usually means keys are not being revoked. */
export const MAX_ACTIVE_KEYS = 25;

const createBody = z.strictObject({
  name: z.string({ error: (issue) => (issue.input === undefined ? 'name is required' : 'name must be text') }).trim().min(1, 'name is required').max(80, 'name is at most 80 characters'),
});

export interface ApiKeyView {
  id: string;
  name: string;
  /** The key's first characters, e.g. "tk_4fQ2xZ9", to tell keys apart. */
  prefix: string;
  createdAt: string;
  createdBy: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

export interface ApiKeyCreated {
  apiKey: ApiKeyView;
  /** The key itself: shown this once; Tandem keeps only its hash. */
  key: string;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function apiKeyView(k: ApiKeyInfo): ApiKeyView {
  return { id: k.id, name: k.name, prefix: k.prefix, createdAt: iso(k.createdAt)!, createdBy: k.createdBy, lastUsedAt: iso(k.lastUsedAt), revokedAt: iso(k.revokedAt) };
}

export function registerPanelApiKeyRoutes(app: FastifyInstance, deps: { db: Db; clock: Clock }): void {
  const { db, clock } = deps;

  app.get('/api/panel/api-keys', { ...tenant('session') }, async (req, reply): Promise<{ keys: ApiKeyView[] }> => {
    const session = await requireSession(req);
    reply.header('cache-control', 'no-store');
    return { keys: listApiKeys(db, session.locationId).map(apiKeyView) };
  });

  app.post('/api/panel/api-keys', { ...tenant('session'), bodyLimit: 4096 }, async (req, reply): Promise<ApiKeyCreated> => {
    const session = await requireSession(req);
    requireAdmin(session, 'manage API keys');
    const body = createBody.safeParse(req.body ?? {});
    if (!body.success) {
      const unknown = body.error.issues.flatMap((i) => (i.code === 'unrecognized_keys' ? i.keys : []));
      const message = unknown.length ? `Unknown properties: ${unknown.join(', ')}.` : (body.error.issues[0]?.message ?? 'Invalid request.');
      throw new AppError(400, 'invalid_request', message);
    }
    if (countActiveApiKeys(db, session.locationId) >= MAX_ACTIVE_KEYS) {
      throw new AppError(409, 'too_many_keys', `This sub-account already has ${MAX_ACTIVE_KEYS} active API keys. Revoke unused ones first.`);
    }
    const created = createApiKey(db, { locationId: session.locationId, name: body.data.name, createdBy: session.name, now: clock.now() });
    reply.code(201).header('cache-control', 'no-store');
    return { apiKey: apiKeyView(created.apiKey), key: created.key };
  });

  app.delete('/api/panel/api-keys/:id', { ...tenant('session') }, async (req, reply): Promise<{ apiKey: ApiKeyView }> => {
    const session = await requireSession(req);
    requireAdmin(session, 'manage API keys');
    const { id } = req.params as { id: string };
    const revoked = revokeApiKey(db, { locationId: session.locationId, id, now: clock.now() });
    if (!revoked) throw new AppError(404, 'not_found', 'No API key with this id in this sub-account.');
    reply.header('cache-control', 'no-store');
    return { apiKey: apiKeyView(revoked) };
  });
}
