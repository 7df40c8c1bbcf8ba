// Acceptance: the official HighLevel Node SDK (@gohighlevel/api-client), pointed at the emulator
// (CONTRACT §8: override the axios baseURL), exchanges a code, refreshes tokens (explicitly and on
// a 401), and creates, reads, updates, searches and deletes contacts.
import { afterEach, beforeEach, expect, it } from 'vitest';
import { HighLevel, type GHLError } from '@gohighlevel/api-client';
import { testEmulator } from '../helpers/emulator.ts';
import { REDIRECT_URI, installViaConsent, seedAgency, seedApp, type Agency } from '../helpers/oauth.ts';
import type { RunningEmulator } from '../../emulator/server.ts';
import type { MarketplaceApp } from '../../emulator/state.ts';

let em: RunningEmulator;
let agency: Agency;
let app: MarketplaceApp;

beforeEach(async () => {
  // The SDK reads Date.now() for token expiry, so the emulator keeps the system clock here.
  em = await testEmulator();
  agency = seedAgency(em.emu);
  app = seedApp(em.emu);
});

afterEach(async () => {
  await em.close();
});

function sdk(): HighLevel {
  const ghl = new HighLevel({ clientId: app.clientId, clientSecret: app.clientSecret, logLevel: 'none' });
  ghl.getHttpClient().defaults.baseURL = em.url;
  return ghl;
}

async function rejection(p: Promise<unknown>): Promise<GHLError> {
  try {
    await p;
  } catch (err) {
    return err as GHLError;
  }
  throw new Error('expected the SDK call to fail');
}

it('the official SDK exchanges a code, refreshes, and runs contacts CRUD + search against the emulator', async () => {
  const locationId = agency.locations[0]!.id;
  const consent = await installViaConsent(em.url, app, locationId);
  const ghl = sdk();

  const tokens = await ghl.oauth.getAccessToken({
    client_id: app.clientId,
    client_secret: app.clientSecret,
    grant_type: 'authorization_code',
    code: consent.code!,
    user_type: 'Location',
    redirect_uri: REDIRECT_URI,
  });
  expect(tokens).toMatchObject({ token_type: 'Bearer', userType: 'Location', locationId, companyId: agency.company.id });

  const rotated = await ghl.oauth.refreshToken(tokens.refresh_token!, app.clientId, app.clientSecret, 'refresh_token', 'Location');
  expect(rotated.refresh_token).not.toBe(tokens.refresh_token);
  const reused = await rejection(ghl.oauth.refreshToken(tokens.refresh_token!, app.clientId, app.clientSecret, 'refresh_token', 'Location'));
  expect(reused.statusCode).toBe(400);
  expect(reused.message).toBe('Invalid grant: refresh token is invalid');

  await ghl.getSessionStorage().setSession(locationId, rotated);
  const byLocation = { headers: { 'x-location-id': locationId } };

  const created = await ghl.contacts.createContact({
    locationId,
    firstName: 'Grace',
    lastName: 'Hopper',
    email: 'grace@example.com',
    phone: '+15550003333',
    tags: ['sdk'],
  });
  const contactId = created.contact!.id!;
  expect(contactId).toMatch(/^[A-Za-z0-9]{20}$/);

  const got = await ghl.contacts.getContact({ contactId }, byLocation);
  expect(got.contact).toMatchObject({ id: contactId, firstName: 'Grace', email: 'grace@example.com', locationId });

  const updated = await ghl.contacts.updateContact({ contactId }, { lastName: 'Murray Hopper' }, byLocation);
  expect(updated).toMatchObject({ succeded: true, contact: { id: contactId, lastName: 'Murray Hopper' } });

  // The emulator kills the stored access token: the SDK answers the 401 by refreshing and retrying.
  // (On a retry the SDK finds the location only in headers or query, not in a JSON body.)
  em.emu.world.accessTokens[rotated.access_token!]!.expiresAt = 0;
  const found = await ghl.contacts.searchContactsAdvanced({ locationId, pageLimit: 20, query: 'grace' }, byLocation);
  expect(found.contacts?.map((c: { id?: string }) => c.id)).toEqual([contactId]);
  const session = await ghl.getSessionStorage().getSession(locationId);
  expect(session?.access_token).not.toBe(rotated.access_token);
  expect(session?.refresh_token).not.toBe(rotated.refresh_token);

  const deleted = await ghl.contacts.deleteContact({ contactId }, byLocation);
  expect(deleted).toMatchObject({ succeded: true });
  const gone = await rejection(ghl.contacts.getContact({ contactId }, byLocation));
  expect(gone.statusCode).toBe(400);
});
