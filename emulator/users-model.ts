// User lifecycle shared by the public /users API, the control API and installs, with its webhooks
// (CONTRACT §4, §5.3). Only UserCreate is documented; UserUpdate and UserDelete are emulator guesses
// with the same flat shape.
import type { Emulator } from './emulator.ts';
import { fail, sparse } from './http.ts';
import { recordId } from './ids.ts';
import { isoAt, type User, type UserRole, type UserRoleType } from './state.ts';

export interface UserInput {
  companyId: string;
  firstName: string;
  lastName: string;
  email: string;
  phone?: string;
  extension?: string;
  type: UserRoleType;
  role: UserRole;
  locationIds: string[];
}

export type UserPatch = Partial<Omit<UserInput, 'companyId'>> & { deactivated?: boolean };

/** Guess: how long a queued DELETE /users/{id} takes to apply ("a few minutes"). */
export const USER_DELETE_DELAY_MS = 2 * 60_000;

function checkLocations(emu: Emulator, companyId: string, locationIds: string[]): void {
  for (const id of locationIds) {
    const location = emu.world.locations[id];
    if (!location || location.companyId !== companyId) fail(400, `Location with id ${id} not found`);
  }
}

/** Stores a user without sending any webhook (e.g. the agency owner the emulator assumes). */
export function insertUser(emu: Emulator, input: UserInput): User {
  if (!emu.world.companies[input.companyId]) fail(400, `Company with id ${input.companyId} not found`);
  checkLocations(emu, input.companyId, input.locationIds);
  const user: User = {
    id: recordId(),
    companyId: input.companyId,
    firstName: input.firstName,
    lastName: input.lastName,
    email: input.email,
    ...(input.phone ? { phone: input.phone } : {}),
    ...(input.extension ? { extension: input.extension } : {}),
    roles: { type: input.type, role: input.role, locationIds: [...input.locationIds], restrictSubAccount: false },
    deactivated: false,
    deleted: false,
    dateAdded: isoAt(emu.now()),
  };
  emu.world.users[user.id] = user;
  emu.changed();
  return user;
}

export function createUser(emu: Emulator, input: UserInput): User {
  const user = insertUser(emu, input);
  emitUserEvent(emu, 'UserCreate', user);
  return user;
}

/** A user that exists and is not deleted (queued deletes still count as existing until applied). */
export function liveUser(emu: Emulator, id: string): User {
  applyDueUserDeletes(emu);
  const user = emu.world.users[id];
  if (!user || user.deleted) fail(400, 'User not found');
  return user;
}

export function updateUser(emu: Emulator, id: string, patch: UserPatch): User {
  const user = liveUser(emu, id);
  const before = JSON.stringify(user);
  const oldLocations = [...user.roles.locationIds];
  if (patch.locationIds) checkLocations(emu, user.companyId, patch.locationIds);
  if (patch.firstName !== undefined) user.firstName = patch.firstName;
  if (patch.lastName !== undefined) user.lastName = patch.lastName;
  if (patch.email !== undefined) user.email = patch.email;
  if (patch.phone !== undefined) {
    if (patch.phone) user.phone = patch.phone;
    else delete user.phone;
  }
  if (patch.extension !== undefined) user.extension = patch.extension;
  if (patch.type !== undefined) user.roles.type = patch.type;
  if (patch.role !== undefined) user.roles.role = patch.role;
  if (patch.locationIds !== undefined) user.roles.locationIds = [...patch.locationIds];
  if (patch.deactivated !== undefined) user.deactivated = patch.deactivated;
  if (JSON.stringify(user) !== before) {
    emu.changed();
    // Locations the user just left hear about it too, so their apps can drop the user.
    emitUserEvent(emu, 'UserUpdate', user, oldLocations);
  }
  return user;
}

/** Deletes at once (control API, and queued deletes when due); sends UserDelete. */
export function deleteUser(emu: Emulator, id: string): void {
  const user = emu.world.users[id];
  if (!user || user.deleted) fail(400, 'User not found');
  delete emu.world.users[id];
  emu.changed();
  emitUserEvent(emu, 'UserDelete', { ...user, deleted: true });
}

