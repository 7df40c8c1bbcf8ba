// API keys on the panel over real HTTP: admins create (the key is in that one answer) and revoke;
// plain users may list but not change; lists never carry a key or its hash; a created key works on
// the REST API at once and stops the moment it is revoked; the location is the session's only.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SIGN_IN_FAILED } from '../../server/auth/session.ts';
import { control } from '../helpers/emulator.ts';
import { createAgency, installLocation, startTestTandem, waitForInstallation, type TestAgency, type TestTandem } from '../helpers/tandem.ts';
import { panelSignIn } from '../helpers/panel.ts';
import { KEY_NAME_MAX } from '../../web/lib/api-keys.svelte.ts';

let t: TestTandem;
let agency: TestAgency;
let other: TestAgency;
let A: { id: string; name: string };
let B: { id: string; name: string };
let plainUserId: string;

beforeAll(async () => {
  t = await startTestTandem({ sync: { start: false } });
  agency = await createAgency(t, { name: 'Xavier Agency', locations: ['Alpha Dental'] });
  other = await createAgency(t, { name: 'Yonder Agency', locations: ['Bravo Roofing'] });
  A = agency.locations[0]!;
  B = other.locations[0]!;
  for (const [location, admin] of [
    [A, agency.adminId],
    [B, other.adminId],
  ] as const) {
    expect((await installLocation(t, location.id, { userId: admin })).status).toBe(200);
    await waitForInstallation(t, location.id, 'active');
  }
  plainUserId = (
    await control<{ id: string }>(t.highlevelUrl, 'POST', '/users', {
      companyId: agency.companyId,
      firstName: 'Paul',
      lastName: 'Plain',
      email: 'paul@alpha.example',
      type: 'account',
      role: 'user',
      locationIds: [A.id],
    })
  ).id;
});
afterAll(async () => {
  await t?.close();
});

const signIn = (userId: string, locationId: string) => panelSignIn(t, userId, locationId);

