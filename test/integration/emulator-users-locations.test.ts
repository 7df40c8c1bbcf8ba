// The emulator's Users and Locations APIs over real HTTP (CONTRACT §4, apps/users.json,
// apps/locations.json): search, list, get, create, update, queued delete, deactivation, user
// webhooks and GET /locations/{id}; every success body is checked against the official schema.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock, call, testEmulator, until } from '../helpers/emulator.ts';
import { specErrors } from '../helpers/openapi.ts';
import { connect, seedAgency, seedApp, webhookReceiver, type Agency } from '../helpers/oauth.ts';
import { USER_DELETE_DELAY_MS, createUser, insertUser, updateUser } from '../../emulator/users-model.ts';
import type { RunningEmulator } from '../../emulator/server.ts';
import type { MarketplaceApp, User } from '../../emulator/state.ts';

const USERS = 'apps/users.json';
const LOCATIONS = 'apps/locations.json';

let clock: ManualClock;
let em: RunningEmulator;
let base: string;
let agency: Agency;
let app: MarketplaceApp;
let companyToken: string;
let locationToken: string;
let alice: User;
let bob: User;

beforeEach(async () => {
  clock = new ManualClock();
  em = await testEmulator({ clock });
  base = em.url;
  agency = seedAgency(em.emu);
  app = seedApp(em.emu);
  const [l1, l2] = agency.locations;
  clock.advance(1000);
  alice = insertUser(em.emu, {
    companyId: agency.company.id,
    firstName: 'Alice',
    lastName: 'Zed',
    email: 'alice@example.com',
    phone: '+15550001111',
    type: 'account',
    role: 'user',
    locationIds: [l1!.id],
  });
  clock.advance(1000);
  bob = insertUser(em.emu, {
    companyId: agency.company.id,
    firstName: 'Bob',
    lastName: 'Young',
    email: 'bob@example.com',
    type: 'account',
    role: 'admin',
    locationIds: [l2!.id],
  });
  companyToken = (await connect(base, app, 'agency')).access_token;
  locationToken = (await connect(base, app, l1!.id)).access_token;
});

afterEach(async () => {
  await em.close();
});

const search = (token: string, query: string) => call(base, 'GET', `/users/search?${query}`, { token });

describe('GET /users/search', () => {
  it('requires companyId (422) and answers { users, count } for the company', async () => {
    const missing = await search(companyToken, '');
    expect(missing.status).toBe(422);
    expect(missing.body).toMatchObject({ statusCode: 422, error: 'Unprocessable Entity' });
    expect(Array.isArray(missing.body.message)).toBe(true);

    const res = await search(companyToken, `companyId=${agency.company.id}`);
    expect(res.status).toBe(200);
    expect(specErrors(USERS, 'GET', '/users/search', 200, res.body)).toEqual([]);
    expect(res.body.count).toBe(3);
    expect(res.body.users.map((u: any) => u.id)).toEqual([agency.admin.id, alice.id, bob.id]);
    expect(res.body.users[1]).toMatchObject({
      id: alice.id,
      name: 'Alice Zed',
      firstName: 'Alice',
      lastName: 'Zed',
      email: 'alice@example.com',
      phone: '+15550001111',
      roles: { type: 'account', role: 'user', locationIds: [agency.locations[0]!.id] },
      deleted: false,
      deactivated: false,
    });
  });

  it('filters by location, type, role, ids and query; sorts and pages', async () => {
    const c = `companyId=${agency.company.id}`;
    const ids = async (q: string) => (await search(companyToken, `${c}&${q}`)).body.users.map((u: any) => u.id);
    // The agency admin (no location list) sees every location.
    expect(await ids(`locationId=${agency.locations[1]!.id}`)).toEqual([agency.admin.id, bob.id]);
    expect(await ids('type=agency')).toEqual([agency.admin.id]);
    expect(await ids('role=admin')).toEqual([agency.admin.id, bob.id]);
    expect(await ids(`ids=${bob.id},${alice.id}`)).toEqual([alice.id, bob.id]);
    expect(await ids('query=ALICE')).toEqual([alice.id]);
    expect(await ids('query=bob@')).toEqual([bob.id]);
    expect(await ids('sort=firstName&sortDirection=desc')).toEqual([bob.id, alice.id, agency.admin.id]);
    const page = await search(companyToken, `${c}&skip=1&limit=1`);
    expect(page.body.users.map((u: any) => u.id)).toEqual([alice.id]);
    expect(page.body.count).toBe(3);
  });

  it('a Location token sees the users of its location; other companies and locations are refused', async () => {
    const res = await search(locationToken, `companyId=${agency.company.id}`);
    expect(res.status).toBe(200);
    expect(res.body.users.map((u: any) => u.id)).toEqual([agency.admin.id, alice.id]);
    expect((await search(locationToken, `companyId=${agency.company.id}&locationId=${agency.locations[1]!.id}`)).status).toBe(403);
    const other = seedAgency(em.emu, 'Other Agency', ['Elsewhere']);
    expect((await search(companyToken, `companyId=${other.company.id}`)).status).toBe(403);
  });

  it('needs users.readonly', async () => {
    const narrow = await connect(base, app, agency.locations[0]!.id, { scope: 'contacts.readonly' });
    const res = await search(narrow.access_token, `companyId=${agency.company.id}`);
    expect(res.status).toBe(401);
    expect(res.body.message).toBe('The token is not authorized for this scope.');
  });
});

