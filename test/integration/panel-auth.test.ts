// The panel's sign-in over real HTTP (T20): HighLevel's encrypted user data, made by the emulator,
// is exchanged for a session; every way it can be wrong gives the same 401 and no token, except
// that genuine user data learns that Tandem is not installed on its location, that its user is
// no longer active there, or that it comes from the agency view and names no sub-account (403); the session is Bearer-only and short-lived, and the exchange is
// rate-limited per client IP. Installations are written through db/installations.ts: the install
// flow has its own tests.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../server/app.ts';
import { loadConfig } from '../../server/config.ts';
import { migrate, openDatabase, type Database } from '../../db/client.ts';
import { upsertHighLevelUsers } from '../../db/highlevel-users.ts';
import { setInstallationStatus, upsertInstallation } from '../../db/installations.ts';
import { NOT_INSTALLED, SESSION_TTL_MS, SIGN_IN_FAILED, USER_INACTIVE } from '../../server/auth/session.ts';
import { EXCHANGE_LIMIT, NEVER_INSTALLED, NO_SUB_ACCOUNT } from '../../server/routes/panel-api.ts';
import { encryptUserData, encryptWithPassphrase, type SsoUserData } from '../../emulator/sso.ts';
import type { RunningEmulator } from '../../emulator/server.ts';
import { ManualClock, control, testEmulator } from '../helpers/emulator.ts';

const KEY = Buffer.alloc(32, 5).toString('base64');
const PUBLIC_URL = 'https://tandem.test';

interface Ids {
  id: string;
  companyId: string;
}

let dir: string;
let emulator: RunningEmulator;
let database: Database;
let app: FastifyInstance;
let url: string;
const clock = new ManualClock();
let sharedSecret: string;
let env: Record<string, string>;
let appId: string;
const w = {} as {
  companyA: string;
  companyB: string;
  installed: Ids;
  notInstalled: Ids;
  uninstalled: Ids;
  otherCompany: Ids;
  admin: string;
  plainUser: string;
  userB: string;
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tandem-panel-auth-'));
  emulator = await testEmulator();
  const base = emulator.url;
  w.companyA = (await control(base, 'POST', '/companies', { name: 'Acme Agency' })).id;
  w.companyB = (await control(base, 'POST', '/companies', { name: 'Rival Agency' })).id;
  const location = async (name: string, companyId: string): Promise<Ids> => {
    const l = await control(base, 'POST', '/locations', { name, companyId });
    return { id: l.id, companyId: l.companyId };
  };
  w.installed = await location('Downtown Dental', w.companyA);
  w.notInstalled = await location('Uptown Dental', w.companyA);
  w.uninstalled = await location('Old Town Dental', w.companyA);
  w.otherCompany = await location('Rival Clinic', w.companyB);
  const user = async (companyId: string, firstName: string, type: 'agency' | 'account', role: 'admin' | 'user', locationIds: string[]) =>
    (await control(base, 'POST', '/users', { companyId, firstName, lastName: 'Tester', email: `${firstName.toLowerCase()}@example.com`, type, role, locationIds })).id as string;
  w.admin = await user(w.companyA, 'Ada', 'agency', 'admin', []);
  w.plainUser = await user(w.companyA, 'Pat', 'account', 'user', [w.installed.id, w.uninstalled.id]);
  w.userB = await user(w.companyB, 'Rex', 'agency', 'admin', []);
  const created = await control(base, 'POST', '/apps', {
    name: 'Tandem',
    redirectUris: [`${PUBLIC_URL}/oauth/callback`],
    customPageUrl: `${PUBLIC_URL}/panel/`,
    scopes: ['contacts.readonly'],
  });
  sharedSecret = created.sharedSecret;
  appId = created.appId;

  database = openDatabase(join(dir, 'tandem.db'));
  migrate(database);
  const now = clock.now();
  for (const l of [w.installed, w.uninstalled, w.otherCompany]) {
    upsertInstallation(database.db, { locationId: l.id, companyId: l.companyId, now, locationName: `name of ${l.id}` });
  }
  setInstallationStatus(database.db, w.uninstalled.id, 'uninstalled', now);

  env = {
    HIGHLEVEL_CLIENT_ID: `${appId}-test`,
    HIGHLEVEL_CLIENT_SECRET: 'client-secret',
    HIGHLEVEL_SHARED_SECRET: sharedSecret,
    TOKEN_ENCRYPTION_KEY: KEY,
    HIGHLEVEL_API_URL: base,
    HIGHLEVEL_MARKETPLACE_URL: base,
    PUBLIC_URL,
    DATA_DIR: dir,
  };
  app = buildApp({ config: loadConfig(env), db: database, logger: false, clock });
  url = await app.listen({ port: 0, host: '127.0.0.1' });
});

