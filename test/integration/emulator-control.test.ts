// The /__emulator control API over real HTTP: building a world, scripting API faults, the request
// log, reset and config (rate limits), and the SSO payload.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { call, control, testEmulator, until } from '../helpers/emulator.ts';
import type { RunningEmulator } from '../../emulator/server.ts';
import { decryptUserData } from '../../emulator/sso.ts';

let emu: RunningEmulator;

beforeEach(async () => {
  emu = await testEmulator();
});

afterEach(async () => {
  await emu.close();
});

/** A control call that may fail: returns status and body instead of throwing. */
async function raw(method: string, path: string, body?: unknown) {
  return call(emu.url, method, `/__emulator${path}`, { body, version: null });
}

async function newLocation(name = 'Main Street', extra: Record<string, unknown> = {}) {
  return control(emu.url, 'POST', '/locations', { name, ...extra });
}

function createContact(token: string, locationId: string, email: string) {
  return call(emu.url, 'POST', '/contacts/', { token, body: { locationId, firstName: 'Ann', email } });
}

describe('world building', () => {
  it('reports the base URL, the webhook public key and the config', async () => {
    const info = await control(emu.url, 'GET', '/info');
    expect(info.baseUrl).toBe(emu.url);
    expect(info.webhookPublicKeyPem).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect(info.config.rateLimit).toEqual({ burstMax: 100, burstWindowMs: 10_000, dailyMax: 200_000 });
  });

  it('creates a location with its own company and a working private integration token', async () => {
    const location = await newLocation('Main Street', { timezone: 'Europe/Paris' });
    expect(location).toEqual({
      id: expect.stringMatching(/^[A-Za-z0-9]{20}$/),
      companyId: expect.stringMatching(/^[A-Za-z0-9]{20}$/),
      name: 'Main Street',
      privateToken: expect.stringMatching(/^pit-/),
    });
    expect(emu.emu.world.companies[location.companyId]!.name).toBe('Main Street Agency');
    const res = await call(emu.url, 'GET', `/locations/${location.id}`, { token: location.privateToken });
    expect(res.status).toBe(200);
    expect(res.body.location).toMatchObject({ id: location.id, name: 'Main Street', timezone: 'Europe/Paris' });
  });

  it('creates locations in an existing company and patches them', async () => {
    const company = await control(emu.url, 'POST', '/companies', { name: 'Acme Agency', whitelabelDomain: 'app.acme.test' });
    expect(company).toMatchObject({ name: 'Acme Agency', whitelabelDomain: 'app.acme.test' });
    const location = await newLocation('Uptown', { companyId: company.id });
    expect(location.companyId).toBe(company.id);
    const patched = await control(emu.url, 'PATCH', `/locations/${location.id}`, {
      name: 'Uptown 2',
      active: false,
      allowDuplicateContact: true,
      email: 'uptown@example.com',
    });
    expect(patched).toMatchObject({ name: 'Uptown 2', active: false, email: 'uptown@example.com' });
    expect(patched.settings.allowDuplicateContact).toBe(true);
  });

  it('seeds contacts into a location for callers in another process, readable through the public API', async () => {
    const location = await newLocation('Seeded');
    expect(await control(emu.url, 'POST', `/locations/${location.id}/contacts/seed`, { count: 30 })).toEqual({ seeded: 30 });
    const res = await call(emu.url, 'POST', '/contacts/search', { token: location.privateToken, body: { locationId: location.id, pageLimit: 100 } });
    expect(res.status).toBe(200);
    expect(res.body.total).toBe(30);
    expect(new Set(res.body.contacts.map((c: { email: string }) => c.email)).size).toBe(30);
    // With `payloads`, each new contact's ContactUpdate as a webhook would carry it (load generators).
    const withPayloads = await control<{ seeded: number; payloads: Record<string, unknown>[] }>(emu.url, 'POST', `/locations/${location.id}/contacts/seed`, { count: 2, payloads: true });
    expect(withPayloads.seeded).toBe(2);
    const stored = await call(emu.url, 'GET', `/contacts/${withPayloads.payloads[1]!.id}`, { token: location.privateToken });
    expect(withPayloads.payloads[1]).toMatchObject({ type: 'ContactUpdate', locationId: location.id, email: stored.body.contact.email, phone: stored.body.contact.phone });
    expect((await raw('POST', `/locations/${location.id}/contacts/seed`, { count: 0 })).status).toBe(400);
    expect((await raw('POST', `/locations/${location.id}/contacts/seed`, { count: 1, payload: true })).status).toBe(400);
    expect((await raw('POST', '/locations/nope/contacts/seed', { count: 1 })).status).toBe(404);
  });

  it('answers bad input with 400 and a message naming the field, unknown ids with 404', async () => {
    const typo = await raw('POST', '/locations', { name: 'X', allowDuplicateContacts: true });
    expect(typo.status).toBe(400);
    expect(typo.body.error).toMatch(/allowDuplicateContacts/);
    const wrongType = await raw('PATCH', '/config', { rateLimit: { burstMax: 'three' } });
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.error).toMatch(/rateLimit\.burstMax/);
    expect((await raw('POST', '/locations', { name: 'X', companyId: 'nope' })).status).toBe(404);
    expect((await raw('PATCH', '/locations/nope', { name: 'Y' })).status).toBe(404);
    const broken = await fetch(`${emu.url}/__emulator/companies`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"name":',
    });
    expect(broken.status).toBe(400);
    expect(typeof (await broken.json()).error).toBe('string');
  });

  it('creates, updates and deletes users', async () => {
    const location = await newLocation();
    const user = await control(emu.url, 'POST', '/users', {
      companyId: location.companyId,
      firstName: 'Lou',
      lastName: 'Reed',
      email: 'lou@example.com',
      type: 'account',
      role: 'user',
      locationIds: [location.id],
    });
    expect(user).toMatchObject({ firstName: 'Lou', email: 'lou@example.com', deactivated: false });
    expect(user.roles).toMatchObject({ type: 'account', role: 'user', locationIds: [location.id] });
    const updated = await control(emu.url, 'PATCH', `/users/${user.id}`, { role: 'admin', deactivated: true });
    expect(updated).toMatchObject({ deactivated: true, roles: { role: 'admin' } });
    expect(await control(emu.url, 'DELETE', `/users/${user.id}`)).toEqual({});
    expect((await raw('PATCH', `/users/${user.id}`, { role: 'user' })).status).toBe(404);
    const other = await newLocation('Elsewhere');
    const foreign = await raw('POST', '/users', {
      companyId: location.companyId,
      firstName: 'A',
      lastName: 'B',
      email: 'a@example.com',
      type: 'account',
      role: 'user',
      locationIds: [other.id],
    });
    expect(foreign.status).toBe(400);
    const badEmail = await raw('POST', '/users', {
      companyId: location.companyId,
      firstName: 'A',
      lastName: 'B',
      email: 'not-an-email',
      type: 'account',
      role: 'user',
    });
    expect(badEmail.status).toBe(400);
    expect(badEmail.body.error).toMatch(/email/);
  });

  it('registers and edits apps; installs and uninstalls them', async () => {
    const created = await control(emu.url, 'POST', '/apps', {
      name: 'Tandem',
      redirectUris: ['http://127.0.0.1:3000/oauth/callback'],
      scopes: ['contacts.readonly'],
      sharedSecret: 'sso-secret',
    });
    expect(created).toMatchObject({ name: 'Tandem', sharedSecret: 'sso-secret', distribution: 'both' });
    expect(created.clientId).toMatch(new RegExp(`^${created.appId}-[a-z0-9]{8}$`));
    expect(created.clientSecret).toMatch(/^[0-9a-f-]{36}$/);
    const patched = await control(emu.url, 'PATCH', `/apps/${created.appId}`, { customPageUrl: 'http://127.0.0.1:3000/panel/' });
    expect(patched.customPageUrl).toBe('http://127.0.0.1:3000/panel/');

    const location = await newLocation();
    const inst = await control(emu.url, 'POST', '/installs', { appId: created.appId, locationId: location.id });
    expect(inst).toMatchObject({ appId: created.appId, locationId: location.id, companyId: location.companyId });
    expect(emu.emu.appsInstalledOn(location.id).map((a) => a.appId)).toEqual([created.appId]);
    expect(await control(emu.url, 'DELETE', '/installs', { appId: created.appId, locationId: location.id })).toEqual({});
    expect(emu.emu.appsInstalledOn(location.id)).toEqual([]);
    expect((await raw('DELETE', '/installs', { appId: created.appId, locationId: location.id })).status).toBe(404);

    const agency = await control(emu.url, 'POST', '/installs', {
      appId: created.appId,
      companyId: location.companyId,
      installToFutureLocations: true,
    });
    expect(agency).toMatchObject({ companyId: location.companyId, installToFutureLocations: true });
    const later = await newLocation('Later', { companyId: location.companyId });
    expect(emu.emu.appsInstalledOn(later.id).map((a) => a.appId)).toEqual([created.appId]);

    expect((await raw('POST', '/installs', { appId: created.appId, locationId: location.id, companyId: location.companyId })).status).toBe(400);
    expect((await raw('POST', '/installs', { appId: 'nope', locationId: location.id })).status).toBe(404);
  });
});

