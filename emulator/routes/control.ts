// The /__emulator control API (JSON, no auth, no Version header): how tests, benchmarks and the
// sandbox build a world, script faults and read what happened. Errors are `{ error }` (400/403/404).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RouteContext } from '../server.ts';
import type { Emulator } from '../emulator.ts';
import { HttpFailure } from '../http.ts';
import { install, onLocationCreated, uninstall } from '../installs.ts';
import { applyDueUserDeletes, createUser, deleteUser, updateUser, userView } from '../users-model.ts';
import { canSeeLocation, encryptUserData, userDataFor } from '../sso.ts';
import { newApp, newCompany, newLocation, type Location, type MarketplaceApp, type User } from '../state.ts';
import { registerControlLogRoutes } from './control-logs.ts';
import { seedContacts } from '../contact-seed.ts';
import { webhookPayload } from '../contact-model.ts';
import { addCustomFields, customFieldView, definitionProblems } from '../custom-fields.ts';
import {
  AppCreate,
  AppPatch,
  ControlError,
  CompanyCreate,
  ConfigPatch,
  ContactSeed,
  CustomFieldsCreate,
  InstallTarget,
  LocationCreate,
  LocationPatch,
  SsoQuery,
  UserCreate,
  UserPatch,
  parse,
} from './control-schemas.ts';

/** Every scope a private integration token carries (only informative: PITs skip scope checks). */
const PRIVATE_TOKEN_SCOPES = [
  'contacts.readonly',
  'contacts.write',
  'users.readonly',
  'users.write',
  'locations.readonly',
  'locations.write',
  'locations/customFields.readonly',
  'locations/customFields.write',
  'locations/tags.readonly',
  'locations/tags.write',
];

/**
 * Stands for "never expires" in the world's JSON: Infinity would be saved as null by
 * JSON.stringify and come back as an expired token after a restart.
 */
const NEVER = Number.MAX_SAFE_INTEGER;

export function registerControlRoutes(app: FastifyInstance, ctx: RouteContext): void {
  // An encapsulated plugin so the control API's errors keep their own `{ error }` shape.
  void app.register(async (scope) => {
    scope.setErrorHandler(renderControlError);
    registerWorldRoutes(scope, ctx);
    registerControlLogRoutes(scope, ctx);
  });
}

function renderControlError(err: unknown, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (err instanceof ControlError) return reply.code(err.status).send({ error: err.message });
  if (err instanceof HttpFailure) {
    const m = err.body.message;
    return reply.code(err.status).send({ error: Array.isArray(m) ? m.join(', ') : String(m ?? err.message) });
  }
  const e = err as { statusCode?: number; message?: string };
  if (e.statusCode && e.statusCode < 500) return reply.code(e.statusCode).send({ error: e.message });
  req.log.error({ err }, 'control API handler failed');
  return reply.code(500).send({ error: e.message ?? 'internal error' });
}

function registerWorldRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { emu } = ctx;

  app.get('/__emulator/info', async () => ({
    baseUrl: emu.baseUrl,
    webhookPublicKeyPem: emu.webhookKey.publicKeyPem,
    config: emu.config,
  }));

  app.patch('/__emulator/config', async (req) => {
    emu.setConfig(parse(ConfigPatch, req.body));
    return emu.config;
  });

  app.post('/__emulator/reset', async () => {
    emu.reset();
    ctx.limiter.reset();
    return {};
  });

  app.post('/__emulator/companies', async (req) => {
    const input = parse(CompanyCreate, req.body);
    const company = newCompany(input.name, input.whitelabelDomain);
    emu.world.companies[company.id] = company;
    emu.changed();
    return company;
  });

  app.post('/__emulator/locations', async (req) => {
    const { name, companyId, companyName, timezone, allowDuplicateContact, ...details } = parse(LocationCreate, req.body);
    let company = companyId ? emu.world.companies[companyId] : undefined;
    if (companyId && !company) throw new ControlError(404, `company ${companyId} not found`);
    if (!company) {
      company = newCompany(companyName ?? `${name} Agency`);
      emu.world.companies[company.id] = company;
    }
    const location = newLocation(
      company.id,
      name,
      emu.now(),
      allowDuplicateContact === undefined ? {} : { allowDuplicateContact },
    );
    Object.assign(location, details, timezone ? { timezone } : {});
    emu.world.locations[location.id] = location;
    emu.world.accessTokens[location.privateToken] = {
      token: location.privateToken,
      kind: 'private',
      authClass: 'Location',
      companyId: company.id,
      locationId: location.id,
      scopes: PRIVATE_TOKEN_SCOPES,
      userId: '',
      expiresAt: NEVER,
      revoked: false,
    };
    emu.changed();
    // LocationCreate goes to agency apps only (CONTRACT §5.3), before any future-location INSTALL.
    const agencyApps = new Set(
      emu.world.installations.filter((i) => !i.locationId && i.companyId === company.id).map((i) => i.appId),
    );
    for (const appId of agencyApps) {
      const agencyApp = emu.world.apps[appId];
      if (agencyApp) emu.webhooks.send(agencyApp, locationEvent('LocationCreate', location));
    }
    onLocationCreated(emu, location);
    return { id: location.id, companyId: company.id, name: location.name, privateToken: location.privateToken };
  });

  // Realistic contacts written straight into a location (no webhooks, as emulator/contact-seed.ts
  // does in-process): benchmarks that run the emulator in a process of its own seed through here.
  app.post<{ Params: { id: string } }>('/__emulator/locations/:id/contacts/seed', async (req) => {
    if (!emu.world.locations[req.params.id]) throw new ControlError(404, `location ${req.params.id} not found`);
    const { count, payloads } = parse(ContactSeed, req.body);
    const docs = seedContacts(emu, req.params.id, count);
    return payloads ? { seeded: docs.length, payloads: docs.map((doc) => webhookPayload('ContactUpdate', doc)) } : { seeded: docs.length };
  });

  // Custom field definitions, as a HighLevel user makes them in Settings: one or a list, stored
  // all or none; answers the new definitions as GET /locations/:id/customFields shows them.
  app.post<{ Params: { id: string } }>('/__emulator/locations/:id/custom-fields', async (req) => {
    const location = locationById(emu, req.params.id);
    const inputs = parse(CustomFieldsCreate, req.body);
    const problems = inputs.flatMap((input, i) => definitionProblems(input).map((p) => `${i}: ${p}`));
    if (problems.length) throw new ControlError(400, problems.join('; '));
    return { customFields: addCustomFields(emu, location.id, inputs).map(customFieldView) };
  });

  app.patch<{ Params: { id: string } }>('/__emulator/locations/:id', async (req) => {
    const location = emu.world.locations[req.params.id];
    if (!location) throw new ControlError(404, `location ${req.params.id} not found`);
    const { allowDuplicateContact, allowDuplicateOpportunity, allowFacebookNameMerge, disableContactTimezone, ...fields } =
      parse(LocationPatch, req.body);
    Object.assign(location, fields);
    const settings = { allowDuplicateContact, allowDuplicateOpportunity, allowFacebookNameMerge, disableContactTimezone };
    for (const [key, value] of Object.entries(settings)) {
      if (value !== undefined) location.settings[key as keyof Location['settings']] = value;
    }
    emu.changed();
    // Guess: apps installed on the location hear about it (LocationUpdate, CONTRACT §5.3).
    emu.emitLocationEvent(location.id, locationEvent('LocationUpdate', location));
    return location;
  });

  app.post('/__emulator/users', async (req) => {
    const input = parse(UserCreate, req.body);
    if (!emu.world.companies[input.companyId]) throw new ControlError(404, `company ${input.companyId} not found`);
    checkLocations(emu, input.companyId, input.locationIds);
    return present(createUser(emu, input));
  });

  app.patch<{ Params: { id: string } }>('/__emulator/users/:id', async (req) => {
    const user = liveUser(emu, req.params.id);
    const patch = parse(UserPatch, req.body);
    if (patch.locationIds) checkLocations(emu, user.companyId, patch.locationIds);
    return present(updateUser(emu, user.id, patch));
  });

  app.delete<{ Params: { id: string } }>('/__emulator/users/:id', async (req) => {
    deleteUser(emu, liveUser(emu, req.params.id).id);
    return {};
  });

  app.post('/__emulator/apps', async (req) => {
    const created = newApp(parse(AppCreate, req.body));
    emu.world.apps[created.appId] = created;
    emu.changed();
    return created;
  });

  app.patch<{ Params: { appId: string } }>('/__emulator/apps/:appId', async (req) => {
    const found = appById(emu, req.params.appId);
    const { webhookUrl, customPageUrl, ...rest } = parse(AppPatch, req.body);
    Object.assign(found, rest);
    // null unsets a URL (e.g. to test "no webhook URL configured").
    if (webhookUrl === null) delete found.webhookUrl;
    else if (webhookUrl !== undefined) found.webhookUrl = webhookUrl;
    if (customPageUrl === null) delete found.customPageUrl;
    else if (customPageUrl !== undefined) found.customPageUrl = customPageUrl;
    emu.changed();
    return found;
  });

  app.post('/__emulator/installs', async (req) => {
    const target = parse(InstallTarget, req.body);
    appById(emu, target.appId);
    if (target.locationId) {
      const location = locationById(emu, target.locationId);
      return install(emu, { appId: target.appId, companyId: location.companyId, locationId: location.id, userId: target.userId });
    }
    const companyId = target.companyId!;
    if (!emu.world.companies[companyId]) throw new ControlError(404, `company ${companyId} not found`);
    if (target.locationIds) checkLocations(emu, companyId, target.locationIds);
    return install(emu, {
      appId: target.appId,
      companyId,
      locationIds: target.locationIds,
      installToFutureLocations: target.installToFutureLocations,
      userId: target.userId,
    });
  });

  app.delete('/__emulator/installs', async (req) => {
    const target = parse(InstallTarget, req.body);
    const removed = uninstall(emu, { appId: target.appId, locationId: target.locationId, companyId: target.companyId });
    if (!removed) throw new ControlError(404, 'no such installation');
    return {};
  });

  app.get('/__emulator/sso', async (req) => {
    const { appId, userId, locationId } = parse(SsoQuery, req.query);
    const found = appById(emu, appId);
    const user = liveUser(emu, userId);
    locationById(emu, locationId);
    if (!canSeeLocation(emu, user, locationId)) {
      throw new ControlError(403, `user ${userId} cannot open location ${locationId}`);
    }
    return { payload: encryptUserData(userDataFor(user, locationId), found.sharedSecret) };
  });
}