afterAll(async () => {
  await app?.close();
  database?.close();
  await emulator?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The payload HighLevel's page would hand the panel, from the emulator's control API. */
async function ssoPayload(userId: string, locationId: string): Promise<string> {
  const query = new URLSearchParams({ appId, userId, locationId });
  return (await control(emulator.url, 'GET', `/sso?${query}`)).payload;
}

/**
 * The exchange, driven with inject() so each call can come from its own client address (the
 * limit is per address); by default every call gets a fresh one, so limits do not interfere.
 */
let nextAddress = 1;
async function exchange(body: unknown, opts: { ip?: string; contentType?: string; raw?: string } = {}) {
  const res = await app.inject({
    method: 'POST',
    url: '/api/panel/session',
    remoteAddress: opts.ip ?? `10.0.${Math.floor(nextAddress / 250)}.${nextAddress++ % 250}`,
    headers: { 'content-type': opts.contentType ?? 'application/json' },
    payload: opts.raw ?? JSON.stringify(body),
  });
  return { status: res.statusCode, headers: new Headers(res.headers as Record<string, string>), body: res.json() as any };
}

/** The signed-in context over real HTTP. */
async function context(headers: Record<string, string>, query = '') {
  const res = await fetch(`${url}/api/panel/context${query}`, { headers });
  return { status: res.status, body: (await res.json()) as any };
}

function expectUniform(res: { status: number; body: any }) {
  expect(res.status).toBe(401);
  expect(res.body).toEqual({ error: SIGN_IN_FAILED });
  expect(JSON.stringify(res.body)).not.toMatch(/token/i);
}

function expectNotInstalled(res: { status: number; body: any }) {
  expect(res.status).toBe(403);
  expect(res.body).toEqual({ error: { code: NOT_INSTALLED.code, message: NOT_INSTALLED.uninstalled } });
  expect(res.body.token).toBeUndefined();
}

function userData(overrides: Partial<SsoUserData> = {}): SsoUserData {
  return {
    userId: w.admin,
    companyId: w.companyA,
    role: 'admin',
    type: 'agency',
    activeLocation: w.installed.id,
    userName: 'Ada Tester',
    email: 'ada@example.com',
    ...overrides,
  };
}

describe('sign-in exchange', () => {
  it('gives an agency admin a 15-minute session for the location, with its connection', async () => {
    const res = await exchange({ payload: await ssoPayload(w.admin, w.installed.id) });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.body).toEqual({
      token: expect.stringMatching(/^[\w-]+\.[\w-]+\.[\w-]+$/),
      expiresAt: new Date(clock.now() + SESSION_TTL_MS).toISOString(),
      expiresIn: SESSION_TTL_MS / 1000,
      user: { id: w.admin, name: 'Ada Tester', email: 'ada@example.com', role: 'admin', type: 'agency' },
      location: { id: w.installed.id, name: `name of ${w.installed.id}`, installedAt: new Date(clock.now()).toISOString() },
      connection: { status: 'active', reason: null, reconnectUrl: `${PUBLIC_URL}/oauth/install` },
    });
    const ctx = await context({ authorization: `Bearer ${res.body.token}` });
    expect(ctx.status).toBe(200);
    const { token: _t, expiresAt: _e, expiresIn: _i, ...view } = res.body;
    expect(ctx.body).toEqual(view);
  });

  it('makes a plain location user a read-only user, and any unknown HighLevel role too', async () => {
    const res = await exchange({ payload: await ssoPayload(w.plainUser, w.installed.id) });
    expect(res.status).toBe(200);
    expect(res.body.user).toMatchObject({ id: w.plainUser, role: 'user', type: 'location' });
    const odd = await exchange({ payload: encryptUserData({ ...userData(), role: 'owner' as 'admin' }, sharedSecret) });
    expect(odd.status).toBe(200);
    expect(odd.body.user.role).toBe('user');
  });

  it('refuses every bad payload with the same 401 and no session (T20)', async () => {
    const good = await ssoPayload(w.admin, w.installed.id);
    const raw = Buffer.from(good, 'base64');
    raw[raw.length - 20]! ^= 0x01;
    const cases: Record<string, unknown> = {
      'a tampered payload': { payload: raw.toString('base64') },
      'a payload under another shared secret': { payload: encryptUserData(userData(), 'someone-elses-secret') },
      'an uninstalled location, under another shared secret': { payload: encryptUserData(userData({ activeLocation: w.uninstalled.id }), 'someone-elses-secret') },
      "another company's user on our uninstalled location": {
        payload: encryptUserData(userData({ userId: w.userB, companyId: w.companyB, activeLocation: w.uninstalled.id }), sharedSecret),
      },
      'a user of another company on our location': {
        payload: encryptUserData(userData({ userId: w.userB, companyId: w.companyB }), sharedSecret),
      },
      "our user on another company's installed location": {
        payload: encryptUserData(userData({ activeLocation: w.otherCompany.id }), sharedSecret),
      },
      'agency context without an active location, under another shared secret': {
        payload: encryptUserData(userData({ activeLocation: undefined }), 'someone-elses-secret'),
      },
      'user data of the wrong shape': { payload: encryptWithPassphrase(JSON.stringify({ hello: 'world' }), sharedSecret) },
      'a payload that is not JSON inside': { payload: encryptWithPassphrase('not json', sharedSecret) },
      'not base64 at all': { payload: '%%%' },
      'an empty payload': { payload: '' },
      'a payload that is not a string': { payload: 42 },
      'an unknown extra field': { payload: good, locationId: w.installed.id },
      'no payload': {},
      'an array': [good],
    };
    for (const [name, body] of Object.entries(cases)) {
      const res = await exchange(body);
      expect.soft(res.status, name).toBe(401);
      expectUniform(res);
    }
  });

  it('tells genuine user data that Tandem is not installed on its location, with no session', async () => {
    expectNotInstalled(await exchange({ payload: await ssoPayload(w.plainUser, w.uninstalled.id) }));
    // Never installed there: a code of its own, for the panel to word its screen for a first install.
    const never = await exchange({ payload: await ssoPayload(w.admin, w.notInstalled.id) });
    expect(never.status).toBe(403);
    expect(never.body).toEqual({ error: { code: NEVER_INSTALLED.code, message: NOT_INSTALLED.never } });
  });

  it('tells genuine user data from the agency view (no sub-account) to open Tandem inside a sub-account, with no session', async () => {
    // An agency-level custom page sends the agency user's data without an active location.
    const res = await exchange({ payload: encryptUserData(userData({ activeLocation: undefined }), sharedSecret) });
    expect(res.status).toBe(403);
    expect(res.body).toEqual({ error: { code: NO_SUB_ACCOUNT.code, message: NO_SUB_ACCOUNT.message } });
    expect(res.body.error.message).toContain('Switch to the sub-account');
    expect(res.body.error.message).not.toContain('support');
    expect(JSON.stringify(res.body)).not.toMatch(/token/i);
  });

  it('refuses malformed, mistyped and oversized bodies the same way', async () => {
    expectUniform(await exchange(undefined, { raw: '{"payload":' }));
    expectUniform(await exchange(undefined, { raw: 'payload=abc', contentType: 'application/x-www-form-urlencoded' }));
    expectUniform(await exchange(undefined, { raw: 'abc', contentType: 'text/plain' }));
    expectUniform(await exchange({ payload: 'U'.repeat(64 * 1024) }));
    expectUniform(await exchange({ payload: 'U'.repeat(9000) }));
  });

  it('limits the exchange per client address, answering 429 with retry-after and no session', async () => {
    const payload = await ssoPayload(w.admin, w.installed.id);
    for (let i = 0; i < EXCHANGE_LIMIT.capacity; i++) {
      const res = await exchange({ payload: i % 2 ? payload : 'garbage' }, { ip: '10.9.9.9' });
      expect(res.status).toBe(i % 2 ? 200 : 401);
    }
    const limited = await exchange({ payload }, { ip: '10.9.9.9' });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('3');
    expect(limited.body).toEqual({ error: { code: 'too_many_requests', message: expect.stringContaining('Wait a minute') } });
    expect(JSON.stringify(limited.body)).not.toMatch(/token/i);
    // Other addresses are not affected, and the address recovers as the bucket refills.
    expect((await exchange({ payload }, { ip: '10.9.9.10' })).status).toBe(200);
    clock.advance(EXCHANGE_LIMIT.windowMs / EXCHANGE_LIMIT.capacity);
    expect((await exchange({ payload }, { ip: '10.9.9.9' })).status).toBe(200);
    expect((await exchange({ payload }, { ip: '10.9.9.9' })).status).toBe(429);
  });
});

describe('the exchange limit behind a proxy', () => {
  it('ignores X-Forwarded-For unless TRUST_PROXY says so, and then limits each forwarded client', async () => {
    const payload = await ssoPayload(w.admin, w.installed.id);
    const spoofed = async (target: FastifyInstance, forwardedFor: string) =>
      (
        await target.inject({
          method: 'POST',
          url: '/api/panel/session',
          remoteAddress: '10.77.0.1',
          headers: { 'content-type': 'application/json', 'x-forwarded-for': forwardedFor },
          payload: JSON.stringify({ payload }),
        })
      ).statusCode;
    // Directly exposed: a client cannot dodge its limit by naming other addresses.
    for (let i = 0; i < EXCHANGE_LIMIT.capacity; i++) expect(await spoofed(app, `192.0.2.${i}`)).toBe(200);
    expect(await spoofed(app, '192.0.2.200')).toBe(429);

    const proxied = buildApp({ config: loadConfig({ ...env, TRUST_PROXY: '1' }), db: database, logger: false, clock });
    try {
      for (let i = 0; i < EXCHANGE_LIMIT.capacity; i++) expect(await spoofed(proxied, '198.51.100.7')).toBe(200);
      expect(await spoofed(proxied, '198.51.100.7')).toBe(429);
      // Another client behind the same proxy has its own allowance.
      expect(await spoofed(proxied, '198.51.100.8')).toBe(200);
    } finally {
      await proxied.close();
    }
  });
});

describe('panel session', () => {
  it('works only as a Bearer header: not missing, garbage, another scheme, a cookie or a query parameter (T20)', async () => {
    const { token } = (await exchange({ payload: await ssoPayload(w.admin, w.installed.id) })).body;
    expect((await context({ authorization: `Bearer ${token}` })).status).toBe(200);
    expectUniform(await context({}));
    expectUniform(await context({ authorization: 'Bearer' }));
    expectUniform(await context({ authorization: 'Bearer not-a-token' }));
    expectUniform(await context({ authorization: `Basic ${token}` }));
    expectUniform(await context({ authorization: `Bearer ${token}x` }));
    expectUniform(await context({ cookie: `session=${token}; token=${token}; authorization=Bearer%20${token}` }));
    expectUniform(await context({}, `?token=${token}&access_token=${token}`));
  });

  it('expires after 15 minutes on the injected clock (T20)', async () => {
    const { token } = (await exchange({ payload: await ssoPayload(w.admin, w.installed.id) })).body;
    clock.advance(SESSION_TTL_MS - 1000);
    expect((await context({ authorization: `Bearer ${token}` })).status).toBe(200);
    clock.advance(1000);
    expectUniform(await context({ authorization: `Bearer ${token}` }));
  });

  it('shows the connection as it is now, and ends when the location is uninstalled', async () => {
    const { token } = (await exchange({ payload: await ssoPayload(w.plainUser, w.installed.id) })).body;
    const auth = { authorization: `Bearer ${token}` };
    try {
      setInstallationStatus(database.db, w.installed.id, 'needs_reauth', clock.now(), 'HighLevel refused the refresh token.');
      expect((await context(auth)).body.connection).toEqual({
        status: 'needs_reauth',
        reason: 'HighLevel refused the refresh token.',
        reconnectUrl: `${PUBLIC_URL}/oauth/install`,
      });
      setInstallationStatus(database.db, w.installed.id, 'paused', clock.now(), 'The sub-account is inactive in HighLevel.');
      expect((await context(auth)).body.connection).toMatchObject({ status: 'paused', reason: 'The sub-account is inactive in HighLevel.' });
      // The open panel learns it on its next request, and can show its "not installed" screen.
      setInstallationStatus(database.db, w.installed.id, 'uninstalled', clock.now());
      expectNotInstalled(await context(auth));
      expectNotInstalled(await exchange({ payload: await ssoPayload(w.plainUser, w.installed.id) }));
      // A session that does not verify learns nothing of it.
      expectUniform(await context({ authorization: `Bearer ${token}x` }));
    } finally {
      upsertInstallation(database.db, { locationId: w.installed.id, companyId: w.companyA, now: clock.now() });
    }
    // Reinstalled: the same session works again (it is short-lived anyway).
    expect((await context(auth)).body.connection.status).toBe('active');
  });
});

describe('a HighLevel user Tandem knows is no longer active', () => {
  it('loses its session and its sign-in at once, in plain words, and gets them back when active again', async () => {
    const payload = await ssoPayload(w.plainUser, w.installed.id);
    const { token } = (await exchange({ payload })).body;
    const auth = { authorization: `Bearer ${token}` };
    const listed = (active: boolean, deleted = false) =>
      upsertHighLevelUsers(database.db, w.installed.id, [{ id: w.plainUser, email: 'pat@example.com', name: 'Pat Tester', active, deleted }], clock.now());
    const expectInactive = (res: { status: number; body: any }) => {
      expect(res.status).toBe(403);
      expect(res.body).toEqual({ error: USER_INACTIVE });
      expect(res.body.error.message).not.toMatch(/\b40\d\b|\/api\//);
    };
    listed(true);
    expect((await context(auth)).status).toBe(200);
    try {
      // As the sync loop records it after HighLevel's UserUpdate: the session ends, and user data
      // HighLevel gave before (it carries no time) signs in no more.
      listed(false);
      expectInactive(await context(auth));
      expectInactive(await exchange({ payload }));
      listed(false, true);
      expectInactive(await context(auth));
      // Another user of the location is not concerned.
      expect((await exchange({ payload: await ssoPayload(w.admin, w.installed.id) })).status).toBe(200);
    } finally {
      listed(true);
    }
    expect((await context(auth)).status).toBe(200);
    expect((await exchange({ payload })).status).toBe(200);
  });
});

describe("admin rights follow HighLevel's listing of the location's users", () => {
  it('gives a sub-account user the location’s listing does not have the read-only view until a listing has them (QA)', async () => {
    // User data naming a location its user may not see (only HighLevel can write it, with the Shared Secret).
    const stranger = 'u1strangerNotListed00';
    const claimed = encryptUserData(userData({ userId: stranger, type: 'location', userName: 'Sam Stranger', email: 'sam@example.com' }), sharedSecret);
    const list = (users: Array<{ id: string; role: string | null }>) =>
      upsertHighLevelUsers(database.db, w.installed.id, users.map((u) => ({ ...u, email: `${u.id}@example.com`, name: u.id, active: true, deleted: false })), clock.now());
    try {
      list([{ id: w.plainUser, role: 'user' }]);
      const signedIn = await exchange({ payload: claimed });
      expect(signedIn.body.user).toMatchObject({ id: stranger, role: 'user' });
      const auth = { authorization: `Bearer ${signedIn.body.token}` };
      expect((await context(auth)).body.user.role).toBe('user');
      // An agency user is not listed per location: their user data's role stands.
      const agency = await exchange({ payload: encryptUserData(userData({ userId: stranger, type: 'agency' }), sharedSecret) });
      expect(agency.body.user.role).toBe('admin');
      // Listed as an admin of the location (a new user, listed after their webhook): admin from the
      // next sign-in (the panel signs in again at a reload, and before its session's 15 minutes end).
      list([{ id: stranger, role: 'admin' }]);
      expect((await exchange({ payload: claimed })).body.user.role).toBe('admin');
    } finally {
      list([{ id: w.plainUser, role: null }]);
    }
  });

  it('reads user data claiming admin for a user HighLevel lists as a plain user as a plain user, at sign-in and on every request', async () => {
    // What a splice of Pat's own payload aims at (server/highlevel/sso.ts): Pat's ids, role admin.
    const claimed = encryptUserData(userData({ userId: w.plainUser, type: 'location', userName: 'Pat Tester', email: 'pat@example.com' }), sharedSecret);
    const listed = (role: string | null) =>
      upsertHighLevelUsers(database.db, w.installed.id, [{ id: w.plainUser, email: 'pat@example.com', name: 'Pat Tester', active: true, deleted: false, role }], clock.now());
    try {
      listed(null);
      // Unknown to the listing (or no role given): the user data's role stands.
      const before = await exchange({ payload: claimed });
      expect(before.body.user.role).toBe('admin');
      const auth = { authorization: `Bearer ${before.body.token}` };
      listed('user');
      expect((await exchange({ payload: claimed })).body.user).toMatchObject({ id: w.plainUser, role: 'user' });
      // A session issued before the listing said so is read as a plain user's from then on.
      expect((await context(auth)).body.user.role).toBe('user');
      const keys = await app.inject({ method: 'POST', url: '/api/panel/api-keys', headers: { ...auth, 'content-type': 'application/json' }, payload: JSON.stringify({ name: 'mine' }) });
      expect(keys.statusCode).toBe(403);
      listed('admin');
      expect((await exchange({ payload: claimed })).body.user.role).toBe('admin');
      expect((await context(auth)).body.user.role).toBe('admin');
    } finally {
      listed(null);
    }
  });
});
