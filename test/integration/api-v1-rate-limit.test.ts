// The REST API's rate limits (server/auth/api-rate-limit.ts), over real HTTP on a manual clock: per
// location, whatever key of it is used, a burst of 300 then 20 a second (the defaults), answered
// 429 `rate_limited` with Retry-After and RateLimit headers, other locations untouched; and per
// client address, failed authentications, after which even a good key is refused until the address
// has waited; and a limit other than the default, given to the API as buildApp gives it the
// configuration's. (Behind the front, the address is the client's: front.test.ts.)
import { randomBytes } from 'node:crypto';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey, revokeApiKey } from '../../db/api-keys.ts';
import { API_RATE_LIMIT_DEFAULT, BAD_KEY_LIMIT } from '../../server/auth/api-rate-limit.ts';
import { API_KEY_UNAUTHORIZED } from '../../server/auth/api-key.ts';
import { installErrorHandlers } from '../../server/errors.ts';
import { apiV1Plugin } from '../../server/routes/api-v1.ts';
import { control, ManualClock } from '../helpers/emulator.ts';
import { restCall, type RestAnswer } from '../helpers/rest.ts';
import { createAgency, installLocation, startTestTandem, waitForInstallation, type TestTandem } from '../helpers/tandem.ts';

const clock = new ManualClock(Date.parse('2026-12-07T09:00:00.000Z'));
let t: TestTandem;
let keyA: string;
let keyA2: string;
let keyB: string;
let B: string;

beforeAll(async () => {
  t = await startTestTandem({ sync: { start: false }, clock });
  const agency = await createAgency(t, { name: 'Busy Agency', locations: ['Dialer Dental', 'Quiet Roofing'] });
  for (const location of agency.locations) {
    expect((await installLocation(t, location.id, { userId: agency.adminId })).status).toBe(200);
    await waitForInstallation(t, location.id, 'active');
  }
  const A = agency.locations[0]!.id;
  B = agency.locations[1]!.id;
  keyA = createApiKey(t.db, { locationId: A, name: 'dialer', createdBy: null, now: clock.now() }).key;
  keyA2 = createApiKey(t.db, { locationId: A, name: 'help desk', createdBy: null, now: clock.now() }).key;
  keyB = createApiKey(t.db, { locationId: B, name: 'other', createdBy: null, now: clock.now() }).key;
});
afterAll(async () => {
  await t?.close();
});

const list = (key: string | null) => restCall(t.url, 'GET', '/api/v1/contacts?limit=1', { key });
const badKey = () => `tk_${randomBytes(24).toString('base64url').replace(/[-_]/g, 'x').slice(0, 32)}`;

/** `count` requests, `parallel` at a time. */
async function many(count: number, send: (i: number) => Promise<RestAnswer>, parallel = 50): Promise<RestAnswer[]> {
  const out: RestAnswer[] = [];
  for (let i = 0; i < count; i += parallel) out.push(...(await Promise.all(Array.from({ length: Math.min(parallel, count - i) }, (_, j) => send(i + j)))));
  return out;
}

const statuses = (answers: RestAnswer[]) => answers.map((a) => a.status);
const limitHeaders = (a: RestAnswer) => ({
  limit: a.headers.get('ratelimit-limit'),
  remaining: a.headers.get('ratelimit-remaining'),
  reset: a.headers.get('ratelimit-reset'),
});

