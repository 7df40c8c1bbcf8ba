// Marketplace installs (CONTRACT §1, §5.3): install/uninstall with their INSTALL/UNINSTALL webhooks,
// "install to future locations", and the installer the emulator assumes when nobody is named.
// Shared by the consent page, the control API and the token endpoints.
import type { Emulator } from './emulator.ts';
import { fail } from './http.ts';
import { isoAt, type Installation, type Location, type MarketplaceApp, type User } from './state.ts';
import { insertUser, userHasLocation } from './users-model.ts';
import { revokeTokens } from './tokens.ts';

export { issueTokens, type Grant, type IssuedTokens } from './tokens.ts';

export interface InstallInput {
  appId: string;
  /** May be empty for a location install: the location's company is used. */
  companyId: string;
  /** Location install when set; agency (bulk) install when absent. */
  locationId?: string;
  /** Agency installs: which locations the installer approved (default: all of the company). */
  locationIds?: string[];
  installToFutureLocations?: boolean;
  userId?: string;
}

export function appOrFail(emu: Emulator, appId: string): MarketplaceApp {
  const app = emu.world.apps[appId];
  if (!app) fail(400, `App with id ${appId} not found`);
  return app;
}

/** The agency (Company) install of an app in a company, if any. */
export function companyInstallation(emu: Emulator, appId: string, companyId: string): Installation | undefined {
  return emu.world.installations.find((i) => i.appId === appId && !i.locationId && i.companyId === companyId);
}

export function isInstalledOn(emu: Emulator, appId: string, locationId: string): boolean {
  return emu.appsInstalledOn(locationId).some((a) => a.appId === appId);
}

/**
 * Who installs when nobody is named: the company's first agency admin, else a user of the
 * location, else any user of the company. A company without users gets an "Agency Admin" created
 * silently (every real agency has an owner; no UserCreate is sent for it).
 */
export function defaultInstaller(emu: Emulator, companyId: string, locationId?: string): User {
  const users = Object.values(emu.world.users)
    .filter((u) => u.companyId === companyId && !u.deleted && !u.deactivated)
    .sort((a, b) => a.dateAdded.localeCompare(b.dateAdded));
  const found =
    users.find((u) => u.roles.type === 'agency' && u.roles.role === 'admin') ??
    (locationId ? users.find((u) => u.roles.role === 'admin' && userHasLocation(u, locationId)) : undefined) ??
    users[0];
  if (found) return found;
  return insertUser(emu, {
    companyId,
    firstName: 'Agency',
    lastName: 'Admin',
    email: `admin-${companyId.toLowerCase()}@agency.example`,
    type: 'agency',
    role: 'admin',
    locationIds: [],
  });
}

function installPayload(emu: Emulator, app: MarketplaceApp, companyId: string, locationId: string | undefined, userId: string | undefined) {
  const company = emu.world.companies[companyId];
  const common = {
    type: 'INSTALL',
    appId: app.appId,
    versionId: app.versionId,
    installType: locationId ? 'Location' : 'Company',
    companyId,
    ...(locationId ? { locationId } : {}),
    ...(userId ? { userId } : {}),
    ...(company ? { companyName: company.name } : {}),
    // Guess: the emulator has no paid plans, so no planId and no trial running.
    trial: { onTrial: false },
  };
  if (!locationId) return common;
  const domain = company?.whitelabelDomain;
  return {
    ...common,
    isWhitelabelCompany: Boolean(domain),
    whitelabelDetails: domain ? { domain, logoUrl: `https://${domain}/logo.png` } : {},
  };
}

/**
 * Records an installation and sends INSTALL webhook(s) to that app. Idempotent: a repeated install
 * updates the existing record (a re-consent resends INSTALL, as a new consent would).
 * Agency installs send one Company INSTALL plus one INSTALL per location approved by this consent.
 */