/** The public API's delete: answered at once, applied USER_DELETE_DELAY_MS later on the emulator clock. */
export function queueUserDelete(emu: Emulator, id: string): User {
  const user = liveUser(emu, id);
  user.deleteAt ??= emu.now() + USER_DELETE_DELAY_MS;
  emu.changed();
  return user;
}

/** Applies queued deletes whose time has come. Called lazily whenever the world is read. */
export function applyDueUserDeletes(emu: Emulator): void {
  const now = emu.now();
  for (const user of Object.values(emu.world.users)) {
    if (user.deleteAt !== undefined && user.deleteAt <= now && !user.deleted) deleteUser(emu, user.id);
  }
}

/** Whether a user can see a location: listed in its roles, or an agency user not limited to some. */
export function userHasLocation(user: User, locationId: string): boolean {
  return user.roles.locationIds.includes(locationId) || (user.roles.type === 'agency' && user.roles.locationIds.length === 0);
}

function permissions(user: User): Record<string, boolean> {
  // Guess: HighLevel's defaults for a new user; read-only and restricted flags off.
  const off = new Set(['campaignsReadOnly', 'workflowsReadOnly', 'assignedDataOnly', 'botService', 'affiliateManagerEnabled']);
  if (user.roles.role !== 'admin') off.add('settingsEnabled');
  const keys = [
    'campaignsEnabled', 'campaignsReadOnly', 'contactsEnabled', 'workflowsEnabled', 'workflowsReadOnly',
    'triggersEnabled', 'funnelsEnabled', 'websitesEnabled', 'opportunitiesEnabled', 'dashboardStatsEnabled',
    'bulkRequestsEnabled', 'appointmentsEnabled', 'reviewsEnabled', 'onlineListingsEnabled', 'phoneCallEnabled',
    'conversationsEnabled', 'assignedDataOnly', 'adwordsReportingEnabled', 'membershipEnabled',
    'facebookAdsReportingEnabled', 'attributionsReportingEnabled', 'settingsEnabled', 'tagsEnabled',
    'leadValueEnabled', 'marketingEnabled', 'agentReportingEnabled', 'botService', 'socialPlanner',
    'bloggingEnabled', 'invoiceEnabled', 'affiliateManagerEnabled', 'contentAiEnabled', 'refundsEnabled',
    'recordPaymentEnabled', 'cancelSubscriptionEnabled', 'paymentsEnabled', 'communitiesEnabled',
    'exportPaymentsEnabled',
  ];
  return Object.fromEntries(keys.map((k) => [k, !off.has(k)]));
}

/**
 * The UserSchema shape of the public API. `deactivated` is the emulator's own field (HighLevel
 * documents none); GET keeps it so a sync can see a deactivation.
 */
export function userView(user: User): Record<string, unknown> {
  return sparse({
    id: user.id,
    name: `${user.firstName} ${user.lastName}`.trim(),
    firstName: user.firstName,
    lastName: user.lastName,
    email: user.email,
    phone: user.phone,
    extension: user.extension ?? '',
    permissions: permissions(user),
    roles: { ...user.roles, locationIds: [...user.roles.locationIds] },
    deactivated: user.deactivated,
  });
}

/**
 * Sends a user event: location users' events go to the apps installed on each of their locations
 * (payload `locationId`), agency users' to the apps installed in the company (payload `companyId`).
 */
function emitUserEvent(emu: Emulator, type: 'UserCreate' | 'UserUpdate' | 'UserDelete', user: User, extraLocations: string[] = []): void {
  const body = sparse({
    id: user.id,
    firstName: user.firstName,
    lastName: user.lastName,
    email: user.email,
    phone: user.phone,
    extension: user.extension,
    role: user.roles.role,
    permissions: permissions(user),
    locations: [...user.roles.locationIds],
    ...(type === 'UserCreate' ? {} : { deactivated: user.deactivated }),
    ...(type === 'UserDelete' ? { deleted: true } : {}),
  });
  if (user.roles.type === 'agency') {
    emu.emitCompanyEvent(user.companyId, { type, companyId: user.companyId, ...body });
    return;
  }
  const locations = new Set([...user.roles.locationIds, ...extraLocations]);
  for (const locationId of locations) {
    if (emu.world.locations[locationId]) emu.emitLocationEvent(locationId, { type, locationId, ...body });
  }
}
