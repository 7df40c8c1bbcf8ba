// The token vault over real HTTP against the emulator, with real SQLite files: the refresh race
// across processes (T01), a lost refresh response (T02), permanent vs transient refresh errors
// (T04), encryption at rest and key rotation (T22), agency locations recovered by minting, and the
// HighLevel client's wire format.
import { fork, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { migrate, openDatabase, type Database } from '../../db/client.ts';
import { upsertCompany, upsertInstallation, setInstallationStatus } from '../../db/installations.ts';
import {
  deleteTokens,
  deleteTokensOfLocation,
  hasTokens,
  readTokens,
  releaseRefresh,
  resealStale,
  saveGrant,
  storeRefreshed,
  tryClaimRefresh,
  type TokenOwner,
} from '../../db/tokens.ts';
import { HighLevelError, request } from '../../server/highlevel/http.ts';
import { exchangeCode, getLocation, mintLocationToken, type HighLevelEndpoints, type TokenGrant } from '../../server/highlevel/oauth.ts';
import {
  LocationPausedError,
  PAUSED_REASON,
  REAUTH_REASON,
  ReauthRequiredError,
  TransientTokenError,
  createTokenProvider,
  type OwnerStatus,
  type TokenProvider,
} from '../../server/highlevel/token-provider.ts';
import { TokenCipherError, createTokenCipher, type TokenCipher } from '../../server/security/token-cipher.ts';
import { ManualClock, control, testEmulator } from '../helpers/emulator.ts';
import { REDIRECT_URI, installViaConsent, refresh, seedAgency, seedApp, type Agency } from '../helpers/oauth.ts';
import type { RunningEmulator } from '../../emulator/server.ts';
import type { MarketplaceApp } from '../../emulator/state.ts';
import type { WorkerInput, WorkerMessage } from '../fixtures/refresh-worker.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const K1 = randomBytes(32);
const K2 = randomBytes(32);

interface StatusEvent {
  owner: TokenOwner;
  status: OwnerStatus;
  reason: string | null;
}

let clock: ManualClock;
let em: RunningEmulator;
let app: MarketplaceApp;
let agency: Agency;
let dir: string;
let dbPath: string;
let database: Database;
let cipher: TokenCipher;
let ep: HighLevelEndpoints;
let events: StatusEvent[];
let provider: TokenProvider;
const children: ChildProcess[] = [];

beforeEach(async () => {
  clock = new ManualClock();
  em = await testEmulator({ clock });
  app = seedApp(em.emu);
  agency = seedAgency(em.emu, 'Acme Agency', ['Downtown', 'Uptown', 'Midtown']);
  dir = mkdtempSync(join(tmpdir(), 'tandem-vault-'));
  dbPath = join(dir, 'tandem.db');
  database = openDatabase(dbPath);
  migrate(database);
  cipher = createTokenCipher(K1);
  ep = { apiUrl: em.url, clientId: app.clientId, clientSecret: app.clientSecret };
  events = [];
  provider = makeProvider(cipher);
});

afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill();
  database.close();
  await em.close();
  rmSync(dir, { recursive: true, force: true });
});

function makeProvider(withCipher: TokenCipher, endpoints: HighLevelEndpoints = ep): TokenProvider {
  return createTokenProvider({
    db: database.db,
    cipher: withCipher,
    clock,
    endpoints,
    random: () => 0.5,
    onStatus: (owner, status, reason) => events.push({ owner, status, reason }),
  });
}

const loc = (i: number) => agency.locations[i]!.id;
const locationOwner = (id: string): TokenOwner => ({ type: 'location', id });

/** Installs the app on one location through the consent page and stores the exchanged grant. */
async function installLocation(locationId: string): Promise<TokenGrant> {
  const consent = await installViaConsent(em.url, app, locationId);
  const grant = await exchangeCode(ep, consent.code!, REDIRECT_URI, clock.now());
  saveGrant(database.db, cipher, grant, clock.now());
  upsertInstallation(database.db, { locationId, companyId: grant.companyId, now: clock.now() });
  await control(em.url, 'DELETE', '/requests'); // tests count the requests that follow
  return grant;
}

