// OAuth token issue, rotation and revocation. Tokens look like HighLevel's JWTs (CONTRACT §1.5) but
// the signature part is random bytes: apps must treat them as opaque, and the emulator only ever
// looks them up in its world.
import { randomBytes } from 'node:crypto';
import type { Emulator } from './emulator.ts';
import type { AccessToken, AuthCode, MarketplaceApp, RefreshToken } from './state.ts';

export interface Grant {
  authClass: 'Location' | 'Company';
  companyId: string;
  locationId?: string;
  /** Company grants: the locations the agency install approved. */
  approvedLocations?: string[];
  scopes: string[];
  userId: string;
}

export interface IssuedTokens {
  access: AccessToken;
  refresh: RefreshToken;
}

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** A JWT-shaped token carrying the claims third parties decode from HighLevel's tokens. */
function jwtLike(app: MarketplaceApp, grant: Grant, iatMs: number, expMs: number, extra: Record<string, unknown> = {}): string {
  const authClassId = grant.authClass === 'Location' ? grant.locationId! : grant.companyId;
  const claims = {
    authClass: grant.authClass,
    authClassId,
    primaryAuthClassId: authClassId,
    source: 'INTEGRATION',
    sourceId: app.clientId,
    channel: 'OAUTH',
    oauthMeta: { scopes: grant.scopes, client: app.appId, versionId: app.versionId, clientKey: app.clientId },
    ...extra,
    iat: Math.floor(iatMs / 1000),
    exp: Math.floor(expMs / 1000),
  };
  return `${base64url({ alg: 'RS256', typ: 'JWT' })}.${base64url(claims)}.${randomBytes(256).toString('base64url')}`;
}

let issuedSinceSweep = 0;

/** Issues an access token and a single-use refresh token for `grant` and stores both. */
export function issueTokens(emu: Emulator, app: MarketplaceApp, grant: Grant): IssuedTokens {
  const now = emu.now();
  const accessExpires = now + emu.config.accessTokenTtlSec * 1000;
  const refreshExpires = now + emu.config.refreshTokenTtlSec * 1000;
  const base = {
    appId: app.appId,
    authClass: grant.authClass,
    companyId: grant.companyId,
    ...(grant.locationId ? { locationId: grant.locationId } : {}),
    scopes: [...grant.scopes],
    userId: grant.userId,
    revoked: false,
  };
  const access: AccessToken = {
    ...base,
    token: jwtLike(app, grant, now, accessExpires),
    kind: 'oauth',
    expiresAt: accessExpires,
  };
  const refresh: RefreshToken = {
    ...base,
    token: jwtLike(app, grant, now, refreshExpires, { tokenType: 'refresh' }),
    approvedLocations: [...(grant.approvedLocations ?? [])],
    expiresAt: refreshExpires,
    used: false,
  };
  if (++issuedSinceSweep >= 200) {
    issuedSinceSweep = 0;
    sweepTokens(emu);
  }
  emu.world.accessTokens[access.token] = access;
  emu.world.refreshTokens[refresh.token] = refresh;
  emu.changed();
  return { access, refresh };
}

/**
 * Drops dead OAuth tokens so long benchmarks do not grow the world without bound. A used refresh
 * token that is swept answers exactly like a used one ("Invalid grant"), so nothing observable changes.
 */
export function sweepTokens(emu: Emulator): void {
  const now = emu.now();
  for (const [key, t] of Object.entries(emu.world.accessTokens)) {
    if (t.kind === 'oauth' && (t.revoked || t.expiresAt <= now)) delete emu.world.accessTokens[key];
  }
  for (const [key, t] of Object.entries(emu.world.refreshTokens)) {
    if (t.used || t.revoked || t.expiresAt <= now) delete emu.world.refreshTokens[key];
  }
}

/**
 * Revokes every OAuth token of an app for a location, or for a company and all its locations
 * (uninstall). Returns how many tokens died.
 */
export function revokeTokens(emu: Emulator, appId: string, scope: { locationId?: string; companyId?: string }): number {
  let count = 0;
  const hit = (t: { appId?: string; locationId?: string; companyId: string }) =>
    t.appId === appId && (scope.locationId ? t.locationId === scope.locationId : t.companyId === scope.companyId);
  for (const t of Object.values(emu.world.accessTokens)) {
    if (t.kind === 'oauth' && !t.revoked && hit(t)) {
      t.revoked = true;
      count++;
    }
  }
  for (const t of Object.values(emu.world.refreshTokens)) {
    if (!t.revoked && hit(t)) {
      t.revoked = true;
      count++;
    }
  }
  if (count) emu.changed();
  return count;
}

/** A single-use authorization code (40 lowercase hex, CONTRACT §1.1) for a consent just given. */
export function createAuthCode(emu: Emulator, input: Omit<AuthCode, 'code' | 'expiresAt' | 'used'>): AuthCode {
  const now = emu.now();
  for (const [key, c] of Object.entries(emu.world.authCodes)) {
    if (c.used || c.expiresAt <= now) delete emu.world.authCodes[key];
  }
  const code: AuthCode = { ...input, code: randomBytes(20).toString('hex'), expiresAt: now + emu.config.authCodeTtlSec * 1000, used: false };
  emu.world.authCodes[code.code] = code;
  emu.changed();
  return code;
}