describe('API faults', () => {
  it('answers N matching requests with the scripted status, headers and body, then lets requests through', async () => {
    const location = await newLocation();
    const other = await newLocation('Other');
    const rule = await control(emu.url, 'POST', '/faults', {
      method: 'POST',
      path: '/contacts/',
      locationId: location.id,
      status: 503,
      headers: { 'retry-after': '7' },
      body: { message: 'scripted outage' },
      times: 2,
    });
    expect(rule).toMatchObject({ id: expect.any(Number), remaining: 2 });
    // Another location is not affected.
    expect((await createContact(other.privateToken, other.id, 'o@example.com')).status).toBe(201);
    for (let i = 0; i < 2; i++) {
      const res = await createContact(location.privateToken, location.id, `a${i}@example.com`);
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('7');
      expect(res.body).toEqual({ message: 'scripted outage' });
    }
    expect((await createContact(location.privateToken, location.id, 'b@example.com')).status).toBe(201);
    expect((await control(emu.url, 'GET', '/faults')).faults).toEqual([]);
  });

  it('a location’s fault matches every request of that location, contacts by id included, and the log names it', async () => {
    const location = await newLocation();
    const other = await newLocation('Other');
    const mine = (await createContact(location.privateToken, location.id, 'mine@example.com')).body.contact.id as string;
    const theirs = (await createContact(other.privateToken, other.id, 'theirs@example.com')).body.contact.id as string;
    await control(emu.url, 'DELETE', '/requests');
    await control(emu.url, 'POST', '/faults', { locationId: location.id, status: 503, body: { message: 'scripted outage' }, times: 3 });
    // GET and PUT by id name no location: the token's is the request's.
    const get = await call(emu.url, 'GET', `/contacts/${mine}`, { token: location.privateToken });
    expect([get.status, get.body]).toEqual([503, { message: 'scripted outage' }]);
    expect((await call(emu.url, 'PUT', `/contacts/${mine}`, { token: location.privateToken, body: { firstName: 'Bea' } })).status).toBe(503);
    // Another location's requests are not affected.
    expect((await call(emu.url, 'GET', `/contacts/${theirs}`, { token: other.privateToken })).status).toBe(200);
    expect((await call(emu.url, 'GET', `/locations/${location.id}`, { token: location.privateToken })).status).toBe(503);
    expect(emu.emu.contact(mine)).toMatchObject({ firstName: 'Ann' });
    expect((await control(emu.url, 'GET', '/faults')).faults).toEqual([]);

    const log = (await control(emu.url, 'GET', `/requests?locationId=${location.id}`)).requests;
    expect(log).toEqual([
      expect.objectContaining({ method: 'GET', path: `/contacts/${mine}`, status: 503, fault: expect.any(Number), locationId: location.id, tokenKind: 'private' }),
      expect.objectContaining({ method: 'PUT', path: `/contacts/${mine}`, status: 503, fault: expect.any(Number), locationId: location.id }),
      expect.objectContaining({ method: 'GET', path: `/locations/${location.id}`, status: 503, fault: expect.any(Number), locationId: location.id }),
    ]);
  });

  it('delays an answer', async () => {
    const location = await newLocation();
    await control(emu.url, 'POST', '/faults', { path: '/contacts/', delayMs: 300 });
    const started = Date.now();
    const res = await createContact(location.privateToken, location.id, 'a@example.com');
    expect(res.status).toBe(201);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('lets a delayed request go on when its fault is cleared, so a test holds one as long as it needs', async () => {
    const location = await newLocation();
    const held = await control(emu.url, 'POST', '/faults', { path: '/contacts/', delayMs: 600_000 });
    const other = await control(emu.url, 'POST', '/faults', { path: '/users/', delayMs: 600_000 });
    const answered = createContact(location.privateToken, location.id, 'held@example.com');
    await until(() => emu.emu.delayed.size === 1, 'the request held');
    expect([...emu.emu.contactIds(location.id)]).toEqual([]);
    // Clearing another fault leaves it held; clearing its own (used up by then) lets it go.
    await control(emu.url, 'DELETE', `/faults/${other.id}`);
    expect(emu.emu.delayed.size).toBe(1);
    await control(emu.url, 'DELETE', `/faults/${held.id}`);
    expect((await answered).status).toBe(201);
    expect(emu.emu.delayed.size).toBe(0);
    expect((await raw('DELETE', `/faults/${held.id}`)).status).toBe(404);

    // Clearing all lets every held request go.
    await control(emu.url, 'POST', '/faults', { path: '/contacts/', delayMs: 600_000 });
    const second = createContact(location.privateToken, location.id, 'held2@example.com');
    await until(() => emu.emu.delayed.size === 1, 'the second request held');
    await control(emu.url, 'DELETE', '/faults');
    expect((await second).status).toBe(201);
  });

  it('drops the connection before handling: the client sees a socket error and nothing is written', async () => {
    const location = await newLocation();
    await control(emu.url, 'POST', '/faults', { method: 'POST', path: '^/contacts/?$', drop: true });
    await expect(createContact(location.privateToken, location.id, 'a@example.com')).rejects.toThrow(/fetch failed/);
    expect([...emu.emu.contactIds(location.id)]).toEqual([]);
    const log = await control(emu.url, 'GET', `/requests?locationId=${location.id}`);
    expect(log.requests).toEqual([expect.objectContaining({ method: 'POST', status: 0, fault: expect.any(Number) })]);
  });

  it('drops the connection after handling: the client sees a socket error but the write happened', async () => {
    const location = await newLocation();
    await control(emu.url, 'POST', '/faults', { method: 'POST', path: '/contacts/', dropAfterHandling: true });
    await expect(createContact(location.privateToken, location.id, 'a@example.com')).rejects.toThrow(/fetch failed/);
    const ids = [...emu.emu.contactIds(location.id)];
    expect(ids).toHaveLength(1);
    expect(emu.emu.contact(ids[0]!)).toMatchObject({ email: 'a@example.com' });
    const log = await control(emu.url, 'GET', `/requests?locationId=${location.id}`);
    expect(log.requests).toEqual([expect.objectContaining({ method: 'POST', status: 0, fault: expect.any(Number) })]);
  });

  it('rejects a rule without an effect or with a bad regular expression, and clears rules', async () => {
    expect((await raw('POST', '/faults', { path: '/contacts/' })).status).toBe(400);
    expect((await raw('POST', '/faults', { path: '^(', status: 500 })).status).toBe(400);
    await control(emu.url, 'POST', '/faults', { status: 500, times: 10 });
    expect((await control(emu.url, 'GET', '/faults')).faults).toHaveLength(1);
    await control(emu.url, 'DELETE', '/faults');
    expect((await control(emu.url, 'GET', '/faults')).faults).toEqual([]);
  });
});

describe('request log', () => {
  it('filters by location, path and sequence, and clears', async () => {
    const a = await newLocation('A');
    const b = await newLocation('B');
    await createContact(a.privateToken, a.id, 'a1@example.com');
    await createContact(b.privateToken, b.id, 'b1@example.com');
    await call(emu.url, 'GET', `/locations/${a.id}`, { token: a.privateToken });

    const all = (await control(emu.url, 'GET', '/requests')).requests;
    expect(all.map((r: any) => r.path)).toEqual(['/contacts/', '/contacts/', `/locations/${a.id}`]);
    expect(all[0]).toMatchObject({ method: 'POST', status: 201, locationId: a.id, tokenKind: 'private' });

    const ofA = (await control(emu.url, 'GET', `/requests?locationId=${a.id}`)).requests;
    expect(ofA.map((r: any) => r.path)).toEqual(['/contacts/', `/locations/${a.id}`]);
    const contacts = (await control(emu.url, 'GET', '/requests?path=/contacts/')).requests;
    expect(contacts).toHaveLength(2);
    const since = (await control(emu.url, 'GET', `/requests?since=${all[1].seq}`)).requests;
    expect(since.map((r: any) => r.seq)).toEqual([all[2].seq]);

    await control(emu.url, 'DELETE', '/requests');
    expect((await control(emu.url, 'GET', '/requests')).requests).toEqual([]);
  });
});

describe('reset and config', () => {
  it('shrinking the burst limit gives a 429 with the X-RateLimit headers', async () => {
    const location = await newLocation();
    const config = await control(emu.url, 'PATCH', '/config', { rateLimit: { burstMax: 3 } });
    expect(config.rateLimit).toEqual({ burstMax: 3, burstWindowMs: 10_000, dailyMax: 200_000 });
    const get = () => call(emu.url, 'GET', `/locations/${location.id}`, { token: location.privateToken });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await get()).status);
    expect(statuses).toEqual([200, 200, 200]);
    const limited = await get();
    expect(limited.status).toBe(429);
    expect(limited.body).toMatchObject({ statusCode: 429 });
    expect(limited.headers.get('x-ratelimit-max')).toBe('3');
    expect(limited.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(limited.headers.get('x-ratelimit-interval-milliseconds')).toBe('10000');
    expect(limited.headers.get('x-ratelimit-limit-daily')).toBe('200000');
    expect(limited.headers.get('x-ratelimit-daily-remaining')).toBe(String(200_000 - 3));
  });

  it('reset empties the world, the logs and the rate budgets', async () => {
    const location = await newLocation();
    await control(emu.url, 'PATCH', '/config', { rateLimit: { burstMax: 1 } });
    await call(emu.url, 'GET', `/locations/${location.id}`, { token: location.privateToken });
    expect((await call(emu.url, 'GET', `/locations/${location.id}`, { token: location.privateToken })).status).toBe(429);
    await control(emu.url, 'POST', '/faults', { status: 500, times: 5 });

    expect(await control(emu.url, 'POST', '/reset')).toEqual({});
    expect(emu.emu.world.locations).toEqual({});
    expect((await control(emu.url, 'GET', '/requests')).requests).toEqual([]);
    expect((await control(emu.url, 'GET', '/faults')).faults).toEqual([]);
    // The old token is gone with the world (401), and a new location gets a fresh budget.
    expect((await call(emu.url, 'GET', `/locations/${location.id}`, { token: location.privateToken })).status).toBe(401);
    const fresh = await newLocation();
    expect((await call(emu.url, 'GET', `/locations/${fresh.id}`, { token: fresh.privateToken })).status).toBe(200);
  });
});

describe('SSO payload', () => {
  async function world() {
    const location = await newLocation();
    const app = await control(emu.url, 'POST', '/apps', {
      name: 'Tandem',
      redirectUris: ['http://127.0.0.1/cb'],
      scopes: ['contacts.readonly'],
      sharedSecret: 'the-shared-secret',
    });
    const user = (type: 'agency' | 'account', role: 'admin' | 'user', locationIds: string[], email: string) =>
      control(emu.url, 'POST', '/users', { companyId: location.companyId, firstName: 'Ada', lastName: role, email, type, role, locationIds });
    return {
      location,
      app,
      agencyAdmin: await user('agency', 'admin', [], 'boss@example.com'),
      locationUser: await user('account', 'user', [location.id], 'clerk@example.com'),
    };
  }

  it('encrypts the user context with the app shared secret', async () => {
    const { location, app, agencyAdmin, locationUser } = await world();
    const q = (userId: string) => `/sso?appId=${app.appId}&userId=${userId}&locationId=${location.id}`;

    const agency = decryptUserData((await control(emu.url, 'GET', q(agencyAdmin.id))).payload, 'the-shared-secret');
    expect(agency).toEqual({
      userId: agencyAdmin.id,
      companyId: location.companyId,
      role: 'admin',
      type: 'agency',
      activeLocation: location.id,
      userName: 'Ada admin',
      email: 'boss@example.com',
    });
    const plain = decryptUserData((await control(emu.url, 'GET', q(locationUser.id))).payload, 'the-shared-secret');
    expect(plain).toMatchObject({ userId: locationUser.id, role: 'user', type: 'location', activeLocation: location.id });
  });

  it('refuses unknown ids (404), users who cannot open the location (403) and missing parameters (400)', async () => {
    const { location, app, locationUser } = await world();
    const elsewhere = await newLocation('Elsewhere', { companyId: location.companyId });
    const get = (query: string) => raw('GET', `/sso?${query}`);
    expect((await get(`appId=nope&userId=${locationUser.id}&locationId=${location.id}`)).status).toBe(404);
    expect((await get(`appId=${app.appId}&userId=nope&locationId=${location.id}`)).status).toBe(404);
    expect((await get(`appId=${app.appId}&userId=${locationUser.id}&locationId=nope`)).status).toBe(404);
    const denied = await get(`appId=${app.appId}&userId=${locationUser.id}&locationId=${elsewhere.id}`);
    expect(denied.status).toBe(403);
    expect(denied.body.error).toMatch(/cannot open/);
    expect((await get(`appId=${app.appId}`)).status).toBe(400);
  });
});
