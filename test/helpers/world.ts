// Test set-up written straight into the emulator's world (no control API): a location with its
// private integration token, other kinds of tokens, and an app installed with a webhook URL.
import type { Emulator } from '../../emulator/emulator.ts';
import { newApp, newCompany, newLocation, type Location, type LocationSettings, type MarketplaceApp } from '../../emulator/state.ts';
import { hexToken, recordId } from '../../emulator/ids.ts';

/** A location (in a new company unless `companyId` is given) and its private integration token. */
export function addLocation(
  emu: Emulator,
  opts: { companyId?: string; name?: string } & Partial<LocationSettings> = {},
): { location: Location; token: string; companyId: string } {
  const { companyId: given, name, ...settings } = opts;
  let companyId = given;
  if (!companyId) {
    const company = newCompany('Test Agency');
    emu.world.companies[company.id] = company;
    companyId = company.id;
  }
  const location = newLocation(companyId, name ?? 'Test Location', emu.now(), settings);
  emu.world.locations[location.id] = location;
  const token = location.privateToken;
  emu.world.accessTokens[token] = {
    token,
    kind: 'private',
    authClass: 'Location',
    companyId,
    locationId: location.id,
    scopes: [],
    userId: 'x',
    expiresAt: Infinity,
    revoked: false,
  };
  return { location, token, companyId };
}

/** An OAuth access token of the given class and scopes (Company tokens have no location). */
export function addOauthToken(
  emu: Emulator,
  opts: { authClass: 'Location' | 'Company'; companyId: string; locationId?: string; scopes: string[]; appId?: string },
): string {
  const token = `tok-${hexToken(16)}`;
  emu.world.accessTokens[token] = {
    token,
    kind: 'oauth',
    appId: opts.appId ?? 'test-app',
    authClass: opts.authClass,
    companyId: opts.companyId,
    ...(opts.locationId ? { locationId: opts.locationId } : {}),
    scopes: opts.scopes,
    userId: recordId(),
    expiresAt: Infinity,
    revoked: false,
  };
  return token;
}

/** Registers an app with a webhook URL and installs it on one location (no INSTALL webhook). */
export function installApp(emu: Emulator, location: Location, webhookUrl: string, scopes = ['contacts.readonly', 'contacts.write']): MarketplaceApp {
  const app = newApp({ name: 'Test App', redirectUris: ['http://127.0.0.1/cb'], webhookUrl, scopes });
  emu.world.apps[app.appId] = app;
  emu.world.installations.push({
    appId: app.appId,
    companyId: location.companyId,
    locationId: location.id,
    installedAt: new Date(emu.now()).toISOString(),
    approvedLocations: [],
    installToFutureLocations: false,
    approveAllLocations: false,
    userId: recordId(),
  });
  return app;
}