describe('GET /users/ and GET /users/{id}', () => {
  it('lists a location\'s users (deprecated route, Location token only)', async () => {
    const res = await call(base, 'GET', `/users/?locationId=${agency.locations[0]!.id}`, { token: locationToken });
    expect(res.status).toBe(200);
    expect(specErrors(USERS, 'GET', '/users/', 200, res.body)).toEqual([]);
    expect(res.body.users.map((u: any) => u.id)).toEqual([agency.admin.id, alice.id]);
    expect((await call(base, 'GET', '/users/', { token: locationToken })).status).toBe(422);
    expect((await call(base, 'GET', `/users/?locationId=${agency.locations[1]!.id}`, { token: locationToken })).status).toBe(403);
  });

  it('returns the user unwrapped; unknown or out-of-reach users are 400', async () => {
    const res = await call(base, 'GET', `/users/${alice.id}`, { token: companyToken });
    expect(res.status).toBe(200);
    expect(specErrors(USERS, 'GET', '/users/{userId}', 200, res.body)).toEqual([]);
    expect(res.body).toMatchObject({ id: alice.id, email: 'alice@example.com', roles: { role: 'user' } });
    expect(res.body.user).toBeUndefined();
    expect(typeof res.body.permissions.contactsEnabled).toBe('boolean');

    expect((await call(base, 'GET', `/users/${alice.id}`, { token: locationToken })).status).toBe(200);
    const outside = await call(base, 'GET', `/users/${bob.id}`, { token: locationToken });
    expect(outside.status).toBe(400);
    const unknown = await call(base, 'GET', '/users/nobodyNobodyNobody1', { token: companyToken });
    expect(unknown.status).toBe(400);
    expect(unknown.body).toMatchObject({ statusCode: 400, message: 'User not found' });
  });
});

