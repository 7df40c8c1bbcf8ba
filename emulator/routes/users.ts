// Users API (CONTRACT §4, apps/users.json): search, the deprecated per-location list, get (unwrapped),
// create, update and a queued delete. Queued deletes are applied lazily by an onRequest hook, so the
// emulator clock (ManualClock in tests) decides when they take effect.
import type { FastifyInstance } from 'fastify';
import type { Emulator } from '../emulator.ts';
import { fail, ok, requireLocation, unprocessable, type AuthContext } from '../http.ts';
import type { User } from '../state.ts';
import type { RouteContext } from '../server.ts';
import {
  applyDueUserDeletes,
  createUser,
  liveUser,
  queueUserDelete,
  updateUser,
  userHasLocation,
  userView,
  type UserPatch,
} from '../users-model.ts';

type Body = Record<string, unknown>;

const CREATE_KEYS = [
  'companyId', 'firstName', 'lastName', 'email', 'password', 'phone', 'type', 'role', 'locationIds', 'permissions',
  'scopes', 'scopesAssignedToOnly', 'profilePhoto', 'twilioPhone', 'platformLanguage',
];
const TYPES = ['account', 'agency'];
const ROLES = ['admin', 'user'];
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** class-validator style messages for a create (all required) or update (all optional) body. */
function validate(body: Body, requireAll: boolean): void {
  const errors: string[] = [];
  for (const key of Object.keys(body)) if (!CREATE_KEYS.includes(key)) errors.push(`property ${key} should not exist`);
  const strings = ['companyId', 'firstName', 'lastName', 'email', 'password', 'phone', 'type', 'role', 'profilePhoto', 'platformLanguage'];
  const requiredKeys = ['companyId', 'firstName', 'lastName', 'email', 'password', 'type', 'role'];
  for (const key of strings) {
    const v = body[key];
    if (v === undefined) {
      if (requireAll && requiredKeys.includes(key)) errors.push(`${key} must be a string`, `${key} should not be empty`);
    } else if (typeof v !== 'string') errors.push(`${key} must be a string`);
  }
  if (typeof body.email === 'string' && !EMAIL.test(body.email)) errors.push('email must be an email');
  if (typeof body.type === 'string' && !TYPES.includes(body.type)) errors.push(`type must be one of the following values: ${TYPES.join(', ')}`);
  if (typeof body.role === 'string' && !ROLES.includes(body.role)) errors.push(`role must be one of the following values: ${ROLES.join(', ')}`);
  const ids = body.locationIds;
  if (ids === undefined ? requireAll : !Array.isArray(ids) || ids.some((x) => typeof x !== 'string')) {
    errors.push('each value in locationIds must be a string', 'locationIds must be an array');
  }
  if (errors.length) unprocessable(errors);
}

/** A live user the token may see: same company, and for a Location token a user of that location. */
function visibleUser(emu: Emulator, auth: AuthContext, id: string): User {
  const user = liveUser(emu, id);
  if (user.companyId !== auth.companyId) fail(400, 'User not found');
  if (auth.token.authClass === 'Location' && auth.locationId && !userHasLocation(user, auth.locationId)) fail(400, 'User not found');
  return user;
}

function searchView(user: User): Record<string, unknown> {
  return { ...userView(user), deleted: false };
}

const SORTS: Record<string, (u: User) => string> = {
  dateAdded: (u) => u.dateAdded,
  firstName: (u) => u.firstName.toLowerCase(),
  lastName: (u) => u.lastName.toLowerCase(),
  name: (u) => `${u.firstName} ${u.lastName}`.toLowerCase(),
  email: (u) => u.email.toLowerCase(),
};

function companyUsers(emu: Emulator, companyId: string): User[] {
  return Object.values(emu.world.users).filter((u) => u.companyId === companyId && !u.deleted);
}

