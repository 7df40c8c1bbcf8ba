// The location API client (server/highlevel/contacts.ts) against the emulator over real HTTP: each
// method, the budget gate, 429, a stale token (also with the real token vault) and a dropped connection.
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { upsertInstallation } from '../../db/installations.ts';
import { readTokens, saveGrant } from '../../db/tokens.ts';
import { exchangeCode } from '../../server/highlevel/oauth.ts';
import { createTokenProvider } from '../../server/highlevel/token-provider.ts';
import { createTokenCipher } from '../../server/security/token-cipher.ts';
import type { RunningEmulator } from '../../emulator/server.ts';
import { createLocationApi, DeferredError, type LocationApi, type LocationTokenSource } from '../../server/highlevel/contacts.ts';
import { classifyHighLevelError, HighLevelError } from '../../server/highlevel/http.ts';
import { RateBudget } from '../../server/highlevel/rate-budget.ts';
import { control, ManualClock, testEmulator } from '../helpers/emulator.ts';
import { testLocationApi } from '../helpers/location-api.ts';
import { addLocation, addOauthToken } from '../helpers/world.ts';
import { installViaConsent, REDIRECT_URI, seedAgency, seedApp } from '../helpers/oauth.ts';
import { memoryDatabase } from '../helpers/database.ts';

const SCOPES = ['contacts.readonly', 'contacts.write', 'users.readonly'];

let emulator: RunningEmulator;
let clock: ManualClock;
let locationId: string;
let companyId: string;
let budget: RateBudget;

function newToken(): string {
  return addOauthToken(emulator.emu, { authClass: 'Location', companyId, locationId, scopes: SCOPES });
}

function apiWith(tokens: LocationTokenSource): LocationApi {
  return testLocationApi(emulator.url, { locationId, clock, tokens, budget });
}

function fixedToken(): LocationApi {
  const token = newToken();
  return apiWith({ locationToken: async () => token });
}

async function requests(path: string): Promise<Array<{ method: string; path: string; status: number }>> {
  return (await control<{ requests: Array<{ method: string; path: string; status: number }> }>(emulator.url, 'GET', `/requests?path=${encodeURIComponent(path)}`)).requests;
}

beforeEach(async () => {
  clock = new ManualClock();
  emulator = await testEmulator({ clock });
  const added = addLocation(emulator.emu, { name: 'Cedar Dental' });
  locationId = added.location.id;
  companyId = added.companyId;
  budget = new RateBudget({ clock });
});

afterEach(async () => {
  await emulator.close();
});

