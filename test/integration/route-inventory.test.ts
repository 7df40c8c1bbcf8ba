// Every route Tandem answers says how its tenant is established (server/routes/tenant.ts), and a
// session of location A reaches nothing of any other location on any route (T19): not through a
// location id in the query, body or path, not after A is uninstalled.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance, RouteOptions } from 'fastify';
import { NOT_INSTALLED, SIGN_IN_FAILED } from '../../server/auth/session.ts';
import { API_KEY_UNAUTHORIZED } from '../../server/auth/api-key.ts';
import type { TenantSource } from '../../server/routes/tenant.ts';
import { control } from '../helpers/emulator.ts';
import { createAgency, installLocation, startTestTandem, waitForInstallation, type TestAgency, type TestTandem } from '../helpers/tandem.ts';

const TENANT_SOURCES: TenantSource[] = ['public', 'session', 'apiKey', 'webhook', 'oauth', 'sso'];

interface SeenRoute {
  methods: string[];
  url: string;
  /** Read when asked: hooks registered after ours (a plugin's own) may still set it. */
  readonly tenant: unknown;
}

/**
 * Fastify announces every new instance on this diagnostics channel before any route exists, so an
 * onRoute hook added here sees the whole route table of the real app, plugins' routes included.
 */
const seen = new Map<FastifyInstance, SeenRoute[]>();
const onInstance = (message: unknown) => {
  const { fastify } = message as { fastify: FastifyInstance };
  const routes: SeenRoute[] = [];
  seen.set(fastify, routes);
  fastify.addHook('onRoute', (route: RouteOptions) => {
    routes.push({
      methods: [route.method].flat(),
      url: route.url,
      get tenant() {
        return route.config?.tenant;
      },
    });
  });
};

let t: TestTandem;
let routes: SeenRoute[];
let agencyX: TestAgency;
let agencyY: TestAgency;
/** A and A2 belong to agency X, B to agency Y; Tandem is installed on all three. */
let A: { id: string; name: string };
let A2: { id: string; name: string };
let B: { id: string; name: string };

beforeAll(async () => {
  subscribe('fastify.initialization', onInstance);
  try {
    t = await startTestTandem();
  } finally {
    unsubscribe('fastify.initialization', onInstance);
  }
  routes = [...seen.values()].find((r) => r.some((route) => route.url === '/api/panel/session'))!;
  agencyX = await createAgency(t, { name: 'Xavier Agency', locations: ['Alpha Dental', 'Alpha Two Dental'] });
  agencyY = await createAgency(t, { name: 'Yonder Agency', locations: ['Bravo Roofing'] });
  [A, A2] = agencyX.locations as [typeof A, typeof A2];
  B = agencyY.locations[0]!;
  for (const [location, agency] of [
    [A, agencyX],
    [A2, agencyX],
    [B, agencyY],
  ] as const) {
    const result = await installLocation(t, location.id, { userId: agency.adminId });
    expect(result.status).toBe(200);
    await waitForInstallation(t, location.id, 'active');
  }
});
afterAll(async () => {
  await t?.close();
});

