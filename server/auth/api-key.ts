// Authentication of Tandem's REST API: `Authorization: Bearer tk_…`, a per-location key an admin
// created on the panel. The tenant (location) is the key's and nothing else. Every failure of the
// key itself is the same 401, so a caller learns nothing about why. A good key of a location
// Tandem was uninstalled from gets its own 403: whoever holds it learns only what the location's
// admins see in HighLevel, and a client can tell "reinstall" from "replace the key".
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

export const API_KEY_NOT_INSTALLED = {
  code: 'not_installed',
  message: 'Tandem is not installed on this location in HighLevel; its API keys work again once Tandem is reinstalled there.',
} as const;

/** A good key of a location Tandem was uninstalled from: its location's rate limit still applies (server/auth/api-rate-limit.ts). */
export class NotInstalledError extends AppError {
  constructor(readonly locationId: string) {
    super(403, API_KEY_NOT_INSTALLED.code, API_KEY_NOT_INSTALLED.message);
  }
}

export function unauthorized(): AppError {
  return new AppError(401, API_KEY_UNAUTHORIZED.code, API_KEY_UNAUTHORIZED.message);
}

export interface ApiKeyTenant {
  keyId: string;
  locationId: string;
}

/**
 * The request's key and location, or the uniform 401. A key of a location Tandem was uninstalled
 * from stops working (as panel sessions do) with a 403 saying so; reinstalling brings it back.
 */
export function authenticateApiKeyRequest(req: FastifyRequest, deps: { db: Db; clock: Clock }): ApiKeyTenant {
  const header = req.headers.authorization;
  const match = typeof header === 'string' ? /^Bearer\s+(\S{1,200})\s*$/i.exec(header) : null;
  if (!match?.[1]) throw unauthorized();
  const key = authenticateApiKey(deps.db, match[1], deps.clock.now());
  if (!key) throw unauthorized();
  const installation = getInstallation(deps.db, key.locationId);
  if (!installation || installation.status === 'uninstalled') throw new NotInstalledError(key.locationId);
  return { keyId: key.id, locationId: key.locationId };
}