describe('contacts', () => {
  it('creates, reads, updates, tags, searches and deletes', async () => {
    const api = fixedToken();
    const created = await api.createContact({ locationId, firstName: 'Ana', email: 'ana@example.com', phone: '+14155550100', tags: ['vip'] });
    if (!('contact' in created)) throw new Error('expected a created contact');
    const id = created.contact.id;
    expect(created.contact).toMatchObject({ firstName: 'Ana', email: 'ana@example.com', tags: ['vip'] });

    expect(await api.getContact(id)).toMatchObject({ id, firstName: 'Ana' });
    expect(await api.getContact('nOpEnOpEnOpEnOpEnOpE')).toBeNull();

    const updated = await api.updateContact(id, { lastName: 'Lima', city: 'Porto' });
    expect(updated).toMatchObject({ id, firstName: 'Ana', lastName: 'Lima', city: 'Porto', tags: ['vip'] });

    expect(await api.addTags(id, ['lead', 'vip'])).toEqual(['vip', 'lead']);
    expect(await api.removeTags(id, ['vip'])).toEqual(['lead']);
    expect((await api.getContact(id))?.tags).toEqual(['lead']);

    clock.advance(1000);
    await api.createContact({ locationId, firstName: 'Bruno', email: 'bruno@example.com' });
    const byEmail = await api.searchContacts({ filters: [{ field: 'email', operator: 'eq', value: 'ana@example.com' }], pageLimit: 10 });
    expect(byEmail.total).toBe(1);
    expect(byEmail.contacts.map((c) => c.id)).toEqual([id]);

    // Paging with the cursor each contact carries, sorted by creation.
    const page1 = await api.searchContacts({ sort: [{ field: 'dateAdded', direction: 'asc' }], pageLimit: 1 });
    expect(page1.total).toBe(2);
    expect(page1.contacts[0]?.id).toBe(id);
    const page2 = await api.searchContacts({ sort: [{ field: 'dateAdded', direction: 'asc' }], pageLimit: 1, searchAfter: page1.contacts[0]?.searchAfter });
    expect(page2.contacts[0]?.firstName).toBe('Bruno');

    await api.deleteContact(id);
    expect(await api.getContact(id)).toBeNull();
    // Deleting what is already gone is not an error.
    await api.deleteContact(id);
  });

  it('returns the duplicate answer instead of throwing, and finds duplicates by email, then phone', async () => {
    const api = fixedToken();
    const first = await api.createContact({ locationId, firstName: 'Ana', email: 'ana@example.com', phone: '+14155550100' });
    if (!('contact' in first)) throw new Error('expected a created contact');

    const again = await api.createContact({ locationId, firstName: 'Other', email: 'ANA@example.com' });
    expect(again).toEqual({ duplicate: { contactId: first.contact.id, matchingField: 'email' } });
    const byPhone = await api.createContact({ locationId, firstName: 'Other', phone: '+14155550100' });
    expect(byPhone).toEqual({ duplicate: { contactId: first.contact.id, matchingField: 'phone' } });

    expect((await api.findDuplicate({ email: 'ana@example.com' }))?.id).toBe(first.contact.id);
    expect((await api.findDuplicate({ email: 'nobody@example.com', phone: '+14155550100' }))?.id).toBe(first.contact.id);
    expect(await api.findDuplicate({ email: 'nobody@example.com', phone: '+14155550199' })).toBeNull();
    expect(await api.findDuplicate({})).toBeNull();
    // One question with both; a contact found by its phone alone is checked by email on its own (1 + 2 + 1 + 0).
    const asked = await requests('/contacts/search/duplicate');
    expect(asked).toHaveLength(4);
  });

  it('prefers the email match when a location that matches phone first answers with the phone match', async () => {
    const api = fixedToken();
    const byEmail = await api.createContact({ locationId, firstName: 'Eve', email: 'eve@example.com' });
    const byPhone = await api.createContact({ locationId, firstName: 'Pat', phone: '+14155550177' });
    if (!('contact' in byEmail) || !('contact' in byPhone)) throw new Error('expected created contacts');
    // HighLevel configured phone first answers the question with both with the phone's contact.
    await control(emulator.url, 'POST', '/faults', { method: 'GET', path: '/contacts/search/duplicate', status: 200, body: { contact: byPhone.contact }, times: 1 });
    expect((await api.findDuplicate({ email: 'EVE@example.com', phone: '+14155550177' }))?.id).toBe(byEmail.contact.id);
    // A contact carrying both is the answer at once.
    const both = await api.findDuplicate({ email: 'eve@example.com', phone: '+14155550100' });
    expect(both?.id).toBe(byEmail.contact.id);
  });

  it('lists the location users with the Location token', async () => {
    const api = fixedToken();
    const ann = await control<{ id: string }>(emulator.url, 'POST', '/users', {
      companyId, firstName: 'Ann', lastName: 'Owner', email: 'ann@clinic.example', type: 'account', role: 'user', locationIds: [locationId],
    });
    const bob = await control<{ id: string }>(emulator.url, 'POST', '/users', {
      companyId, firstName: 'Bob', lastName: 'Gone', email: 'bob@clinic.example', type: 'account', role: 'admin', locationIds: [locationId],
    });
    await control(emulator.url, 'PATCH', `/users/${bob.id}`, { deactivated: true });
    await control(emulator.url, 'POST', '/users', {
      companyId, firstName: 'Elsewhere', lastName: 'User', email: 'else@clinic.example', type: 'account', role: 'user', locationIds: [],
    });
    const users = (await api.listUsers()).sort((a, b) => a.email.localeCompare(b.email));
    expect(users).toEqual([
      { id: ann.id, email: 'ann@clinic.example', name: 'Ann Owner', active: true, deleted: false, role: 'user' },
      { id: bob.id, email: 'bob@clinic.example', name: 'Bob Gone', active: false, deleted: false, role: 'admin' },
    ]);
    const [call] = await requests('/users');
    expect(call).toMatchObject({ method: 'GET', path: '/users/', status: 200 });
  });
});