describe('per location', () => {
  it('takes a burst of 300, then 20 a second, from all the location’s keys together; other locations go on', async () => {
    const { burst, perSecond } = API_RATE_LIMIT_DEFAULT;
    expect({ burst, perSecond }).toEqual({ burst: 300, perSecond: 20 });
    const first = await list(keyA);
    expect(first.status).toBe(200);
    expect(limitHeaders(first)).toEqual({ limit: '300', remaining: '299', reset: '1' });
    // The rest of the burst, from both keys of the location, reads and writes alike.
    const rest = await many(burst - 1, (i) =>
      i % 3 === 0 ? restCall(t.url, 'POST', '/api/v1/contacts', { key: keyA2, body: { firstName: `Caller ${i}` } }) : list(i % 2 ? keyA : keyA2),
    );
    expect(statuses(rest).filter((s) => s !== 200 && s !== 201)).toEqual([]);

    for (const key of [keyA, keyA2]) {
      const refused = await list(key);
      expect(refused.status).toBe(429);
      expect(refused.body).toEqual({
        error: { code: 'rate_limited', message: 'Too many requests for this location: its API keys may send 300 at once, then 20 a second. Try again in 1 second (Retry-After).' },
      });
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(limitHeaders(refused)).toEqual({ limit: '300', remaining: '0', reset: '15' });
    }
    // A write refused is not made.
    const write = await restCall(t.url, 'POST', '/api/v1/contacts', { key: keyA, body: { firstName: 'Too Many' } });
    expect(write.status).toBe(429);
    expect((await restCall(t.url, 'GET', '/api/v1/contacts?limit=200', { key: keyB })).body.contacts).toEqual([]);
    // Another location has its own allowance.
    const other = await list(keyB);
    expect(other.status).toBe(200);
    expect(limitHeaders(other).remaining).toBe('298');

    // A second later, 20 more; then refused again.
    clock.advance(1000);
    const next = await many(perSecond + 1, () => list(keyA), 1);
    expect(statuses(next)).toEqual([...Array(perSecond).fill(200), 429]);
    // Refusals cost nothing: after 15 quiet seconds the whole burst is back.
    clock.advance(15_000);
    expect(limitHeaders(await list(keyA2))).toEqual({ limit: '300', remaining: '299', reset: '1' });
  });
});

describe('per address, failed authentications', () => {
  it('refuses an address after 20 unknown or revoked keys, a good key too, until it has waited', async () => {
    clock.advance(60_000);
    const { capacity, windowMs } = BAD_KEY_LIMIT;
    expect({ capacity, windowMs }).toEqual({ capacity: 20, windowMs: 60_000 });
    // Without any credentials nothing is guessed: not counted.
    expect(statuses(await many(30, () => list(null)))).toEqual(Array(30).fill(401));
    const revoked = createApiKey(t.db, { locationId: B, name: 'old', createdBy: null, now: clock.now() });
    revokeApiKey(t.db, { locationId: B, id: revoked.apiKey.id, now: clock.now() });
    const guesses = await many(capacity, (i) => (i === 0 ? list(revoked.key) : i === 1 ? restCall(t.url, 'GET', '/api/v1/users', { key: null, headers: { authorization: 'Basic eDp5' } }) : list(badKey())), 5);
    expect(statuses(guesses)).toEqual(Array(capacity).fill(401));
    for (const a of guesses) expect(a.body).toEqual({ error: API_KEY_UNAUTHORIZED });

    const refusal = { error: { code: 'rate_limited', message: 'Too many requests with an unknown or revoked API key came from this address. Wait 3 seconds, then send a key created on Tandem’s panel (API keys tab).' } };
    for (const key of [badKey(), keyA, keyB, null]) {
      const res = await list(key);
      expect(res.status, String(key)).toBe(429);
      expect(res.body).toEqual(refusal);
      expect(res.headers.get('retry-after')).toBe('3');
      // The key is not read: nothing tells a good one from a bad one, not even the RateLimit headers.
      expect(res.headers.get('ratelimit-remaining')).toBeNull();
    }
    // Public routes go on.
    expect((await fetch(`${t.url}/api/v1/openapi.json`)).status).toBe(200);

    // One failure's worth comes back every 3 seconds; a good key then spends none of it.
    clock.advance(3000);
    expect((await list(keyA)).status).toBe(200);
    expect((await list(badKey())).status).toBe(401);
    expect((await list(badKey())).status).toBe(429);
    expect((await list(keyA)).status).toBe(429);
    clock.advance(windowMs);
    expect((await list(keyA)).status).toBe(200);
    expect(statuses(await many(capacity, () => list(badKey()), 5))).toEqual(Array(capacity).fill(401));
  });

  it('does not count a good key of a location Tandem was uninstalled from as a failed one: it is told so, within its location’s limit', async () => {
    clock.advance(BAD_KEY_LIMIT.windowMs);
    await control(t.highlevelUrl, 'DELETE', '/installs', { appId: t.app.appId, locationId: B });
    await waitForInstallation(t, B, 'uninstalled');
    const answers = await many(BAD_KEY_LIMIT.capacity + 5, () => list(keyB), 5);
    expect(statuses(answers)).toEqual(Array(BAD_KEY_LIMIT.capacity + 5).fill(403));
    expect(answers[0]!.body.error.code).toBe('not_installed');
    expect((await list(badKey())).status).toBe(401);
    // Still the location's key: a flood of them is held to the location's limit (QA).
    clock.advance(60_000);
    const flood = await many(API_RATE_LIMIT_DEFAULT.burst + 1, () => list(keyB));
    // Sent 50 at a time: which one arrives last, and is refused, is the server's order, not ours.
    expect(statuses(flood).filter((s) => s === 403)).toHaveLength(API_RATE_LIMIT_DEFAULT.burst);
    const limited = flood.filter((a) => a.status === 429);
    expect(limited).toHaveLength(1);
    expect(limited[0]!.body.error.code).toBe('rate_limited');
  });
});