describe('user writes', () => {
  const newUser = () => ({
    companyId: agency.company.id,
    firstName: 'Carol',
    lastName: 'New',
    email: 'carol@example.com',
    password: 'secret-123',
    phone: '+15550002222',
    type: 'account',
    role: 'user',
    locationIds: [agency.locations[0]!.id],
  });

  it('POST creates (201), rejects unknown or missing fields (422) and duplicate e-mails (400)', async () => {
    const res = await call(base, 'POST', '/users/', { token: companyToken, body: newUser() });
    expect(res.status).toBe(201);
    expect(specErrors(USERS, 'POST', '/users/', 201, res.body)).toEqual([]);
    expect(res.body).toMatchObject({ firstName: 'Carol', email: 'carol@example.com', roles: { type: 'account', locationIds: [agency.locations[0]!.id] } });
    expect(res.body.id).toMatch(/^[A-Za-z0-9]{20}$/);
    expect((await call(base, 'GET', `/users/${res.body.id}`, { token: locationToken })).status).toBe(200);

    const extra = await call(base, 'POST', '/users/', { token: companyToken, body: { ...newUser(), email: 'x@example.com', nickname: 'c' } });
    expect(extra.status).toBe(422);
    expect(extra.body.message).toContain('property nickname should not exist');
    const { firstName: _dropped, ...noName } = newUser();
    const missing = await call(base, 'POST', '/users/', { token: companyToken, body: { ...noName, email: 'y@example.com' } });
    expect(missing.status).toBe(422);
    expect(missing.body.message).toContain('firstName must be a string');
    const dup = await call(base, 'POST', '/users/', { token: companyToken, body: newUser() });
    expect(dup.status).toBe(400);
  });

  it('PUT updates and returns the user', async () => {
    const res = await call(base, 'PUT', `/users/${alice.id}`, { token: companyToken, body: { firstName: 'Alicia', locationIds: agency.locations.map((l) => l.id) } });
    expect(res.status).toBe(200);
    expect(specErrors(USERS, 'PUT', '/users/{userId}', 200, res.body)).toEqual([]);
    expect(res.body).toMatchObject({ id: alice.id, firstName: 'Alicia', name: 'Alicia Zed', lastName: 'Zed' });
    expect(res.body.roles.locationIds).toEqual(agency.locations.map((l) => l.id));
    const bad = await call(base, 'PUT', `/users/${alice.id}`, { token: companyToken, body: { deactivated: true } });
    expect(bad.status).toBe(422);
  });

  it('DELETE is queued: the user stays until the delay passes on the emulator clock', async () => {
    const res = await call(base, 'DELETE', `/users/${alice.id}`, { token: companyToken });
    expect(res.status).toBe(200);
    expect(specErrors(USERS, 'DELETE', '/users/{userId}', 200, res.body)).toEqual([]);
    expect(res.body).toMatchObject({
      succeded: true,
      message: 'Queued deleting user with e-mail alice@example.com and name Alice Zed. Will take effect in a few minutes.',
    });
    expect((await call(base, 'GET', `/users/${alice.id}`, { token: companyToken })).status).toBe(200);
    clock.advance(USER_DELETE_DELAY_MS - 1);
    expect((await search(companyToken, `companyId=${agency.company.id}`)).body.count).toBe(3);
    clock.advance(1);
    const after = await search(companyToken, `companyId=${agency.company.id}`);
    expect(after.body.count).toBe(2);
    expect(after.body.users.map((u: any) => u.id)).not.toContain(alice.id);
    expect((await call(base, 'GET', `/users/${alice.id}`, { token: companyToken })).status).toBe(400);
  });

  it('deactivated users stay visible with deleted: false and deactivated: true', async () => {
    updateUser(em.emu, bob.id, { deactivated: true });
    const res = await search(companyToken, `companyId=${agency.company.id}&ids=${bob.id}`);
    expect(res.body.users[0]).toMatchObject({ id: bob.id, deleted: false, deactivated: true });
    expect((await call(base, 'GET', `/users/${bob.id}`, { token: companyToken })).body.deactivated).toBe(true);
  });

  it('sends UserCreate, UserUpdate and UserDelete to the apps installed on the user\'s locations', async () => {
    const hook = await webhookReceiver();
    try {
      const hooked = seedApp(em.emu, { webhookUrl: hook.url });
      const l1 = agency.locations[0]!.id;
      const t = await connect(base, hooked, l1);
      const created = await call(base, 'POST', '/users/', { token: t.access_token, body: newUser() });
      expect(created.status).toBe(201);
      const id = created.body.id;
      const createEvent = await until(() => hook.events.find((e) => e.type === 'UserCreate' && e.id === id));
      expect(createEvent).toMatchObject({ locationId: l1, firstName: 'Carol', lastName: 'New', email: 'carol@example.com', phone: '+15550002222', role: 'user' });
      expect(typeof createEvent.permissions).toBe('object');

      await call(base, 'PUT', `/users/${id}`, { token: t.access_token, body: { lastName: 'Changed' } });
      expect(await until(() => hook.events.find((e) => e.type === 'UserUpdate' && e.id === id))).toMatchObject({ lastName: 'Changed', locationId: l1, deactivated: false });

      updateUser(em.emu, id, { deactivated: true });
      await until(() => hook.events.find((e) => e.type === 'UserUpdate' && e.id === id && e.deactivated === true));

      await call(base, 'DELETE', `/users/${id}`, { token: t.access_token });
      clock.advance(USER_DELETE_DELAY_MS);
      await call(base, 'GET', `/locations/${l1}`, { token: t.access_token });
      expect(await until(() => hook.events.find((e) => e.type === 'UserDelete' && e.id === id))).toMatchObject({ deleted: true, locationId: l1 });

      // Users of another location are not this app's business. Deliveries to an app keep emission
      // order, so once the marker event arrives anything emitted before it has arrived too.
      const quiet = createUser(em.emu, { ...newUser(), email: 'quiet@example.com', locationIds: [agency.locations[1]!.id], type: 'account', role: 'user' });
      updateUser(em.emu, bob.id, { firstName: 'Robert' });
      updateUser(em.emu, alice.id, { firstName: 'Marker' });
      await until(() => hook.events.find((e) => e.type === 'UserUpdate' && e.id === alice.id));
      expect(hook.events.some((e) => e.id === bob.id || e.id === quiet.id)).toBe(false);
    } finally {
      await hook.close();
    }
  });
});

describe('GET /locations/{locationId}', () => {
  it('returns the location with its settings to its Location token and to its company\'s token', async () => {
    const l1 = agency.locations[0]!;
    em.emu.world.locations[l1.id]!.settings.allowDuplicateContact = true;
    for (const token of [locationToken, companyToken]) {
      const res = await call(base, 'GET', `/locations/${l1.id}`, { token });
      expect(res.status).toBe(200);
      expect(specErrors(LOCATIONS, 'GET', '/locations/{locationId}', 200, res.body)).toEqual([]);
      expect(res.body.location).toMatchObject({
        id: l1.id,
        companyId: agency.company.id,
        name: 'Downtown',
        timezone: l1.timezone,
        settings: { allowDuplicateContact: true, allowDuplicateOpportunity: false, allowFacebookNameMerge: false, disableContactTimezone: false },
      });
    }
  });

  it('refuses other locations (403) and tokens without locations.readonly (401)', async () => {
    const other = seedAgency(em.emu, 'Other Agency', ['Elsewhere']);
    const res = await call(base, 'GET', `/locations/${other.locations[0]!.id}`, { token: companyToken });
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ statusCode: 403, message: 'The token does not have access to this location.' });
    expect((await call(base, 'GET', `/locations/${agency.locations[1]!.id}`, { token: locationToken })).status).toBe(403);
    const narrow = await connect(base, app, agency.locations[0]!.id, { scope: 'users.readonly' });
    expect((await call(base, 'GET', `/locations/${agency.locations[0]!.id}`, { token: narrow.access_token })).status).toBe(401);
  });
});