describe('budget, rate limits and failures', () => {
  it('defers at the budget gate before HighLevel would answer 429', async () => {
    await control(emulator.url, 'PATCH', '/config', { rateLimit: { burstMax: 5 } });
    const api = fixedToken();
    let deferred: DeferredError | undefined;
    let sent = 0;
    for (let i = 0; i < 10 && !deferred; i++) {
      try {
        await api.getContact('nOpEnOpEnOpEnOpEnOpE');
        sent++;
      } catch (err) {
        if (!(err instanceof DeferredError)) throw err;
        deferred = err;
      }
    }
    expect(deferred?.reason).toBe('burst');
    expect(deferred!.retryAt).toBeGreaterThan(clock.now());
    expect(sent).toBeGreaterThan(0);
    expect(sent).toBeLessThan(5);
    const log = await requests('/contacts/');
    expect(log).toHaveLength(sent);
    expect(log.every((r) => r.status !== 429)).toBe(true);

    // At retryAt the gate lets the next call through, and HighLevel accepts it.
    clock.set(deferred!.retryAt);
    expect(await api.getContact('nOpEnOpEnOpEnOpEnOpE')).toBeNull();
  });

  it('turns a 429 into a DeferredError and blocks the location until retryAt', async () => {
    const api = fixedToken();
    await control(emulator.url, 'POST', '/faults', { method: 'GET', path: '/contacts/', status: 429, headers: { 'retry-after': '30' }, body: { statusCode: 429, message: 'Too Many Requests' }, times: 1 });
    const err = await api.getContact('nOpEnOpEnOpEnOpEnOpE').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeferredError);
    expect((err as DeferredError).reason).toBe('rate_limited');
    expect((err as DeferredError).retryAt).toBe(clock.now() + 30_000);
    expect(budget.snapshot(clock.now()).blockedUntil).toBe(clock.now() + 30_000);

    // Blocked: the next call is refused without a request.
    const before = (await requests('/contacts/')).length;
    await expect(api.searchContacts({ pageLimit: 1 })).rejects.toBeInstanceOf(DeferredError);
    expect(await requests('/contacts/')).toHaveLength(before);

    clock.advance(30_000);
    expect((await api.searchContacts({ pageLimit: 1 })).total).toBe(0);
  });

  it('asks for a fresh token once on "Invalid JWT" and retries', async () => {
    let current = newToken();
    let refreshes = 0;
    const api = apiWith({
      locationToken: async () => current,
      refreshLocationToken: async (_id, rejected) => {
        refreshes++;
        expect(rejected).toBe(current);
        current = newToken();
        return current;
      },
    });
    emulator.emu.world.accessTokens[current]!.revoked = true;
    expect(await api.searchContacts({ pageLimit: 1 })).toEqual({ contacts: [], total: 0 });
    expect(refreshes).toBe(1);
    expect((await requests('/contacts/search')).map((r) => r.status)).toEqual([401, 200]);
  });

  it('retries a rejected token once only, then surfaces the 401', async () => {
    let refreshes = 0;
    const revoked = () => {
      const t = newToken();
      emulator.emu.world.accessTokens[t]!.revoked = true;
      return t;
    };
    const api = apiWith({ locationToken: async () => revoked(), refreshLocationToken: async () => (refreshes++, revoked()) });
    const err = await api.searchContacts({ pageLimit: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HighLevelError);
    expect((err as HighLevelError).status).toBe(401);
    expect(refreshes).toBe(1);
    expect((await requests('/contacts/search')).map((r) => r.status)).toEqual([401, 401]);
  });

  it('without a forced refresh, asks the provider again once (another process may have refreshed)', async () => {
    const api = fixedToken();
    await control(emulator.url, 'POST', '/faults', { path: '/contacts/search', status: 401, body: { statusCode: 401, message: 'Invalid JWT' }, times: 1 });
    expect((await api.searchContacts({ pageLimit: 1 })).total).toBe(0);
    expect((await requests('/contacts/search')).map((r) => r.status)).toEqual([401, 200]);
  });

  it('reports a dropped connection as a retryable error and frees the gate', async () => {
    const api = fixedToken();
    await control(emulator.url, 'POST', '/faults', { method: 'POST', path: '/contacts/', drop: true, times: 1 });
    const err = await api.createContact({ locationId, firstName: 'Ana' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HighLevelError);
    expect((err as HighLevelError).kind).toBe('network');
    expect(classifyHighLevelError(err)).toBe('retry');
    expect(budget.snapshot(clock.now()).inFlight).toBe(0);
    // Dropped before handling: nothing was created, and the next attempt goes through.
    expect((await api.searchContacts({ pageLimit: 10 })).total).toBe(0);
    expect('contact' in (await api.createContact({ locationId, firstName: 'Ana' }))).toBe(true);
  });

  it('records a validation 422 as a HighLevelError the caller classifies as permanent', async () => {
    const api = fixedToken();
    const err = await api.createContact({ locationId, firstName: 'Ana', bogus: 1 } as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HighLevelError);
    expect((err as HighLevelError).status).toBe(422);
    expect((err as HighLevelError).message).toMatch(/bogus should not exist/);
    expect(classifyHighLevelError(err)).toBe('record');
  });
});

describe('with the real token vault', () => {
  it('replaces a token HighLevel refused before its expiry with one refresh, then retries', async () => {
    const app = seedApp(emulator.emu);
    const agency = seedAgency(emulator.emu, 'Acme Agency', ['Downtown']);
    const location = agency.locations[0]!.id;
    const endpoints = { apiUrl: emulator.url, clientId: app.clientId, clientSecret: app.clientSecret };
    const database = memoryDatabase();
    try {
      const cipher = createTokenCipher(randomBytes(32));
      const consent = await installViaConsent(emulator.url, app, location);
      const grant = await exchangeCode(endpoints, consent.code!, REDIRECT_URI, clock.now());
      saveGrant(database.db, cipher, grant, clock.now());
      upsertInstallation(database.db, { locationId: location, companyId: grant.companyId, now: clock.now() });
      const tokens = createTokenProvider({ db: database.db, cipher, clock, endpoints, random: () => 0.5, onStatus: () => {} });
      const api = createLocationApi({ endpoints, tokens, budget, clock, locationId: location });
      await control(emulator.url, 'DELETE', '/requests');

      // Revoked early (e.g. HighLevel rotated it): the stored token is young, so only the 401 says so.
      emulator.emu.world.accessTokens[grant.accessToken]!.revoked = true;
      expect((await api.searchContacts({ pageLimit: 1 })).total).toBe(0);
      expect((await requests('/contacts/search')).map((r) => r.status)).toEqual([401, 200]);
      expect((await requests('/oauth/token')).map((r) => r.status)).toEqual([200]);
      const stored = readTokens(database.db, cipher, { type: 'location', id: location })!;
      expect(stored.accessToken).not.toBe(grant.accessToken);
      // The new token is used from now on, without another refresh.
      expect((await api.searchContacts({ pageLimit: 1 })).total).toBe(0);
      expect(await requests('/oauth/token')).toHaveLength(1);
    } finally {
      database.close();
    }
  });
});
