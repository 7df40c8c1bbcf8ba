// The panel's session client (web/lib/session.svelte.ts) against the real app: it signs in, sends
// the token as a Bearer header, renews it before expiry with fresh data from HighLevel, renews once
// when a call is refused, and shows the sign-in error (with a working Retry) when renewal fails,
// or the "not installed" state once Tandem is uninstalled from the location; the failure's code
// tells never installed from uninstalled, and the agency view from a refused sign-in.
// Requests go through inject() so the client's timers can be faked without touching sockets.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../server/app.ts';
import { loadConfig } from '../../server/config.ts';
import { migrate, openDatabase, type Database } from '../../db/client.ts';
import { setInstallationStatus, upsertInstallation } from '../../db/installations.ts';
import { NOT_INSTALLED, SESSION_TTL_MS, SIGN_IN_FAILED } from '../../server/auth/session.ts';
import { NEVER_INSTALLED, NO_SUB_ACCOUNT } from '../../server/routes/panel-api.ts';
import { encryptUserData, type SsoUserData } from '../../emulator/sso.ts';
import { PanelSession } from '../../web/lib/session.svelte.ts';
import { ManualClock } from '../helpers/emulator.ts';

const SECRET = 'panel-shared-secret';
const clock = new ManualClock();
let dir: string;
let database: Database;
let app: FastifyInstance;
let seenAuthorization: (string | undefined)[] = [];

const user: SsoUserData = {
  userId: 'user-1',
  companyId: 'company-1',
  role: 'admin',
  type: 'agency',
  activeLocation: 'location-1',
  userName: 'Ada Owner',
  email: 'ada@example.com',
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tandem-panel-client-'));
  database = openDatabase(join(dir, 'tandem.db'));
  migrate(database);
  app = buildApp({
    config: loadConfig({
      HIGHLEVEL_CLIENT_ID: '6835011c08f18f1088f92f9f-test',
      HIGHLEVEL_CLIENT_SECRET: 'secret',
      HIGHLEVEL_SHARED_SECRET: SECRET,
      TOKEN_ENCRYPTION_KEY: Buffer.alloc(32, 8).toString('base64'),
      DATA_DIR: dir,
    }),
    db: database,
    logger: false,
    clock,
  });
  app.addHook('onRequest', async (req) => {
    seenAuthorization.push(req.headers.authorization);
  });
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  database?.close();
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  upsertInstallation(database.db, { locationId: 'location-1', companyId: 'company-1', now: clock.now(), locationName: 'Downtown Dental' });
  seenAuthorization = [];
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
});
afterEach(() => vi.useRealTimers());

/** The browser's fetch, answered by the real app in-process. */
const injectFetch: typeof fetch = async (input, init) => {
  const res = await app.inject({
    method: (init?.method ?? 'GET') as 'GET' | 'POST',
    url: String(input),
    headers: Object.fromEntries(new Headers(init?.headers).entries()),
    ...(init?.body ? { payload: String(init.body) } : {}),
  });
  return new Response(res.body, { status: res.statusCode, headers: res.headers as Record<string, string> });
};

function client(requestUserData: () => Promise<string>) {
  return new PanelSession({ fetch: injectFetch, requestUserData });
}