/** LocationCreate / LocationUpdate payload (CONTRACT §5.3). */
export function locationEvent(type: string, location: Location): Record<string, unknown> {
  return {
    type,
    id: location.id,
    companyId: location.companyId,
    name: location.name,
    ...(location.email ? { email: location.email } : {}),
  };
}

function present(user: User): Record<string, unknown> {
  return { ...userView(user), deactivated: user.deactivated };
}

function appById(emu: Emulator, appId: string): MarketplaceApp {
  const found = emu.world.apps[appId];
  if (!found) throw new ControlError(404, `app ${appId} not found`);
  return found;
}

function locationById(emu: Emulator, locationId: string): Location {
  const found = emu.world.locations[locationId];
  if (!found) throw new ControlError(404, `location ${locationId} not found`);
  return found;
}

function liveUser(emu: Emulator, id: string): User {
  applyDueUserDeletes(emu);
  const user = emu.world.users[id];
  if (!user || user.deleted) throw new ControlError(404, `user ${id} not found`);
  return user;
}

function checkLocations(emu: Emulator, companyId: string, locationIds: string[]): void {
  for (const id of locationIds) {
    const location = emu.world.locations[id];
    if (!location) throw new ControlError(404, `location ${id} not found`);
    if (location.companyId !== companyId) throw new ControlError(400, `location ${id} belongs to another company`);
  }
}