async function signIn(userId: string, locationId: string): Promise<string> {
  const { payload } = await control(t.highlevelUrl, 'GET', `/sso?${new URLSearchParams({ appId: t.app.appId, userId, locationId })}`);
  const res = await fetch(`${t.url}/api/panel/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ payload }),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { token: string }).token;
}

/** Calls a route as the panel would; `url` may carry a query. Returns the raw text to search. */
async function callRoute(method: string, url: string, token: string | undefined, body?: unknown) {
  const res = await fetch(`${t.url}${url}`, {
    method,
    redirect: 'manual',
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, text, location: res.headers.get('location') ?? '' };
}

const sessionRoutes = () =>
  routes
    .filter((r) => r.tenant === 'session')
    .flatMap((r) => r.methods.filter((m) => m !== 'HEAD' && m !== 'OPTIONS').map((method) => ({ method, url: r.url })));

/** What of location B (and of A's sibling A2) must never reach a session of A. */
const foreign = () => [B.id, B.name, agencyY.companyId, A2.id, A2.name];
/** The same, less B's id, which a redirect may echo from the request's own query. */
const foreignUnasked = () => [B.name, agencyY.companyId, A2.id, A2.name];

describe('route inventory', () => {
  it('finds the real route table, including plugin routes', () => {
    const urls = routes.map((r) => r.url);
    for (const url of ['/health', '/panel', '/panel/*', '/api/panel/session', '/api/panel/context', '/oauth/install', '/oauth/callback', '/webhooks/highlevel', '/api/panel/operations', '/api/panel/operations/:id/events']) {
      expect(urls).toContain(url);
    }
  });

  it('every route declares how its tenant is established', () => {
    const undeclared = routes.filter((r) => !TENANT_SOURCES.includes(r.tenant as TenantSource)).map((r) => `${r.methods.join(',')} ${r.url}`);
    expect(undeclared).toEqual([]);
  });

  it('no session route takes a location or company from its path', () => {
    const suspicious = sessionRoutes().filter((r) => /:(location|company|tenant|account)/i.test(r.url));
    expect(suspicious).toEqual([]);
  });
});

describe('cross-tenant matrix (T19)', () => {
  it('a session of A sees A on every session route, and nothing of B, whatever the request names', async () => {
    const token = await signIn(agencyX.adminId, A.id);
    const list = sessionRoutes();
    expect(list.length).toBeGreaterThan(0);
    for (const { method, url } of list) {
      const path = url.replace(/\*$/, 'x').replace(/:[A-Za-z]+/g, B.id);
      const withBody = method !== 'GET' && method !== 'DELETE';
      const plain = await callRoute(method, path, token, withBody ? {} : undefined);
      const override = new URLSearchParams({ locationId: B.id, companyId: agencyY.companyId, location_id: B.id });
      const steered = await callRoute(method, `${path}?${override}`, token, withBody ? { locationId: B.id, companyId: agencyY.companyId } : undefined);
      for (const res of [plain, steered]) {
        for (const secret of foreign()) expect.soft(res.text, `${method} ${url} leaks ${secret}`).not.toContain(secret);
      }
      expect.soft(steered.status, `${method} ${url}`).toBe(plain.status);
      if (method === 'GET') expect.soft(steered.text, `${method} ${url} follows a location id in the query`).toBe(plain.text);
      // Nothing about a session route answers without one.
      const anonymous = await callRoute(method, path, undefined, withBody ? {} : undefined);
      expect.soft(anonymous.status, `${method} ${url} without a session`).toBe(401);
      expect.soft(JSON.parse(anonymous.text)).toEqual({ error: SIGN_IN_FAILED });
    }
    // The context is A's, so the assertions above looked at real data.
    const context = JSON.parse((await callRoute('GET', '/api/panel/context', token)).text);
    expect(context.location).toMatchObject({ id: A.id, name: A.name });
    // And B's own session does see B there (the searched-for values are real).
    const bToken = await signIn(agencyY.adminId, B.id);
    expect((await callRoute('GET', '/api/panel/context', bToken)).text).toContain(B.id);
  });

  it('a session of A steers no other route to B either', async () => {
    const token = await signIn(agencyX.adminId, A.id);
    for (const r of routes.filter((r) => r.tenant !== 'session' && r.methods.includes('GET') && !r.url.includes(':'))) {
      const url = r.url.replace(/\*$/, 'index.html');
      const res = await callRoute('GET', `${url}?locationId=${B.id}`, token);
      for (const secret of foreignUnasked()) expect.soft(`${res.text} ${res.location}`, `GET ${r.url} leaks ${secret}`).not.toContain(secret);
    }
    // A webhook is never authenticated by a session: an unsigned UNINSTALL for B is refused.
    const webhook = await callRoute('POST', '/webhooks/highlevel', token, { type: 'UNINSTALL', appId: t.app.appId, locationId: B.id, companyId: agencyY.companyId });
    expect(webhook.status).toBe(401);
    expect((await callRoute('GET', '/api/panel/context', await signIn(agencyY.adminId, B.id))).status).toBe(200);
  });

  it('no apiKey route answers without an API key, and a panel session is not one', async () => {
    // The key-for-key matrix (a key of A never reaches B) walks the OpenAPI document in api-v1.test.ts.
    const token = await signIn(agencyX.adminId, A.id);
    const list = routes
      .filter((r) => r.tenant === 'apiKey')
      .flatMap((r) => r.methods.filter((m) => m !== 'HEAD' && m !== 'OPTIONS').map((method) => ({ method, url: r.url })));
    expect(list.length).toBeGreaterThan(0);
    for (const { method, url } of list) {
      const path = url.replace(/:[A-Za-z]+/g, B.id);
      for (const credential of [undefined, token]) {
        const res = await callRoute(method, `${path}?locationId=${B.id}`, credential, method === 'GET' || method === 'DELETE' ? undefined : { locationId: B.id });
        expect.soft(res.status, `${method} ${url}`).toBe(401);
        expect.soft(JSON.parse(res.text), `${method} ${url}`).toEqual({ error: API_KEY_UNAUTHORIZED });
      }
    }
  });

  it('sessions of A stop working once A is uninstalled, saying so on every route, while B goes on', async () => {
    const tokenA = await signIn(agencyX.adminId, A.id);
    const tokenB = await signIn(agencyY.adminId, B.id);
    await control(t.highlevelUrl, 'DELETE', '/installs', { appId: t.app.appId, locationId: A.id });
    await waitForInstallation(t, A.id, 'uninstalled');
    // Whichever request an open panel makes next, it can switch to its "not installed" screen.
    for (const { method, url } of sessionRoutes()) {
      const res = await callRoute(method, url.replace(/\*$/, 'x'), tokenA, method === 'GET' || method === 'DELETE' ? undefined : {});
      expect.soft(res.status, `${method} ${url}`).toBe(403);
      expect.soft(JSON.parse(res.text)).toEqual({ error: { code: NOT_INSTALLED.code, message: NOT_INSTALLED.uninstalled } });
    }
    const again = await fetch(`${t.url}/api/panel/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        payload: (await control(t.highlevelUrl, 'GET', `/sso?${new URLSearchParams({ appId: t.app.appId, userId: agencyX.adminId, locationId: A.id })}`)).payload,
      }),
    });
    expect(again.status).toBe(403);
    expect(await again.json()).toEqual({ error: { code: NOT_INSTALLED.code, message: NOT_INSTALLED.uninstalled } });
    expect((await callRoute('GET', '/api/panel/context', tokenB)).status).toBe(200);
  });
});
