// OAuth endpoints of the API host (CONTRACT §1.3-1.7): POST /oauth/token (authorization_code and
// single-use refresh_token grants), POST /oauth/locationToken and GET /oauth/installedLocations.
// Error texts follow the v3 spec's examples with snake_case parameter names, in the usual
// `{ statusCode, message, error, traceId }` envelope (guess for v2, CONTRACT §10).
import type { FastifyInstance } from 'fastify';
import type { Emulator } from '../emulator.ts';
import { fail, ok, unprocessable } from '../http.ts';
import { companyInstallation, isInstalledOn } from '../installs.ts';
import { issueTokens, type Grant, type IssuedTokens } from '../tokens.ts';
import type { MarketplaceApp, RefreshToken } from '../state.ts';
import type { RouteContext } from '../server.ts';
import { registerConsentRoutes } from './oauth-consent.ts';

type Body = Record<string, unknown>;

const INVALID_REFRESH = 'Invalid grant: refresh token is invalid';
const INVALID_CODE = 'Invalid grant: authorization code is invalid';

function param(body: Body, name: string): string | undefined {
  const v = body[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function required(body: Body, name: string): string {
  return param(body, name) ?? fail(400, `Missing parameter: ${name}`);
}

function tokenBody(emu: Emulator, issued: IssuedTokens, flags: { isBulkInstallation: boolean; installToFutureLocations?: boolean; approveAllLocations?: boolean }) {
  const { access, refresh } = issued;
  const common = {
    access_token: access.token,
    token_type: 'Bearer',
    expires_in: emu.config.accessTokenTtlSec,
    refresh_token: refresh.token,
    scope: access.scopes.join(' '),
    userType: access.authClass,
    companyId: access.companyId,
  };
  if (access.authClass === 'Location') {
    return { ...common, locationId: access.locationId, userId: access.userId, isBulkInstallation: flags.isBulkInstallation };
  }
  return {
    ...common,
    approvedLocations: [...refresh.approvedLocations],
    userId: access.userId,
    isBulkInstallation: flags.isBulkInstallation,
    installToFutureLocations: flags.installToFutureLocations ?? false,
    approveAllLocations: flags.approveAllLocations ?? false,
  };
}

function authorizationCodeGrant(emu: Emulator, app: MarketplaceApp, body: Body) {
  const code = required(body, 'code');
  const stored = emu.world.authCodes[code];
  if (!stored || stored.used || stored.appId !== app.appId || stored.expiresAt <= emu.now()) fail(400, INVALID_CODE);
  // Guess: redirect_uri is optional here, but when sent it must be the one the code was issued for.
  const redirectUri = param(body, 'redirect_uri');
  if (redirectUri !== undefined && redirectUri !== stored.redirectUri) fail(400, 'Invalid request: redirect_uri is invalid');
  const stillInstalled =
    stored.userType === 'Company'
      ? Boolean(companyInstallation(emu, app.appId, stored.companyId))
      : isInstalledOn(emu, app.appId, stored.locationId!);
  if (!stillInstalled) fail(400, INVALID_CODE);
  stored.used = true;
  delete emu.world.authCodes[code];

  // The code decides the token type: an agency consent yields a Company token, a location consent a
  // Location token, whatever user_type says.
  const inst = stored.userType === 'Company' ? companyInstallation(emu, app.appId, stored.companyId) : undefined;
  const grant: Grant = {
    authClass: stored.userType,
    companyId: stored.companyId,
    ...(stored.locationId ? { locationId: stored.locationId } : {}),
    approvedLocations: inst ? inst.approvedLocations : stored.approvedLocations,
    scopes: stored.scopes,
    userId: stored.userId,
  };
  return tokenBody(emu, issueTokens(emu, app, grant), {
    isBulkInstallation: stored.isBulkInstallation,
    installToFutureLocations: inst?.installToFutureLocations ?? stored.installToFutureLocations,
    approveAllLocations: inst?.approveAllLocations ?? stored.approveAllLocations,
  });
}

function refreshTokenGrant(emu: Emulator, app: MarketplaceApp, body: Body) {
  const token = required(body, 'refresh_token');
  const stored = emu.world.refreshTokens[token];
  if (!stored || stored.used || stored.revoked || stored.appId !== app.appId || stored.expiresAt <= emu.now()) fail(400, INVALID_REFRESH);

  if (stored.authClass === 'Location') {
    const location = emu.world.locations[stored.locationId!];
    if (!location || !isInstalledOn(emu, app.appId, location.id)) fail(400, INVALID_REFRESH);
    // The refresh token survives this error: it works again once the location is reactivated.
    if (location.active === false) fail(400, 'Location is not active');
    stored.used = true;
    const issued = issueTokens(emu, app, grantOf(stored));
    return tokenBody(emu, issued, { isBulkInstallation: !emu.installationFor(app.appId, location.id) });
  }
  const inst = companyInstallation(emu, app.appId, stored.companyId);
  if (!inst) fail(400, INVALID_REFRESH);
  stored.used = true;
  const issued = issueTokens(emu, app, { ...stored, approvedLocations: inst.approvedLocations });
  return tokenBody(emu, issued, {
    isBulkInstallation: true,
    installToFutureLocations: inst.installToFutureLocations,
    approveAllLocations: inst.approveAllLocations,
  });
}

function grantOf(t: RefreshToken): Grant {
  return {
    authClass: t.authClass,
    companyId: t.companyId,
    ...(t.locationId ? { locationId: t.locationId } : {}),
    approvedLocations: t.approvedLocations,
    scopes: t.scopes,
    userId: t.userId,
  };
}

function locationAddress(emu: Emulator, locationId: string): string {
  const l = emu.world.locations[locationId]!;
  return [l.address, l.city, l.state, l.postalCode, l.country].filter(Boolean).join(', ');
}

export function registerOauthRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { emu } = ctx;
  registerConsentRoutes(app, ctx);

  // No Version header needed (exempt in http.ts). Form-encoded per the spec; JSON accepted too (guess).
  app.post('/oauth/token', async (req, reply) => {
    const body = (req.body && typeof req.body === 'object' ? req.body : {}) as Body;
    const clientId = required(body, 'client_id');
    const clientSecret = required(body, 'client_secret');
    const grantType = required(body, 'grant_type');
    const client = Object.values(emu.world.apps).find((a) => a.clientId === clientId);
    // Guess: a wrong client is 401 with the oauth2-server wording.
    if (!client || client.clientSecret !== clientSecret) fail(401, 'Invalid client: client is invalid');
    const userType = param(body, 'user_type');
    if (userType !== undefined && userType !== 'Location' && userType !== 'Company') fail(400, 'Invalid parameter: user_type');
    if (grantType === 'authorization_code') return ok(reply, 200, authorizationCodeGrant(emu, client, body));
    if (grantType === 'refresh_token') return ok(reply, 200, refreshTokenGrant(emu, client, body));
    // client_credentials is in the enum but not offered to marketplace apps here.
    return fail(400, 'Invalid parameter: grant_type');
  });

  app.post('/oauth/locationToken', async (req, reply) => {
    const auth = ctx.auth(req, reply, { scopes: ['oauth.write'], access: 'both' });
    // Guess: observed text; the status is undocumented.
    if (auth.token.authClass !== 'Company' || !auth.token.appId) fail(401, "This token's user type is not yet supported!");
    const body = (req.body && typeof req.body === 'object' ? req.body : {}) as Body;
    const companyId = param(body, 'companyId');
    const locationId = param(body, 'locationId');
    const missing = [...(companyId ? [] : ['companyId must be a string']), ...(locationId ? [] : ['locationId must be a string'])];
    if (missing.length) unprocessable(missing);
    const client = emu.world.apps[auth.token.appId]!;
    const location = emu.world.locations[locationId!];
    if (companyId !== auth.companyId || !location || location.companyId !== companyId || !isInstalledOn(emu, client.appId, location.id)) {
      fail(400, 'Location not found');
    }
    // Guess: a paused location cannot get tokens here either.
    if (location.active === false) fail(400, 'Location is not active');
    const userId = emu.installationFor(client.appId, location.id)?.userId ?? companyInstallation(emu, client.appId, companyId)?.userId ?? auth.token.userId;
    const { access, refresh } = issueTokens(emu, client, {
      authClass: 'Location',
      companyId,
      locationId: location.id,
      scopes: auth.token.scopes,
      userId,
    });
    return ok(reply, 200, {
      access_token: access.token,
      token_type: 'Bearer',
      expires_in: emu.config.accessTokenTtlSec,
      scope: access.scopes.join(' '),
      locationId: location.id,
      userId,
      appId: client.appId,
      versionId: client.versionId,
      // Confirmed by maintainers (ISS #285), absent from the v2 spec's schema.
      refresh_token: refresh.token,
    });
  });

  app.get('/oauth/installedLocations', async (req, reply) => {
    const auth = ctx.auth(req, reply, { scopes: ['oauth.readonly'], access: 'company' });
    const q = (req.query ?? {}) as Record<string, string | undefined>;
    const missing = [...(q.companyId ? [] : ['companyId must be a string']), ...(q.appId ? [] : ['appId must be a string'])];
    if (missing.length) unprocessable(missing);
    // Guess: another company's or another app's installs are forbidden.
    if (q.companyId !== auth.companyId) fail(403, 'The token does not have access to this company.');
    if (q.appId !== auth.token.appId) fail(403, 'The token does not have access to this app.');
    const client = emu.world.apps[auth.token.appId!]!;
    const agency = companyInstallation(emu, client.appId, auth.companyId);
    let rows = Object.values(emu.world.locations)
      .filter((l) => l.companyId === auth.companyId)
      .sort((a, b) => a.dateAdded.localeCompare(b.dateAdded) || a.id.localeCompare(b.id))
      .map((l) => {
        const installed = isInstalledOn(emu, client.appId, l.id);
        const inst = emu.installationFor(client.appId, l.id) ?? agency;
        return {
          _id: l.id,
          name: l.name,
          address: locationAddress(emu, l.id),
          isInstalled: installed,
          ...(installed ? { versionId: client.versionId, installedAt: inst?.installedAt } : {}),
        };
      });
    if (q.query) rows = rows.filter((r) => r.name.toLowerCase().includes(q.query!.toLowerCase()));
    if (q.isInstalled === 'true' || q.isInstalled === 'false') rows = rows.filter((r) => r.isInstalled === (q.isInstalled === 'true'));
    if (q.locationId) rows = rows.filter((r) => r._id === q.locationId);
    if (q.versionId) rows = rows.filter((r) => r.versionId === q.versionId);
    const skip = Math.max(0, Number.parseInt(q.skip ?? '0', 10) || 0);
    const limit = Math.max(1, Number.parseInt(q.limit ?? '20', 10) || 20);
    return ok(reply, 200, {
      locations: rows.slice(skip, skip + limit),
      // Guess: the count of matching locations (the spec says "total location count under the company").
      count: rows.length,
      installToFutureLocations: agency?.installToFutureLocations ?? false,
    });
  });
}
