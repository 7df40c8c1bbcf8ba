// Test helpers for the emulator's OAuth: seed a company, its locations and a marketplace app
// straight into the world, walk the consent form like a browser would, exchange codes, and
// receive webhooks on a local HTTP server.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Emulator } from '../../emulator/emulator.ts';
import { onLocationCreated } from '../../emulator/installs.ts';
import { insertUser } from '../../emulator/users-model.ts';
import { newApp, newCompany, newLocation, type Company, type Location, type MarketplaceApp, type User } from '../../emulator/state.ts';
import { call, type ApiResponse } from './emulator.ts';

export const REDIRECT_URI = 'https://tandem.test/oauth/callback';

export const ALL_SCOPES = [
  'contacts.readonly',
  'contacts.write',
  'users.readonly',
  'users.write',
  'locations.readonly',
  'oauth.readonly',
  'oauth.write',
];

export interface Agency {
  company: Company;
  admin: User;
  locations: Location[];
}

/** A company with an agency admin and `locationNames.length` locations, stored directly in the world. */
export function seedAgency(emu: Emulator, name = 'Acme Agency', locationNames = ['Downtown', 'Uptown'], whitelabelDomain?: string): Agency {
  const company = newCompany(name, whitelabelDomain);
  emu.world.companies[company.id] = company;
  const locations = locationNames.map((n) => addLocation(emu, company.id, n));
  const admin = insertUser(emu, {
    companyId: company.id,
    firstName: 'Ada',
    lastName: 'Owner',
    email: `ada@${company.id.toLowerCase()}.example`,
    type: 'agency',
    role: 'admin',
    locationIds: [],
  });
  return { company, admin, locations };
}

/** Adds a location the way the control API would: stored, then "future locations" installs run. */
export function addLocation(emu: Emulator, companyId: string, name: string): Location {
  const location = newLocation(companyId, name, emu.now());
  emu.world.locations[location.id] = location;
  onLocationCreated(emu, location);
  return location;
}

export function seedApp(emu: Emulator, overrides: Partial<Parameters<typeof newApp>[0]> = {}): MarketplaceApp {
  const app = newApp({ name: 'Tandem', redirectUris: [REDIRECT_URI], scopes: ALL_SCOPES, ...overrides });
  emu.world.apps[app.appId] = app;
  return app;
}

export interface ConsentOptions {
  userId?: string;
  locationIds?: string[];
  installToFutureLocations?: boolean;
  state?: string;
  scope?: string;
  action?: 'approve' | 'cancel';
}

/** Posts the consent form as a browser would; returns the redirect target and the code in it. */
export async function installViaConsent(
  base: string,
  app: MarketplaceApp,
  target: string,
  opts: ConsentOptions = {},
): Promise<{ status: number; location: URL | null; code: string | null; html: string }> {
  const form = new URLSearchParams({
    client_id: app.clientId,
    redirect_uri: REDIRECT_URI,
    scope: opts.scope ?? app.scopes.join(' '),
    target,
    action: opts.action ?? 'approve',
  });
  if (opts.userId) form.set('userId', opts.userId);
  if (opts.state) form.set('state', opts.state);
  for (const id of opts.locationIds ?? []) form.append('locationIds', id);
  if (opts.installToFutureLocations) form.set('installToFutureLocations', 'true');
  const res = await fetch(`${base}/oauth/chooselocation/approve`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form.toString(),
    redirect: 'manual',
  });
  const header = res.headers.get('location');
  const location = header ? new URL(header) : null;
  return { status: res.status, location, code: location?.searchParams.get('code') ?? null, html: await res.text() };
}

/** POST /oauth/token, form-encoded and without a Version header, as the official template does. */
export function tokenRequest(base: string, form: Record<string, string>): Promise<ApiResponse> {
  return call(base, 'POST', '/oauth/token', { form, version: null });
}

export function exchangeCode(base: string, app: MarketplaceApp, code: string, extra: Record<string, string> = {}): Promise<ApiResponse> {
  return tokenRequest(base, {
    client_id: app.clientId,
    client_secret: app.clientSecret,
    grant_type: 'authorization_code',
    code,
    redirect_uri: REDIRECT_URI,
    ...extra,
  });
}

export function refresh(base: string, app: MarketplaceApp, refreshToken: string, userType = 'Location'): Promise<ApiResponse> {
  return tokenRequest(base, {
    client_id: app.clientId,
    client_secret: app.clientSecret,
    grant_type: 'refresh_token',
    refresh_token: refreshToken,
    user_type: userType,
  });
}

/** Consent + code exchange in one go; returns the token response body. */
export async function connect(base: string, app: MarketplaceApp, target: string, opts: ConsentOptions = {}): Promise<any> {
  const consent = await installViaConsent(base, app, target, opts);
  if (!consent.code) throw new Error(`consent failed: ${consent.status} ${consent.html}`);
  const res = await exchangeCode(base, app, consent.code);
  if (res.status !== 200) throw new Error(`token exchange failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** A local webhook endpoint that records every JSON body it receives (answers 200). */
export async function webhookReceiver(): Promise<{ url: string; events: any[]; close(): Promise<void> }> {
  const events: any[] = [];
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      try {
        events.push(JSON.parse(raw));
      } catch {
        events.push(raw);
      }
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/webhooks`,
    events,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** Decodes the claims part of a JWT-shaped token. */
export function claims(token: string): Record<string, any> {
  const part = token.split('.')[1];
  if (!part) throw new Error('not a JWT-shaped token');
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}
