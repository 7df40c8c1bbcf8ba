// Authentication of Tandem's REST API: `Authorization: Bearer tk_…`, a per-location key an admin
// created on the panel. The tenant (location) is the key's and nothing else. Every failure is the
// same 401, so a caller learns nothing about why.
import type { FastifyRequest } from 'fastify';
import type { Clock } from '../clock.ts';
import { AppError } from '../errors.ts';
import type { Db } from '../../db/client.ts';
import { authenticateApiKey } from '../../db/api-keys.ts';
import { getInstallation } from '../../db/installations.ts';

export const API_KEY_UNAUTHORIZED = {
  code: 'unauthorized',
  message: 'Missing, unknown or revoked API key. Send a key created on Tandem’s panel as "Authorization: Bearer tk_…".',
} as const;

export function unauthorized(): AppError {
  return new AppError(401, API_KEY_UNAUTHORIZED.code, API_KEY_UNAUTHORIZED.message);
}

export interface ApiKeyTenant {
  keyId: string;
  locationId: string;
}

/**
 * The request's key and location, or the uniform 401. A key of a location Tandem was uninstalled
 * from stops working (as panel sessions do); reinstalling brings it back.
 */
export function authenticateApiKeyRequest(req: FastifyRequest, deps: { db: Db; clock: Clock }): ApiKeyTenant {
  const header = req.headers.authorization;
  const match = typeof header === 'string' ? /^Bearer\s+(\S{1,200})\s*$/i.exec(header) : null;
  if (!match?.[1]) throw unauthorized();
  const key = authenticateApiKey(deps.db, match[1], deps.clock.now());
  if (!key) throw unauthorized();
  const installation = getInstallation(deps.db, key.locationId);
  if (!installation || installation.status === 'uninstalled') throw unauthorized();
  return { keyId: key.id, locationId: key.locationId };
}