async function call(method: string, path: string, token: string | undefined, body?: unknown) {
  const res = await fetch(`${t.url}${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, text, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}

describe('panel API keys', () => {
  it('an admin creates a key, sees it once, and it works on the REST API for this location only', async () => {
    const admin = await signIn(agency.adminId, A.id);
    const created = await call('POST', '/api/panel/api-keys', admin, { name: '  Billing sync ' });
    expect(created.status).toBe(201);
    expect(created.headers.get('cache-control')).toBe('no-store');
    const { key, apiKey } = created.body;
    expect(key).toMatch(/^tk_[0-9A-Za-z]{32}$/);
    expect(apiKey).toEqual({
      id: expect.stringMatching(/^k_/),
      name: 'Billing sync',
      prefix: key.slice(0, 10),
      createdAt: expect.any(String),
      createdBy: expect.any(String),
      lastUsedAt: null,
      revokedAt: null,
    });

    // Never again: not in the list, for admins or users, not even its hash.
    const list = await call('GET', '/api/panel/api-keys', admin);
    expect(list.status).toBe(200);
    expect(list.body.keys).toContainEqual(apiKey);
    expect(list.text).not.toContain(key);
    expect(list.text).not.toContain(key.slice(10));
    expect(list.text).not.toMatch(/"hash"/);

    const contact = await fetch(`${t.url}/api/v1/contacts`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ firstName: 'Via key' }),
    });
    expect(contact.status).toBe(201);
    const used = (await call('GET', '/api/panel/api-keys', admin)).body.keys.find((k: { id: string }) => k.id === apiKey.id);
    expect(used.lastUsedAt).toEqual(expect.any(String));

    // B's admin sees none of A's keys.
    const bList = await call('GET', '/api/panel/api-keys', await signIn(other.adminId, B.id));
    expect(bList.body.keys).toEqual([]);
  });

  it('an admin revokes a key; it stops working at once and the list says when', async () => {
    const admin = await signIn(agency.adminId, A.id);
    const { key, apiKey } = (await call('POST', '/api/panel/api-keys', admin, { name: 'Short-lived' })).body;
    const use = () => fetch(`${t.url}/api/v1/contacts`, { headers: { authorization: `Bearer ${key}` } });
    expect((await use()).status).toBe(200);
    const revoked = await call('DELETE', `/api/panel/api-keys/${apiKey.id}`, admin);
    expect(revoked.status).toBe(200);
    expect(revoked.body.apiKey).toMatchObject({ id: apiKey.id, revokedAt: expect.any(String) });
    expect((await use()).status).toBe(401);
    const listed = (await call('GET', '/api/panel/api-keys', admin)).body.keys.find((k: { id: string }) => k.id === apiKey.id);
    expect(listed.revokedAt).toEqual(revoked.body.apiKey.revokedAt);
    // Again is harmless; an unknown id, or another location's, is 404.
    expect((await call('DELETE', `/api/panel/api-keys/${apiKey.id}`, admin)).status).toBe(200);
    expect((await call('DELETE', '/api/panel/api-keys/k_unknown', admin)).status).toBe(404);
    const bAdmin = await signIn(other.adminId, B.id);
    const bKey = (await call('POST', '/api/panel/api-keys', bAdmin, { name: 'B key' })).body;
    expect((await call('DELETE', `/api/panel/api-keys/${bKey.apiKey.id}`, admin)).status).toBe(404);
    expect((await fetch(`${t.url}/api/v1/contacts`, { headers: { authorization: `Bearer ${bKey.key}` } })).status).toBe(200);
  });

  it('a plain user may list but gets 403 on create and revoke', async () => {
    const admin = await signIn(agency.adminId, A.id);
    const { apiKey } = (await call('POST', '/api/panel/api-keys', admin, { name: 'Admin made' })).body;
    const user = await signIn(plainUserId, A.id);
    const list = await call('GET', '/api/panel/api-keys', user);
    expect(list.status).toBe(200);
    expect(list.body.keys.map((k: { id: string }) => k.id)).toContain(apiKey.id);
    const create = await call('POST', '/api/panel/api-keys', user, { name: 'Mine' });
    expect(create.status).toBe(403);
    expect(create.body.error.code).toBe('admin_only');
    expect(create.body.error.message).toContain('Only admins can manage API keys');
    expect((await call('DELETE', `/api/panel/api-keys/${apiKey.id}`, user)).status).toBe(403);
    expect((await call('GET', '/api/panel/api-keys', admin)).body.keys.find((k: { id: string }) => k.id === apiKey.id).revokedAt).toBeNull();
  });

  it('validates the name strictly and needs a session before anything', async () => {
    const admin = await signIn(agency.adminId, A.id);
    const nameless = await call('POST', '/api/panel/api-keys', admin, {});
    expect(nameless.status).toBe(400);
    // In words, as for an empty name: not the validator's "expected string, received undefined".
    expect(nameless.body.error.message).toContain('name is required');
    expect(nameless.body.error.message).not.toContain('undefined');
    expect((await call('POST', '/api/panel/api-keys', admin, { name: '   ' })).status).toBe(400);
    // The panel's limit is Tandem's: as long a name as the panel lets through is accepted (spaces
    // around it not counted), one character more refused.
    const longest = await call('POST', '/api/panel/api-keys', admin, { name: ` ${'n'.repeat(KEY_NAME_MAX)} ` });
    expect(longest.status).toBe(201);
    expect(longest.body.apiKey.name).toBe('n'.repeat(KEY_NAME_MAX));
    const tooLong = await call('POST', '/api/panel/api-keys', admin, { name: 'n'.repeat(KEY_NAME_MAX + 1) });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.error.message).toContain(`at most ${KEY_NAME_MAX} characters`);
    const steered = await call('POST', '/api/panel/api-keys', admin, { name: 'x', locationId: B.id });
    expect(steered.status).toBe(400);
    expect(steered.body.error.message).toContain('locationId');
    for (const [method, path] of [
      ['GET', '/api/panel/api-keys'],
      ['POST', '/api/panel/api-keys'],
      ['DELETE', '/api/panel/api-keys/k_x'],
    ] as const) {
      const res = await call(method, path, undefined, method === 'POST' ? { name: 'x' } : undefined);
      expect(res.status).toBe(401);
      expect(res.body).toEqual({ error: SIGN_IN_FAILED });
    }
  });
});
