// The panel's side of a test: sign in the way HighLevel's iframe does (the emulator's encrypted
// user data → POST /api/panel/session) and call the panel API with the session's Bearer token.
import { expect } from 'vitest';
import { control } from './emulator.ts';
import { createAgency, installLocation, waitForInstallation, type TestAgency, type TestTandem } from './tandem.ts';

type Where = Pick<TestTandem, 'url' | 'highlevelUrl' | 'app'>;

export async function panelSignIn(t: Where, userId: string, locationId: string): Promise<string> {
  const { payload } = await control<{ payload: string }>(t.highlevelUrl, 'GET', `/sso?${new URLSearchParams({ appId: t.app.appId, userId, locationId })}`);
  const res = await fetch(`${t.url}/api/panel/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ payload }) });
  expect(res.status).toBe(200);
  return ((await res.json()) as { token: string }).token;
}

/** One panel API call; a string body is sent as it is (malformed JSON tests), anything else as JSON. */
export async function panelApi<T = any>(t: Pick<TestTandem, 'url'>, method: string, path: string, token: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(`${t.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as T };
}

export interface TwoAgencies {
  agencyA: TestAgency;
  agencyB: TestAgency;
  A: { id: string; name: string };
  B: { id: string; name: string };
  /** A plain (non-admin) user of location A. */
  plainUserA: string;
}

/**
 * The panel tests' world: two agencies with one installed location each (A and B, for the
 * cross-tenant checks) and a plain user of A beside its admin.
 */
export async function twoInstalledAgencies(t: TestTandem): Promise<TwoAgencies> {
  const agencyA = await createAgency(t, { name: 'Alpha Agency', locations: ['Alpha Dental'] });
  const agencyB = await createAgency(t, { name: 'Bravo Agency', locations: ['Bravo Roofing'] });
  const A = agencyA.locations[0]!;
  const B = agencyB.locations[0]!;
  for (const [location, agency] of [[A, agencyA], [B, agencyB]] as const) {
    expect((await installLocation(t, location.id, { userId: agency.adminId })).status).toBe(200);
    await waitForInstallation(t, location.id, 'active');
  }
  const plain = await control<{ id: string }>(t.highlevelUrl, 'POST', '/users', {
    companyId: agencyA.companyId, firstName: 'Pat', lastName: 'Plain', email: 'pat.plain@alpha.example', type: 'account', role: 'user', locationIds: [A.id],
  });
  return { agencyA, agencyB, A, B, plainUserA: plain.id };
}