export function registerUsersRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { emu } = ctx;
  // Global on purpose: any request may be the first one after a queued delete fell due.
  app.addHook('onRequest', async () => applyDueUserDeletes(emu));

  app.get('/users/search', async (req, reply) => {
    const auth = ctx.auth(req, reply, { scopes: ['users.readonly'], access: 'both' });
    const q = (req.query ?? {}) as Record<string, string | undefined>;
    if (!q.companyId) unprocessable(['companyId must be a string']);
    // Guess: another company's users are forbidden.
    if (q.companyId !== auth.companyId) fail(403, 'The token does not have access to this company.');
    requireLocation(emu, auth, q.locationId);
    let users = companyUsers(emu, auth.companyId);
    if (auth.token.authClass === 'Location' && auth.locationId) users = users.filter((u) => userHasLocation(u, auth.locationId!));
    if (q.locationId) users = users.filter((u) => userHasLocation(u, q.locationId!));
    if (q.type) users = users.filter((u) => u.roles.type === q.type);
    if (q.role) users = users.filter((u) => u.roles.role === q.role);
    if (q.ids) {
      const ids = new Set(q.ids.split(',').map((s) => s.trim()));
      users = users.filter((u) => ids.has(u.id));
    }
    if (q.query) {
      const needle = q.query.toLowerCase();
      users = users.filter((u) => [`${u.firstName} ${u.lastName}`, u.email, u.phone ?? ''].some((s) => s.toLowerCase().includes(needle)));
    }
    // Guess: default order is dateAdded ascending.
    const key = SORTS[q.sort ?? 'dateAdded'] ?? SORTS.dateAdded!;
    const dir = q.sortDirection?.toLowerCase() === 'desc' ? -1 : 1;
    users.sort((a, b) => dir * (key(a).localeCompare(key(b)) || a.id.localeCompare(b.id)));
    const skip = Math.max(0, Number.parseInt(q.skip ?? '0', 10) || 0);
    const limit = Math.max(1, Number.parseInt(q.limit ?? '25', 10) || 25);
    return ok(reply, 200, { users: users.slice(skip, skip + limit).map(searchView), count: users.length });
  });

  app.post('/users/search/filter-by-email', async (req, reply) => {
    const auth = ctx.auth(req, reply, { scopes: ['users.readonly'], access: 'company' });
    const body = (req.body ?? {}) as Body;
    const errors = [
      ...(typeof body.companyId === 'string' ? [] : ['companyId must be a string']),
      ...(typeof body.emails === 'string' ? [] : ['emails must be a string']),
    ];
    if (errors.length) unprocessable(errors);
    if (body.companyId !== auth.companyId) fail(403, 'The token does not have access to this company.');
    const emails = new Set((body.emails as string).split(',').map((e) => e.trim().toLowerCase()));
    // Deleted users leave the emulator's world, so `deleted: true` finds nobody.
    const users = body.deleted === true ? [] : companyUsers(emu, auth.companyId).filter((u) => emails.has(u.email.toLowerCase()));
    const skip = Math.max(0, Number.parseInt(String(body.skip ?? '0'), 10) || 0);
    const limit = Math.max(1, Number.parseInt(String(body.limit ?? '25'), 10) || 25);
    const projection = typeof body.projection === 'string' ? body.projection : '';
    const fields = projection === 'all' ? undefined : new Set(['id', 'email', ...projection.split(',').map((s) => s.trim())]);
    const view = (u: User) => {
      const full = searchView(u);
      return fields ? Object.fromEntries(Object.entries(full).filter(([k]) => fields.has(k))) : full;
    };
    return ok(reply, 200, { users: users.slice(skip, skip + limit).map(view), count: users.length });
  });

  const listByLocation = async (req: Parameters<RouteContext['auth']>[0], reply: Parameters<RouteContext['auth']>[1]) => {
    const auth = ctx.auth(req, reply, { scopes: ['users.readonly'], access: 'location' });
    const q = (req.query ?? {}) as Record<string, string | undefined>;
    if (!q.locationId) unprocessable(['locationId must be a string']);
    requireLocation(emu, auth, q.locationId);
    const users = companyUsers(emu, auth.companyId)
      .filter((u) => userHasLocation(u, q.locationId!))
      .sort((a, b) => a.dateAdded.localeCompare(b.dateAdded) || a.id.localeCompare(b.id));
    return ok(reply, 200, { users: users.map(searchView) });
  };
  app.get('/users/', listByLocation);
  app.get('/users', listByLocation);

  const create = async (req: Parameters<RouteContext['auth']>[0], reply: Parameters<RouteContext['auth']>[1]) => {
    const auth = ctx.auth(req, reply, { scopes: ['users.write'], access: 'both' });
    const body = (req.body ?? {}) as Body;
    validate(body, true);
    if (body.companyId !== auth.companyId) fail(403, 'The token does not have access to this company.');
    const locationIds = body.locationIds as string[];
    for (const id of locationIds) requireLocation(emu, auth, id);
    const email = (body.email as string).trim();
    // Guess: e-mails are unique among a company's users; the text is ours.
    if (companyUsers(emu, auth.companyId).some((u) => u.email.toLowerCase() === email.toLowerCase())) {
      fail(400, 'User with this email already exists');
    }
    const user = createUser(emu, {
      companyId: auth.companyId,
      firstName: body.firstName as string,
      lastName: body.lastName as string,
      email,
      ...(typeof body.phone === 'string' && body.phone ? { phone: body.phone } : {}),
      type: body.type as User['roles']['type'],
      role: body.role as User['roles']['role'],
      locationIds,
    });
    return ok(reply, 201, userView(user));
  };
  app.post('/users/', create);
  app.post('/users', create);

  app.get('/users/:userId', async (req, reply) => {
    const auth = ctx.auth(req, reply, { scopes: ['users.readonly'], access: 'both' });
    const { userId } = req.params as { userId: string };
    return ok(reply, 200, userView(visibleUser(emu, auth, userId)));
  });

  app.put('/users/:userId', async (req, reply) => {
    const auth = ctx.auth(req, reply, { scopes: ['users.write'], access: 'both' });
    const { userId } = req.params as { userId: string };
    const user = visibleUser(emu, auth, userId);
    const body = (req.body ?? {}) as Body;
    validate(body, false);
    const patch: UserPatch = {};
    if (typeof body.firstName === 'string') patch.firstName = body.firstName;
    if (typeof body.lastName === 'string') patch.lastName = body.lastName;
    if (typeof body.email === 'string') patch.email = body.email.trim();
    if (typeof body.phone === 'string') patch.phone = body.phone;
    if (typeof body.type === 'string') patch.type = body.type as User['roles']['type'];
    if (typeof body.role === 'string') patch.role = body.role as User['roles']['role'];
    if (Array.isArray(body.locationIds)) patch.locationIds = body.locationIds as string[];
    return ok(reply, 200, userView(updateUser(emu, user.id, patch)));
  });

  app.delete('/users/:userId', async (req, reply) => {
    const auth = ctx.auth(req, reply, { scopes: ['users.write'], access: 'both' });
    const { userId } = req.params as { userId: string };
    const user = queueUserDelete(emu, visibleUser(emu, auth, userId).id);
    const name = `${user.firstName} ${user.lastName}`.trim();
    return ok(reply, 200, {
      succeded: true,
      message: `Queued deleting user with e-mail ${user.email} and name ${name}. Will take effect in a few minutes.`,
    });
  });
}