/** An agency install: the Company grant, and minted Location tokens for `minted` of the approved locations. */
async function installAgency(approved: string[], minted: string[]): Promise<TokenGrant> {
  const consent = await installViaConsent(em.url, app, 'agency', { locationIds: approved });
  const company = await exchangeCode(ep, consent.code!, REDIRECT_URI, clock.now());
  expect(company.userType).toBe('Company');
  saveGrant(database.db, cipher, company, clock.now());
  upsertCompany(database.db, { companyId: company.companyId, installToFutureLocations: false, now: clock.now() });
  for (const id of approved) upsertInstallation(database.db, { locationId: id, companyId: company.companyId, now: clock.now() });
  for (const id of minted) {
    saveGrant(database.db, cipher, await mintLocationToken(ep, company.accessToken, company.companyId, id, clock.now()), clock.now());
  }
  await control(em.url, 'DELETE', '/requests');
  return company;
}

async function tokenRequests(): Promise<{ method: string; status: number }[]> {
  const { requests } = await control<{ requests: { method: string; status: number }[] }>(em.url, 'GET', '/requests?path=/oauth/token');
  return requests.filter((r) => r.method === 'POST');
}

function rawRow(id: string): { access_token: string; refresh_token: string | null; expires_at: number } {
  return database.sqlite.prepare('select access_token, refresh_token, expires_at from tokens where id = ?').get(id) as never;
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

const keyId = (key: Buffer) => createHash('sha256').update(key).digest('hex').slice(0, 8);

describe('T01 refresh race', () => {
  const WORKER = fileURLToPath(new URL('../fixtures/refresh-worker.ts', import.meta.url));

  function startWorker(input: WorkerInput): { child: ChildProcess; ready: Promise<void>; results: Promise<{ token?: string; error?: string }[]> } {
    const child = fork(WORKER, [JSON.stringify(input)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(child);
    let ready!: () => void;
    const readyP = new Promise<void>((r) => (ready = r));
    const results = new Promise<{ token?: string; error?: string }[]>((resolve, reject) => {
      child.on('message', (m: WorkerMessage) => ('ready' in m ? ready() : resolve(m.results)));
      child.on('exit', (code) => reject(new Error(`worker exited with ${code} before answering`)));
      child.on('error', reject);
    });
    return { child, ready: readyP, results };
  }

  it('20 concurrent calls from four processes on one SQLite file cause exactly one refresh', async () => {
    const id = loc(0);
    const installed = await installLocation(id);
    clock.advance(DAY); // every caller now wants a refresh at once
    await control(em.url, 'DELETE', '/requests');
    // Hold the one refresh open long enough that every process arrives while it is in flight.
    await control(em.url, 'POST', '/faults', { path: '/oauth/token', delayMs: 400, times: 1 });

    const input: WorkerInput = {
      dbPath,
      apiUrl: em.url,
      clientId: app.clientId,
      clientSecret: app.clientSecret,
      key: K1.toString('base64'),
      now: clock.now(),
      locationId: id,
      calls: 5,
    };
    const workers = [startWorker(input), startWorker(input), startWorker(input)];
    await Promise.all(workers.map((w) => w.ready));
    for (const w of workers) w.child.send('go');
    const local = await Promise.all(Array.from({ length: 5 }, () => provider.locationToken(id)));
    const remote = (await Promise.all(workers.map((w) => w.results))).flat();

    const all = [...local.map((token) => ({ token })), ...remote];
    expect(all).toHaveLength(20);
    expect(all.filter((r) => 'error' in r)).toEqual([]);
    const tokens = new Set(all.map((r) => r.token));
    expect(tokens.size).toBe(1);
    const [newToken] = tokens;
    expect(newToken).not.toBe(installed.accessToken);

    expect(await tokenRequests()).toEqual([expect.objectContaining({ status: 200 })]);
    const stored = readTokens(database.db, cipher, locationOwner(id))!;
    expect(stored.accessToken).toBe(newToken);
    expect(stored.refreshToken).not.toBe(installed.refreshToken);
    expect(await getLocation(ep, newToken!, id)).toMatchObject({ id, companyId: agency.company.id, name: 'Downtown' });
    expect(database.sqlite.prepare('select refresh_lock_until, refresh_lock_owner from tokens where id = ?').get(`location:${id}`)).toEqual({
      refresh_lock_until: null,
      refresh_lock_owner: null,
    });
  });
});

describe('refresh timing and the row lock', () => {
  it('refreshes an hour before a day-long token expires, not earlier', async () => {
    const installed = await installLocation(loc(0));
    clock.advance(22 * HOUR);
    expect(await provider.locationToken(loc(0))).toBe(installed.accessToken);
    expect(await tokenRequests()).toHaveLength(0);
    clock.advance(HOUR + 1);
    const fresh = await provider.locationToken(loc(0));
    expect(fresh).not.toBe(installed.accessToken);
    expect(await tokenRequests()).toHaveLength(1);
    expect(readTokens(database.db, cipher, locationOwner(loc(0)))!.expiresAt).toBe(clock.now() + 86_399_000);
  });

  it('keeps the current token when a refresh ahead of expiry fails transiently, and retries after the backoff', async () => {
    const installed = await installLocation(loc(0));
    clock.advance(23.5 * HOUR);
    await control(em.url, 'POST', '/faults', { path: '/oauth/token', status: 503, times: 1 });
    const before = rawRow(`location:${loc(0)}`);
    expect(await provider.locationToken(loc(0))).toBe(installed.accessToken);
    expect(await provider.locationToken(loc(0))).toBe(installed.accessToken);
    expect(await tokenRequests()).toHaveLength(1); // the second call waited for the backoff
    expect(rawRow(`location:${loc(0)}`)).toEqual(before);
    clock.advance(5_000);
    expect(await provider.locationToken(loc(0))).not.toBe(installed.accessToken);
    expect(await tokenRequests()).toHaveLength(2);
  });

  it('lets exactly one claimant hold the lock; only the holder stores; an expired lock can be claimed', async () => {
    const grant = await installLocation(loc(0));
    const db = database.db;
    const id = `location:${loc(0)}`;
    const now = clock.now();
    expect(tryClaimRefresh(db, id, 'a', now, 60_000)).toBe(true);
    expect(tryClaimRefresh(db, id, 'b', now, 60_000)).toBe(false);
    expect(storeRefreshed(db, cipher, id, 'b', { ...grant, accessToken: 'from-b' }, now)).toBe(false);
    expect(tryClaimRefresh(db, id, 'b', now + 60_001, 60_000)).toBe(true);
    expect(storeRefreshed(db, cipher, id, 'a', { ...grant, accessToken: 'from-a' }, now)).toBe(false);
    releaseRefresh(db, id, 'a'); // not the holder: no effect
    expect(tryClaimRefresh(db, id, 'c', now + 60_001, 60_000)).toBe(false);
    expect(storeRefreshed(db, cipher, id, 'b', { ...grant, accessToken: 'from-b' }, now)).toBe(true);
    expect(readTokens(db, cipher, locationOwner(loc(0)))!.accessToken).toBe('from-b');
    expect(tryClaimRefresh(db, id, 'c', now, 60_000)).toBe(true);
    saveGrant(db, cipher, grant, now); // a reinstall clears the lock
    expect(tryClaimRefresh(db, id, 'd', now, 60_000)).toBe(true);
  });

  it('deletes a location’s tokens, or a company’s own (an agency uninstall deletes its locations’ one by one)', async () => {
    await installAgency([loc(0), loc(1)], [loc(0), loc(1)]);
    const standalone = await installLocation(loc(2));
    expect(standalone.userType).toBe('Location');
    deleteTokensOfLocation(database.db, loc(1));
    expect(hasTokens(database.db, locationOwner(loc(1)))).toBe(false);
    expect(hasTokens(database.db, locationOwner(loc(0)))).toBe(true);
    deleteTokens(database.db, { type: 'company', id: agency.company.id });
    expect(hasTokens(database.db, { type: 'company', id: agency.company.id })).toBe(false);
    expect(hasTokens(database.db, locationOwner(loc(0)))).toBe(true);
    expect(hasTokens(database.db, locationOwner(loc(2)))).toBe(true);
  });
});

describe('T02 refresh response lost', () => {
  it('plain location install: tokens untouched, then the invalid grant means needs_reauth, once', async () => {
    const installed = await installLocation(loc(0));
    clock.advance(DAY);
    await control(em.url, 'POST', '/faults', { path: '/oauth/token', dropAfterHandling: true, times: 1 });
    const before = rawRow(`location:${loc(0)}`);

    const lost = await rejection(provider.locationToken(loc(0)));
    expect(lost).toBeInstanceOf(TransientTokenError);
    expect((lost as TransientTokenError).retryAt).toBeGreaterThan(clock.now());
    expect(em.emu.world.refreshTokens[installed.refreshToken!]?.used).toBe(true); // HighLevel did rotate
    expect(rawRow(`location:${loc(0)}`)).toEqual(before);
    const seen = (await tokenRequests()).length; // the emulator does not log the dropped exchange
    expect(await rejection(provider.locationToken(loc(0)))).toBeInstanceOf(TransientTokenError); // backing off: no request
    expect(await tokenRequests()).toHaveLength(seen);

    clock.set((lost as TransientTokenError).retryAt);
    const dead = await rejection(provider.locationToken(loc(0)));
    expect(dead).toBeInstanceOf(ReauthRequiredError);
    // The state's reason is Tandem's plain words (the panel shows it); HighLevel's stay in the error, for the log.
    expect(events).toEqual([{ owner: locationOwner(loc(0)), status: 'needs_reauth', reason: REAUTH_REASON.revoked }]);
    expect(dead.message).toContain('Invalid grant: refresh token is invalid');
    expect(rawRow(`location:${loc(0)}`).refresh_token).toBeNull();

    // No endless retry: this process and a fresh one both stop without asking HighLevel again.
    expect(await rejection(provider.locationToken(loc(0)))).toBeInstanceOf(ReauthRequiredError);
    expect(await rejection(makeProvider(cipher).locationToken(loc(0)))).toBeInstanceOf(ReauthRequiredError);
    expect(await tokenRequests()).toHaveLength(seen + 1);
  });

  it('agency location: recovered by minting with the Company token (itself refreshed), status stays active', async () => {
    await installAgency([loc(0)], [loc(0)]);
    clock.advance(DAY); // the Company token has expired too
    await control(em.url, 'POST', '/faults', { path: '/oauth/token', dropAfterHandling: true, times: 1 });

    const lost = await rejection(provider.locationToken(loc(0)));
    expect(lost).toBeInstanceOf(TransientTokenError);
    clock.set((lost as TransientTokenError).retryAt);
    const token = await provider.locationToken(loc(0));

    expect(await getLocation(ep, token, loc(0))).toMatchObject({ id: loc(0) });
    expect(events.filter((e) => e.status !== 'active')).toEqual([]);
    const { requests } = await control<{ requests: { path: string }[] }>(em.url, 'GET', '/requests?path=/oauth/locationToken');
    expect(requests).toHaveLength(1);
    const stored = readTokens(database.db, cipher, locationOwner(loc(0)))!;
    expect(stored.accessToken).toBe(token);
    expect(stored.refreshToken).not.toBeNull();
    // The minted pair refreshes normally later on.
    clock.advance(DAY);
    expect(await provider.locationToken(loc(0))).not.toBe(token);
  });
});

describe('agency locations without a usable row', () => {
  it('mints a token for an approved location that has none yet', async () => {
    await installAgency([loc(0)], []);
    const token = await provider.locationToken(loc(0));
    expect(await getLocation(ep, token, loc(0))).toMatchObject({ id: loc(0) });
    expect(readTokens(database.db, cipher, locationOwner(loc(0)))!.accessToken).toBe(token);
  });

  it('refuses an uninstalled location quietly, and a location the agency does not cover with needs_reauth', async () => {
    await installAgency([loc(0)], []);
    setInstallationStatus(database.db, loc(0), 'uninstalled', clock.now());
    expect(await rejection(provider.locationToken(loc(0)))).toBeInstanceOf(ReauthRequiredError);
    expect(events).toEqual([]);

    upsertInstallation(database.db, { locationId: loc(1), companyId: agency.company.id, now: clock.now() });
    expect(await rejection(provider.locationToken(loc(1)))).toBeInstanceOf(ReauthRequiredError);
    expect(events).toEqual([{ owner: locationOwner(loc(1)), status: 'needs_reauth', reason: REAUTH_REASON.revoked }]);
  });

  it('reports the location as needs_reauth when the agency connection itself is dead', async () => {
    const company = await installAgency([loc(0)], []);
    expect((await refresh(em.url, app, company.refreshToken!, 'Company')).status).toBe(200); // spent elsewhere
    clock.advance(DAY);
    expect(await rejection(provider.locationToken(loc(0)))).toBeInstanceOf(ReauthRequiredError);
    expect(events.map((e) => [e.owner.type, e.status, e.reason])).toEqual([
      ['company', 'needs_reauth', REAUTH_REASON.revoked],
      ['location', 'needs_reauth', REAUTH_REASON.agency],
    ]);
  });
});

describe('T04 permanent vs transient refresh errors', () => {
  it('500, 429 and a dropped connection are transient: tokens untouched, backoff grows, the refresh token still works', async () => {
    const installed = await installLocation(loc(0));
    clock.advance(DAY);
    const id = `location:${loc(0)}`;
    const before = rawRow(id);
    const faults = [
      { path: '/oauth/token', status: 500, times: 1 },
      {
        path: '/oauth/token',
        status: 429,
        times: 1,
        headers: { 'x-ratelimit-daily-remaining': '0', 'x-ratelimit-daily-reset': String(2 * HOUR), 'x-ratelimit-max': '100' },
        body: { statusCode: 429, message: 'Too Many Requests' },
      },
      { path: '/oauth/token', drop: true, times: 1 },
    ];
    const delays: number[] = [];
    const causes: HighLevelError[] = [];
    for (const fault of faults) {
      await control(em.url, 'POST', '/faults', fault);
      const err = await rejection(provider.locationToken(loc(0)));
      expect(err).toBeInstanceOf(TransientTokenError);
      expect(err.message).not.toContain(installed.refreshToken!);
      expect(rawRow(id)).toEqual(before);
      causes.push(err.cause as HighLevelError);
      delays.push((err as TransientTokenError).retryAt - clock.now());
      clock.set((err as TransientTokenError).retryAt);
    }
    expect(causes.map((c) => [c.status, c.kind])).toEqual([
      [500, 'http'],
      [429, 'http'],
      [0, 'network'],
    ]);
    expect(causes[1]!.rateLimit).toMatchObject({ dailyRemaining: 0, dailyResetMs: 2 * HOUR, max: 100 });
    expect(delays[0]).toBe(3_750); // 5 s ceiling, equal jitter at 0.5
    expect(delays[1]).toBe(2 * HOUR); // waits for the daily reset
    expect(delays[2]).toBe(15_000); // 20 s ceiling on the third attempt
    expect(events).toEqual([]);

    const token = await provider.locationToken(loc(0));
    expect(token).not.toBe(installed.accessToken);
    expect(await getLocation(ep, token, loc(0))).toMatchObject({ id: loc(0) });
    expect(events).toEqual([{ owner: locationOwner(loc(0)), status: 'active', reason: null }]);
  });

  it('an invalid grant (refresh token spent elsewhere) means needs_reauth', async () => {
    const installed = await installLocation(loc(0));
    expect((await refresh(em.url, app, installed.refreshToken!)).status).toBe(200);
    clock.advance(DAY);
    const err = await rejection(provider.locationToken(loc(0)));
    expect(err).toBeInstanceOf(ReauthRequiredError);
    expect(err.message).not.toContain(installed.refreshToken!);
    expect(err.message).toContain('Invalid grant: refresh token is invalid');
    expect(events).toEqual([{ owner: locationOwner(loc(0)), status: 'needs_reauth', reason: REAUTH_REASON.revoked }]);
  });

  it('reports needs_reauth again when a location reconnected since loses access again in the same process (QA: the panel said Connected)', async () => {
    const first = await installLocation(loc(0));
    expect((await refresh(em.url, app, first.refreshToken!)).status).toBe(200);
    clock.advance(DAY);
    expect(await rejection(provider.locationToken(loc(0)))).toBeInstanceOf(ReauthRequiredError);
    // Reconnected: the install callback stores a new grant and sets the installation active.
    const second = await installLocation(loc(0));
    expect(await provider.locationToken(loc(0))).toBe(second.accessToken);
    // Lost again, the same way.
    expect((await refresh(em.url, app, second.refreshToken!)).status).toBe(200);
    clock.advance(DAY);
    expect(await rejection(provider.locationToken(loc(0)))).toBeInstanceOf(ReauthRequiredError);
    const needsReauth = { owner: locationOwner(loc(0)), status: 'needs_reauth', reason: REAUTH_REASON.revoked };
    expect(events).toEqual([needsReauth, needsReauth]);
  });

  it('"Location is not active" pauses without touching the token; after reactivation the same refresh token works', async () => {
    await installLocation(loc(0));
    clock.advance(DAY);
    const before = rawRow(`location:${loc(0)}`);
    await control(em.url, 'PATCH', `/locations/${loc(0)}`, { active: false });
    expect(await rejection(provider.locationToken(loc(0)))).toBeInstanceOf(LocationPausedError);
    expect(rawRow(`location:${loc(0)}`)).toEqual(before);
    expect(events).toEqual([{ owner: locationOwner(loc(0)), status: 'paused', reason: PAUSED_REASON }]);

    await control(em.url, 'PATCH', `/locations/${loc(0)}`, { active: true });
    const token = await provider.locationToken(loc(0));
    expect(await getLocation(ep, token, loc(0))).toMatchObject({ id: loc(0) });
    expect(events.at(-1)).toEqual({ owner: locationOwner(loc(0)), status: 'active', reason: null });
  });
});

describe('T22 tokens encrypted at rest, key rotation', () => {
  function fileBytes(): Buffer {
    const parts = [dbPath, `${dbPath}-wal`].filter(existsSync).map((p) => readFileSync(p));
    expect(parts.length).toBeGreaterThan(0);
    return Buffer.concat(parts);
  }

  function expectNotInFile(secret: string): void {
    const bytes = fileBytes();
    expect(bytes.includes(secret)).toBe(false);
    // JWT-shaped: no segment of it either (header and claims are predictable, the signature is not).
    expect(bytes.includes(secret.split('.').at(-1)!.slice(0, 32))).toBe(false);
  }

  it('never stores a token in plaintext, before or after a refresh', async () => {
    const grant = await installLocation(loc(0));
    expect(existsSync(`${dbPath}-wal`)).toBe(true);
    expectNotInFile(grant.accessToken);
    expectNotInFile(grant.refreshToken!);
    clock.advance(DAY);
    await provider.locationToken(loc(0));
    const stored = readTokens(database.db, cipher, locationOwner(loc(0)))!;
    database.sqlite.pragma('wal_checkpoint(TRUNCATE)');
    for (const secret of [grant.accessToken, grant.refreshToken!, stored.accessToken, stored.refreshToken!]) expectNotInFile(secret);
  });

  it('a ciphertext copied to another row does not open', async () => {
    await installLocation(loc(0));
    await installLocation(loc(1));
    const copied = rawRow(`location:${loc(0)}`).access_token;
    database.sqlite.prepare('update tokens set access_token = ? where id = ?').run(copied, `location:${loc(1)}`);
    expect(() => readTokens(database.db, cipher, locationOwner(loc(1)))).toThrow(TokenCipherError);
    expect(await rejection(provider.locationToken(loc(1)))).toBeInstanceOf(TokenCipherError);
    expect(events).toEqual([]);
  });

  it('reads rows sealed with an old key, re-seals them on refresh, then the old key can go', async () => {
    const grant = await installLocation(loc(0)); // sealed with K1
    const id = `location:${loc(0)}`;
    expect(rawRow(id).access_token.split('.')[1]).toBe(keyId(K1));

    const rotated = createTokenCipher(K2, [K1]);
    const after = makeProvider(rotated);
    expect(await after.locationToken(loc(0))).toBe(grant.accessToken);
    expect(readTokens(database.db, rotated, locationOwner(loc(0)))!.stale).toBe(true);
    expect(() => readTokens(database.db, createTokenCipher(K2), locationOwner(loc(0)))).toThrow(TokenCipherError);

    clock.advance(DAY);
    const refreshed = await after.locationToken(loc(0));
    const row = rawRow(id);
    expect(row.access_token.split('.')[1]).toBe(keyId(K2));
    expect(row.refresh_token!.split('.')[1]).toBe(keyId(K2));
    const k2Only = createTokenCipher(K2);
    expect(readTokens(database.db, k2Only, locationOwner(loc(0)))!.accessToken).toBe(refreshed);
    expect(await makeProvider(k2Only).locationToken(loc(0))).toBe(refreshed);
  });

  it('resealStale rewrites old-key rows for an operator without changing the tokens', async () => {
    const a = await installLocation(loc(0));
    const b = await installLocation(loc(1));
    const rotated = createTokenCipher(K2, [K1]);
    clock.advance(DAY);
    await makeProvider(rotated).locationToken(loc(1)); // loc(1) re-sealed by its refresh
    expect(resealStale(database.db, rotated)).toBe(1);
    expect(resealStale(database.db, rotated)).toBe(0);
    const k2Only = createTokenCipher(K2);
    expect(readTokens(database.db, k2Only, locationOwner(loc(0)))).toMatchObject({ accessToken: a.accessToken, refreshToken: a.refreshToken, stale: false });
    expect(readTokens(database.db, k2Only, locationOwner(loc(1)))!.refreshToken).not.toBe(b.refreshToken);
  });
});

describe('HighLevel client wire format', () => {
  it('sends the token calls form-encoded, Version on everything but /oauth/token, bearer auth', async () => {
    const seen: { path: string; headers: Headers; body: URLSearchParams }[] = [];
    const recording: typeof fetch = async (input, init) => {
      const url = new URL(String(input));
      seen.push({ path: url.pathname, headers: new Headers(init?.headers), body: new URLSearchParams(String(init?.body ?? '')) });
      return fetch(input, init);
    };
    const company = await installAgency([loc(0)], []);
    const watched = makeProvider(cipher, { ...ep, fetch: recording });
    clock.advance(DAY);
    await watched.locationToken(loc(0));

    expect(seen.map((s) => s.path)).toEqual(['/oauth/token', '/oauth/locationToken']);
    const [refreshCall, mintCall] = seen;
    expect(refreshCall!.headers.get('version')).toBeNull();
    expect(refreshCall!.headers.get('content-type')).toBe('application/x-www-form-urlencoded');
    expect(Object.fromEntries(refreshCall!.body)).toEqual({
      client_id: app.clientId,
      client_secret: app.clientSecret,
      grant_type: 'refresh_token',
      refresh_token: company.refreshToken,
      user_type: 'Company',
    });
    expect(mintCall!.headers.get('version')).toBe('2021-07-28');
    expect(mintCall!.headers.get('authorization')).toMatch(/^Bearer /);
    expect(Object.fromEntries(mintCall!.body)).toEqual({ companyId: agency.company.id, locationId: loc(0) });
  });

  it('turns a slow answer into a timeout and an error envelope into a HighLevelError', async () => {
    const grant = await installLocation(loc(0));
    // A host that accepts the connection and never answers. (Not the emulator's delay fault: an
    // abandoned delayed request there is never completed, and closing the emulator waits on it.)
    const sockets: Socket[] = [];
    const silent = createServer((socket) => void sockets.push(socket));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const port = (silent.address() as AddressInfo).port;
      const slow = await rejection(request({ apiUrl: `http://127.0.0.1:${port}` }, { method: 'GET', path: `/locations/${loc(0)}`, token: grant.accessToken, timeoutMs: 100 }));
      expect(slow).toMatchObject({ name: 'HighLevelError', status: 0, kind: 'timeout' });
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((r) => silent.close(r));
    }

    const forbidden = await rejection(getLocation(ep, grant.accessToken, loc(1)));
    expect(forbidden).toBeInstanceOf(HighLevelError);
    expect(forbidden).toMatchObject({ status: 403, kind: 'http', message: 'The token does not have access to this location.' });
    expect((forbidden as HighLevelError).rateLimit).toMatchObject({ max: 100, intervalMs: 10_000 });

    const invalid = await rejection(request(ep, { method: 'POST', path: '/oauth/locationToken', token: grant.accessToken, json: {} }));
    expect(invalid).toMatchObject({ status: 401 });
    await expect(request(ep, { method: 'GET', path: 'https://example.com/locations/x' })).rejects.toThrow(/refusing/);
  });
});