describe('panel session client', () => {
  it('signs in, keeps the token to itself and sends it as a Bearer header', async () => {
    const session = client(async () => encryptUserData(user, SECRET));
    await session.signIn(encryptUserData(user, SECRET));
    expect(session.state).toBe('signed-in');
    expect(session.view?.location).toMatchObject({ id: 'location-1', name: 'Downtown Dental' });
    expect(JSON.stringify(session)).not.toMatch(/eyJ/);
    const context = await session.api<{ user: { name: string } }>('/api/panel/context');
    expect(context.user.name).toBe('Ada Owner');
    expect(seenAuthorization.at(-1)).toMatch(/^Bearer eyJ/);
    session.dispose();
  });

  it('renews before expiry with fresh user data from HighLevel', async () => {
    let asked = 0;
    const session = client(async () => {
      asked++;
      return encryptUserData({ ...user, userName: 'Ada Renewed' }, SECRET);
    });
    await session.signIn(encryptUserData(user, SECRET));
    clock.advance(SESSION_TTL_MS - 120_000);
    await vi.advanceTimersByTimeAsync(SESSION_TTL_MS - 120_000);
    await vi.waitFor(() => expect(session.view?.user.name).toBe('Ada Renewed'));
    expect(asked).toBe(1);
    // The renewed token outlives the first one.
    clock.advance(180_000);
    expect((await session.api<{ user: { name: string } }>('/api/panel/context')).user.name).toBe('Ada Renewed');
    session.dispose();
  });

  it('renews once when a call finds its token expired, and the call succeeds', async () => {
    const session = client(async () => encryptUserData(user, SECRET));
    await session.signIn(encryptUserData(user, SECRET));
    // The scheduled renewal never ran (its timer is fake): the call itself must notice.
    clock.advance(SESSION_TTL_MS + 1000);
    const context = await session.api<{ location: { id: string } }>('/api/panel/context');
    expect(context.location.id).toBe('location-1');
    // Exchange, refused call with the old token, exchange, the same call with the new token.
    expect(seenAuthorization.map((a) => (a ? a.slice(0, 10) : 'exchange'))).toEqual(['exchange', 'Bearer eyJ', 'exchange', 'Bearer eyJ']);
    expect(seenAuthorization[1]).not.toBe(seenAuthorization[3]);
    session.dispose();
  });

  it('shows the uniform error when the sign-in is refused, and Retry signs in once it can', async () => {
    const session = client(async () => encryptUserData(user, SECRET));
    await session.signIn(encryptUserData(user, 'not-the-secret'));
    expect(session.state).toBe('failed');
    expect(session.failure).toBe(SIGN_IN_FAILED.message);
    await session.retry();
    expect(session.state).toBe('signed-in');
    session.dispose();
  });

  it('says Tandem is not installed when the location is uninstalled mid-session, on its next call, and Retry signs in once reinstalled', async () => {
    const session = client(async () => encryptUserData(user, SECRET));
    await session.signIn(encryptUserData(user, SECRET));
    setInstallationStatus(database.db, 'location-1', 'uninstalled', clock.now());
    // Any call: the Sync tab's periodic refresh is the one that usually finds out.
    await expect(session.api('/api/panel/sync')).rejects.toThrow(NOT_INSTALLED.uninstalled);
    expect(session.state).toBe('not-installed');
    expect(session.failure).toBe(NOT_INSTALLED.uninstalled);
    expect(session.failureCode).toBe(NOT_INSTALLED.code);
    expect(seenAuthorization.filter((a) => a === undefined)).toHaveLength(1); // no renewal tried: it could not help
    await session.retry();
    expect(session.state).toBe('not-installed');
    upsertInstallation(database.db, { locationId: 'location-1', companyId: 'company-1', now: clock.now() });
    await session.retry();
    expect(session.state).toBe('signed-in');
    session.dispose();
  });

  it('says Tandem is not installed at sign-in for a location never installed, told apart from uninstalled', async () => {
    const session = client(async () => encryptUserData(user, SECRET));
    await session.signIn(encryptUserData({ ...user, activeLocation: 'location-never' }, SECRET));
    expect(session.state).toBe('not-installed');
    expect(session.failure).toBe(NOT_INSTALLED.never);
    // The screen's wording (install it, not install it again) goes by the code.
    expect(session.failureCode).toBe(NEVER_INSTALLED.code);
    session.dispose();
  });

  it('says to open Tandem inside a sub-account when HighLevel sends the agency view’s user data', async () => {
    // Fresh user data on Retry names the sub-account (the user opened Tandem inside it).
    const session = client(async () => encryptUserData(user, SECRET));
    await session.signIn(encryptUserData({ ...user, activeLocation: undefined }, SECRET));
    expect(session.state).toBe('failed');
    expect(session.failureCode).toBe(NO_SUB_ACCOUNT.code);
    expect(session.failure).toBe(NO_SUB_ACCOUNT.message);
    await session.retry();
    expect([session.state, session.failureCode, session.failure]).toEqual(['signed-in', undefined, undefined]);
    session.dispose();
  });
});