describe('a limit other than the default', () => {
  it('is the one the API is given (config.apiRateLimit, from API_RATE_LIMIT_BURST and API_RATE_LIMIT_PER_SECOND)', async () => {
    // The API alone, as buildApp registers it, with a limit of its own.
    const api = Fastify({ logger: false });
    installErrorHandlers(api);
    await api.register(apiV1Plugin, { db: t.db, clock, rateLimit: { burst: 3, perSecond: 1 } });
    try {
      clock.advance(60_000);
      const get = () => api.inject({ method: 'GET', url: '/api/v1/contacts?limit=1', headers: { authorization: `Bearer ${keyA}` } });
      const answers = [await get(), await get(), await get(), await get()];
      expect(answers.map((a) => a.statusCode)).toEqual([200, 200, 200, 429]);
      expect(answers[0]!.headers['ratelimit-limit']).toBe('3');
      expect(answers[3]!.json().error.message).toBe('Too many requests for this location: its API keys may send 3 at once, then 1 a second. Try again in 1 second (Retry-After).');
      const doc = (await api.inject({ method: 'GET', url: '/api/v1/openapi.json' })).json();
      expect(doc.info.description).toContain('may send 3 requests at once, then 1 a second');
      expect(doc.paths['/api/v1/contacts'].get.responses['429'].description).toContain('more than 3 at once or more than 1 a second');
    } finally {
      await api.close();
    }
  });
});

describe('the settings', () => {
  it('API_RATE_LIMIT_BURST and API_RATE_LIMIT_PER_SECOND reach the API Tandem serves', async () => {
    const small = await startTestTandem({ sync: { start: false }, clock, env: { API_RATE_LIMIT_BURST: '5', API_RATE_LIMIT_PER_SECOND: '1' } });
    try {
      const agency = await createAgency(small, { name: 'Small Agency', locations: ['Tiny Dental'] });
      const location = agency.locations[0]!.id;
      expect((await installLocation(small, location, { userId: agency.adminId })).status).toBe(200);
      await waitForInstallation(small, location, 'active');
      const key = createApiKey(small.db, { locationId: location, name: 'dialer', createdBy: null, now: clock.now() }).key;
      const answers = await many(6, () => restCall(small.url, 'GET', '/api/v1/contacts?limit=1', { key }), 1);
      expect(statuses(answers)).toEqual([200, 200, 200, 200, 200, 429]);
      expect(limitHeaders(answers[0]!).limit).toBe('5');
      const doc = (await restCall(small.url, 'GET', '/api/v1/openapi.json', { key: null })).body as { paths: Record<string, { get: { responses: Record<string, { description: string }> } }> };
      expect(doc.paths['/api/v1/contacts']!.get.responses['429']!.description).toContain('more than 5 at once');
    } finally {
      await small.close();
    }
  });
});