export function install(emu: Emulator, input: InstallInput): Installation {
  const app = appOrFail(emu, input.appId);
  const now = isoAt(emu.now());

  if (input.locationId) {
    const location = emu.world.locations[input.locationId];
    if (!location) fail(400, `Location with id ${input.locationId} not found`);
    const companyId = location.companyId;
    if (input.companyId && input.companyId !== companyId) fail(400, 'Location does not belong to this company');
    const userId = input.userId ?? defaultInstaller(emu, companyId, location.id).id;
    let inst = emu.installationFor(app.appId, location.id);
    if (inst) inst.userId = userId;
    else {
      inst = {
        appId: app.appId,
        companyId,
        locationId: location.id,
        installedAt: now,
        approvedLocations: [location.id],
        installToFutureLocations: false,
        approveAllLocations: false,
        userId,
      };
      emu.world.installations.push(inst);
    }
    emu.changed();
    emu.webhooks.send(app, installPayload(emu, app, companyId, location.id, userId));
    return inst;
  }

  const companyId = input.companyId;
  if (!emu.world.companies[companyId]) fail(400, `Company with id ${companyId} not found`);
  const companyLocations = Object.values(emu.world.locations).filter((l) => l.companyId === companyId);
  const chosen = input.locationIds ?? companyLocations.map((l) => l.id);
  for (const id of chosen) {
    if (!companyLocations.some((l) => l.id === id)) fail(400, `Location with id ${id} not found`);
  }
  const userId = input.userId ?? defaultInstaller(emu, companyId).id;
  let inst = companyInstallation(emu, app.appId, companyId);
  if (!inst) {
    inst = {
      appId: app.appId,
      companyId,
      installedAt: now,
      approvedLocations: [],
      installToFutureLocations: false,
      approveAllLocations: false,
      userId,
    };
    emu.world.installations.push(inst);
  }
  inst.userId = userId;
  inst.approvedLocations = [...new Set([...inst.approvedLocations, ...chosen])];
  if (input.installToFutureLocations !== undefined) inst.installToFutureLocations = input.installToFutureLocations;
  inst.approveAllLocations = companyLocations.every((l) => inst.approvedLocations.includes(l.id));
  emu.changed();
  emu.webhooks.send(app, installPayload(emu, app, companyId, undefined, userId));
  for (const id of chosen) emu.webhooks.send(app, installPayload(emu, app, companyId, id, userId));
  return inst;
}

/**
 * Uninstalls an app from a location (its direct install and its approval in an agency install) or
 * from a whole company (every install of the app there). Revokes the tokens involved and sends
 * UNINSTALL: one per location that lost the app, plus one for the company on an agency uninstall.
 */
export function uninstall(emu: Emulator, input: { appId: string; locationId?: string; companyId?: string }): boolean {
  const app = appOrFail(emu, input.appId);
  if (input.locationId) {
    const locationId = input.locationId;
    if (!isInstalledOn(emu, app.appId, locationId)) return false;
    emu.world.installations = emu.world.installations.filter((i) => !(i.appId === app.appId && i.locationId === locationId));
    for (const inst of emu.world.installations) {
      if (inst.appId === app.appId && !inst.locationId && inst.approvedLocations.includes(locationId)) {
        inst.approvedLocations = inst.approvedLocations.filter((id) => id !== locationId);
        inst.approveAllLocations = false;
      }
    }
    revokeTokens(emu, app.appId, { locationId });
    emu.changed();
    emu.webhooks.send(app, { type: 'UNINSTALL', appId: app.appId, locationId });
    return true;
  }

  const companyId = input.companyId;
  if (!companyId) fail(400, 'locationId or companyId is required');
  const covered = Object.values(emu.world.locations)
    .filter((l) => l.companyId === companyId && isInstalledOn(emu, app.appId, l.id))
    .map((l) => l.id);
  const hadCompanyInstall = Boolean(companyInstallation(emu, app.appId, companyId));
  const before = emu.world.installations.length;
  emu.world.installations = emu.world.installations.filter((i) => !(i.appId === app.appId && i.companyId === companyId));
  if (emu.world.installations.length === before) return false;
  revokeTokens(emu, app.appId, { companyId });
  emu.changed();
  for (const locationId of covered) emu.webhooks.send(app, { type: 'UNINSTALL', appId: app.appId, locationId });
  if (hadCompanyInstall) emu.webhooks.send(app, { type: 'UNINSTALL', appId: app.appId, companyId });
  return true;
}

/**
 * Called when a location is created: agency installs with installToFutureLocations approve it and
 * send its INSTALL (without userId, as the docs warn may happen for future locations).
 */
export function onLocationCreated(emu: Emulator, location: Location): void {
  for (const inst of emu.world.installations) {
    if (inst.locationId || inst.companyId !== location.companyId || !inst.installToFutureLocations) continue;
    if (inst.approvedLocations.includes(location.id)) continue;
    const app = emu.world.apps[inst.appId];
    if (!app) continue;
    inst.approvedLocations.push(location.id);
    emu.changed();
    emu.webhooks.send(app, installPayload(emu, app, location.companyId, location.id, undefined));
  }
}
