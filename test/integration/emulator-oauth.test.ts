// The emulator's OAuth over real HTTP: consent page, code exchange for location and agency
// installs, refresh rotation, expiry, inactive locations, location tokens, installed locations,
// INSTALL/UNINSTALL webhooks and the header/scope/auth-class rules (CONTRACT §1, §2.2, §9.1-3).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock, call, testEmulator, until } from '../helpers/emulator.ts';
import { specErrors } from '../helpers/openapi.ts';
import {
  REDIRECT_URI,
  addLocation,
  claims,
  connect,
  exchangeCode,
  installViaConsent,
  refresh,
  seedAgency,
  seedApp,
  tokenRequest,
  webhookReceiver,
  type Agency,
} from '../helpers/oauth.ts';
import { uninstall } from '../../emulator/installs.ts';
import type { RunningEmulator } from '../../emulator/server.ts';
import type { MarketplaceApp } from '../../emulator/state.ts';

const OAUTH = 'apps/oauth.json';
const AUTH_CLASS =
  'This authClass type is not allowed to access this scope. Please reach out to the Platform team to get it added.';

let clock: ManualClock;
let em: RunningEmulator;
let base: string;
let agency: Agency;
let app: MarketplaceApp;

beforeEach(async () => {
  clock = new ManualClock();
  em = await testEmulator({ clock });
  base = em.url;
  agency = seedAgency(em.emu);
  app = seedApp(em.emu);
});

afterEach(async () => {
  await em.close();
});

function consentUrl(params: Record<string, string>, path = '/oauth/chooselocation'): string {
  return `${base}${path}?${new URLSearchParams({ response_type: 'code', ...params }).toString()}`;
}

describe('consent page', () => {
  it('shows the user, the locations and the agency choice in one scriptable form, on both paths', async () => {
    for (const path of ['/oauth/chooselocation', '/v2/oauth/chooselocation']) {
      const res = await fetch(consentUrl({ client_id: app.clientId, redirect_uri: REDIRECT_URI, scope: 'contacts.readonly users.readonly', state: 'xyz' }, path));
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/html');
      const html = await res.text();
      expect(html).toContain('<form id="approve" method="post" action="/oauth/chooselocation/approve">');
      expect(html).toContain('Logged in as');
      expect(html).toContain(`value="${agency.admin.id}" selected`);
      for (const l of agency.locations) expect(html).toContain(`data-testid="target-${l.id}"`);
      expect(html).toContain('data-testid="target-agency"');
      expect(html).toContain('Acme Agency (agency — all locations)');
      expect(html).toContain('data-testid="install-future"');
      expect(html).toContain('name="state" value="xyz"');
      expect(html).toContain('name="scope" value="contacts.readonly users.readonly"');
    }
  });

  it('accepts +-separated scopes and hides the agency choice from location-only apps', async () => {
    const locationApp = seedApp(em.emu, { distribution: 'location' });
    const res = await fetch(`${base}/oauth/chooselocation?response_type=code&client_id=${locationApp.clientId}&redirect_uri=${encodeURIComponent(REDIRECT_URI)}&scope=contacts.readonly+contacts.write`);
    const html = await res.text();
    expect(res.status).toBe(200);
    expect(html).toContain('name="scope" value="contacts.readonly contacts.write"');
    expect(html).not.toContain('data-testid="target-agency"');
  });

  it('answers an HTML 400 for an unknown client, an unregistered redirect URI or a scope the app lacks', async () => {
    const cases = [
      { client_id: 'nope-12345678', redirect_uri: REDIRECT_URI, scope: 'contacts.readonly' },
      { client_id: app.clientId, redirect_uri: 'https://evil.test/cb', scope: 'contacts.readonly' },
      { client_id: app.clientId, redirect_uri: REDIRECT_URI, scope: 'contacts.readonly medias.write' },
    ];
    for (const params of cases) {
      const res = await fetch(consentUrl(params));
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toContain('text/html');
      expect(await res.text()).toContain('data-testid="error-message"');
    }
  });

  it('Cancel sends the browser back with error=access_denied and the state', async () => {
    const res = await installViaConsent(base, app, agency.locations[0]!.id, { action: 'cancel', state: 's1' });
    expect(res.status).toBe(302);
    expect(res.location?.origin + res.location!.pathname).toBe(REDIRECT_URI);
    expect(res.location?.searchParams.get('error')).toBe('access_denied');
    expect(res.location?.searchParams.get('state')).toBe('s1');
    expect(em.emu.world.installations).toEqual([]);
  });
});

describe('authorization_code grant', () => {
  it('location install: 40-hex single-use code, Location token shaped like the spec and a JWT', async () => {
    const loc = agency.locations[0]!;
    const consent = await installViaConsent(base, app, loc.id, { state: 'abc' });
    expect(consent.status).toBe(302);
    expect(consent.code).toMatch(/^[0-9a-f]{40}$/);
    expect(consent.location?.searchParams.get('state')).toBe('abc');

    const res = await exchangeCode(base, app, consent.code!);
    expect(res.status).toBe(200);
    expect(specErrors(OAUTH, 'POST', '/oauth/token', 200, res.body)).toEqual([]);
    expect(res.body).toMatchObject({
      token_type: 'Bearer',
      expires_in: 86399,
      scope: app.scopes.join(' '),
      userType: 'Location',
      locationId: loc.id,
      companyId: agency.company.id,
      userId: agency.admin.id,
      isBulkInstallation: false,
    });
    expect(res.body.approvedLocations).toBeUndefined();
    expect(typeof res.body.traceId).toBe('string');
    const c = claims(res.body.access_token);
    expect(c).toMatchObject({ authClass: 'Location', authClassId: loc.id, source: 'INTEGRATION', sourceId: app.clientId, channel: 'OAUTH' });
    expect(c.oauthMeta.scopes).toEqual(app.scopes);
    expect(c.exp - c.iat).toBe(86399);

    const again = await exchangeCode(base, app, consent.code!);
    expect(again.status).toBe(400);
    expect(again.body.message).toBe('Invalid grant: authorization code is invalid');

    const got = await call(base, 'GET', `/locations/${loc.id}`, { token: res.body.access_token });
    expect(got.status).toBe(200);
  });

  it('agency (bulk) install: Company token with approved locations and install-to-future flags', async () => {
    const [l1] = agency.locations;
    const consent = await installViaConsent(base, app, 'agency', { locationIds: [l1!.id], installToFutureLocations: true });
    const res = await exchangeCode(base, app, consent.code!, { user_type: 'Company' });
    expect(res.status).toBe(200);
    expect(specErrors(OAUTH, 'POST', '/oauth/token', 200, res.body)).toEqual([]);
    expect(res.body).toMatchObject({
      userType: 'Company',
      companyId: agency.company.id,
      approvedLocations: [l1!.id],
      userId: agency.admin.id,
      isBulkInstallation: true,
      installToFutureLocations: true,
      approveAllLocations: false,
    });
    expect(res.body.locationId).toBeUndefined();
    expect(claims(res.body.access_token)).toMatchObject({ authClass: 'Company', authClassId: agency.company.id });
  });

  it('rejects an expired code, a different redirect_uri and another app\'s code', async () => {
    const other = seedApp(em.emu, { name: 'Other' });
    const loc = agency.locations[0]!.id;
    const a = await installViaConsent(base, app, loc);
    expect((await exchangeCode(base, app, a.code!, { redirect_uri: 'https://tandem.test/other' })).status).toBe(400);
    expect((await exchangeCode(base, other, a.code!)).body.message).toBe('Invalid grant: authorization code is invalid');
    clock.advance(em.emu.config.authCodeTtlSec * 1000);
    const late = await exchangeCode(base, app, a.code!);
    expect(late.status).toBe(400);
    expect(late.body.message).toBe('Invalid grant: authorization code is invalid');
  });

  it('checks client credentials and parameters; accepts JSON as well as a form', async () => {
    const missing = await tokenRequest(base, { client_secret: app.clientSecret, grant_type: 'authorization_code' });
    expect(missing.status).toBe(400);
    expect(missing.body).toMatchObject({ statusCode: 400, message: 'Missing parameter: client_id', error: 'Bad Request' });
    const noCode = await tokenRequest(base, { client_id: app.clientId, client_secret: app.clientSecret, grant_type: 'authorization_code' });
    expect(noCode.body.message).toBe('Missing parameter: code');
    const wrong = await tokenRequest(base, { client_id: app.clientId, client_secret: 'wrong', grant_type: 'refresh_token', refresh_token: 'x' });
    expect(wrong.status).toBe(401);
    expect(wrong.body).toMatchObject({ statusCode: 401, message: 'Invalid client: client is invalid' });
    const grant = await tokenRequest(base, { client_id: app.clientId, client_secret: app.clientSecret, grant_type: 'password' });
    expect(grant.status).toBe(400);
    expect(grant.body.message).toBe('Invalid parameter: grant_type');

    const consent = await installViaConsent(base, app, agency.locations[0]!.id);
    const json = await call(base, 'POST', '/oauth/token', {
      version: null,
      body: { client_id: app.clientId, client_secret: app.clientSecret, grant_type: 'authorization_code', code: consent.code },
    });
    expect(json.status).toBe(200);
    expect(json.body.userType).toBe('Location');
  });
});

describe('refresh_token grant', () => {
  it('rotates: the old refresh token dies at use, the new one works', async () => {
    const first = await connect(base, app, agency.locations[0]!.id);
    const second = await refresh(base, app, first.refresh_token);
    expect(second.status).toBe(200);
    expect(specErrors(OAUTH, 'POST', '/oauth/token', 200, second.body)).toEqual([]);
    expect(second.body.refresh_token).not.toBe(first.refresh_token);
    expect(second.body).toMatchObject({ userType: 'Location', locationId: agency.locations[0]!.id, userId: agency.admin.id });

    const reused = await refresh(base, app, first.refresh_token);
    expect(reused.status).toBe(400);
    expect(reused.body).toMatchObject({ statusCode: 400, message: 'Invalid grant: refresh token is invalid', error: 'Bad Request' });
    expect(typeof reused.body.traceId).toBe('string');

    const third = await refresh(base, app, second.body.refresh_token);
    expect(third.status).toBe(200);
    expect((await call(base, 'GET', `/locations/${agency.locations[0]!.id}`, { token: third.body.access_token })).status).toBe(200);
  });

  it('access tokens expire after expires_in on the emulator clock (401 Invalid JWT); refresh still works', async () => {
    const loc = agency.locations[0]!.id;
    const t = await connect(base, app, loc);
    clock.advance(86_398_000);
    expect((await call(base, 'GET', `/locations/${loc}`, { token: t.access_token })).status).toBe(200);
    clock.advance(2000);
    const expired = await call(base, 'GET', `/locations/${loc}`, { token: t.access_token });
    expect(expired.status).toBe(401);
    expect(expired.body).toMatchObject({ statusCode: 401, message: 'Invalid JWT' });
    const renewed = await refresh(base, app, t.refresh_token);
    expect(renewed.status).toBe(200);
    expect((await call(base, 'GET', `/locations/${loc}`, { token: renewed.body.access_token })).status).toBe(200);
  });

  it('"Location is not active" keeps the refresh token alive until the location is reactivated', async () => {
    const loc = agency.locations[0]!;
    const t = await connect(base, app, loc.id);
    em.emu.world.locations[loc.id]!.active = false;
    const paused = await refresh(base, app, t.refresh_token);
    expect(paused.status).toBe(400);
    expect(paused.body).toMatchObject({ statusCode: 400, message: 'Location is not active' });
    em.emu.world.locations[loc.id]!.active = true;
    const back = await refresh(base, app, t.refresh_token);
    expect(back.status).toBe(200);
  });

  it('an uninstall revokes access and refresh tokens', async () => {
    const loc = agency.locations[0]!.id;
    const t = await connect(base, app, loc);
    expect(uninstall(em.emu, { appId: app.appId, locationId: loc })).toBe(true);
    expect((await call(base, 'GET', `/locations/${loc}`, { token: t.access_token })).status).toBe(401);
    const r = await refresh(base, app, t.refresh_token);
    expect(r.status).toBe(400);
    expect(r.body.message).toBe('Invalid grant: refresh token is invalid');
  });

  it('refreshes a Company token with the current approved locations', async () => {
    const t = await connect(base, app, 'agency', { locationIds: [agency.locations[0]!.id], installToFutureLocations: true });
    const added = addLocation(em.emu, agency.company.id, 'Later');
    const r = await refresh(base, app, t.refresh_token, 'Company');
    expect(r.status).toBe(200);
    expect(specErrors(OAUTH, 'POST', '/oauth/token', 200, r.body)).toEqual([]);
    expect(r.body).toMatchObject({ userType: 'Company', isBulkInstallation: true, installToFutureLocations: true });
    expect(r.body.approvedLocations).toEqual([agency.locations[0]!.id, added.id]);
  });
});

describe('location tokens and installed locations', () => {
  it('mints Location tokens (with refresh token) for approved locations, including future ones', async () => {
    const [l1, l2] = agency.locations;
    const company = await connect(base, app, 'agency', { locationIds: [l1!.id], installToFutureLocations: true });

    const res = await call(base, 'POST', '/oauth/locationToken', { token: company.access_token, form: { companyId: agency.company.id, locationId: l1!.id } });
    expect(res.status).toBe(200);
    expect(specErrors(OAUTH, 'POST', '/oauth/locationToken', 200, res.body)).toEqual([]);
    expect(res.body).toMatchObject({ token_type: 'Bearer', expires_in: 86399, locationId: l1!.id, userId: agency.admin.id, appId: app.appId, versionId: app.versionId });
    expect(typeof res.body.refresh_token).toBe('string');
    expect(claims(res.body.access_token)).toMatchObject({ authClass: 'Location', authClassId: l1!.id });
    expect((await call(base, 'GET', `/locations/${l1!.id}`, { token: res.body.access_token })).status).toBe(200);
    const rotated = await refresh(base, app, res.body.refresh_token);
    expect(rotated.status).toBe(200);
    expect(rotated.body.locationId).toBe(l1!.id);

    const notApproved = await call(base, 'POST', '/oauth/locationToken', { token: company.access_token, body: { companyId: agency.company.id, locationId: l2!.id } });
    expect(notApproved.status).toBe(400);
    expect(notApproved.body).toMatchObject({ statusCode: 400, message: 'Location not found' });

    const later = addLocation(em.emu, agency.company.id, 'Opened later');
    const future = await call(base, 'POST', '/oauth/locationToken', { token: company.access_token, body: { companyId: agency.company.id, locationId: later.id } });
    expect(future.status).toBe(200);
    expect(future.body.locationId).toBe(later.id);

    const missing = await call(base, 'POST', '/oauth/locationToken', { token: company.access_token, body: { companyId: agency.company.id } });
    expect(missing.status).toBe(422);
    expect(missing.body.message).toEqual(['locationId must be a string']);
  });

  it('refuses Location tokens and requires the Version header', async () => {
    const loc = await connect(base, app, agency.locations[0]!.id);
    const res = await call(base, 'POST', '/oauth/locationToken', { token: loc.access_token, form: { companyId: agency.company.id, locationId: agency.locations[0]!.id } });
    expect(res.status).toBe(401);
    expect(res.body.message).toBe("This token's user type is not yet supported!");
    const company = await connect(base, app, 'agency');
    const noVersion = await call(base, 'POST', '/oauth/locationToken', {
      token: company.access_token,
      version: null,
      form: { companyId: agency.company.id, locationId: agency.locations[0]!.id },
    });
    expect(noVersion.status).toBe(401);
    expect(noVersion.body.message).toBe('version header was not found.');
  });

  it('lists the company\'s locations with their install state', async () => {
    const [l1, l2] = agency.locations;
    const company = await connect(base, app, 'agency', { locationIds: [l1!.id], installToFutureLocations: true });
    const path = `/oauth/installedLocations?companyId=${agency.company.id}&appId=${app.appId}`;
    const res = await call(base, 'GET', path, { token: company.access_token });
    expect(res.status).toBe(200);
    expect(specErrors(OAUTH, 'GET', '/oauth/installedLocations', 200, res.body)).toEqual([]);
    expect(res.body.count).toBe(2);
    expect(res.body.installToFutureLocations).toBe(true);
    const byId = Object.fromEntries(res.body.locations.map((l: any) => [l._id, l]));
    expect(byId[l1!.id]).toMatchObject({ name: 'Downtown', isInstalled: true, versionId: app.versionId, installedAt: new Date(clock.now()).toISOString() });
    expect(byId[l2!.id]).toMatchObject({ name: 'Uptown', isInstalled: false });

    const installedOnly = await call(base, 'GET', `${path}&isInstalled=true`, { token: company.access_token });
    expect(installedOnly.body.locations.map((l: any) => l._id)).toEqual([l1!.id]);
    const page = await call(base, 'GET', `${path}&skip=1&limit=1`, { token: company.access_token });
    expect(page.body.locations).toHaveLength(1);
    expect(page.body.count).toBe(2);
    const named = await call(base, 'GET', `${path}&query=upt`, { token: company.access_token });
    expect(named.body.locations.map((l: any) => l._id)).toEqual([l2!.id]);

    const noApp = await call(base, 'GET', `/oauth/installedLocations?companyId=${agency.company.id}`, { token: company.access_token });
    expect(noApp.status).toBe(422);
    const loc = await connect(base, app, l1!.id);
    const wrongClass = await call(base, 'GET', path, { token: loc.access_token });
    expect(wrongClass.status).toBe(401);
    expect(wrongClass.body.message).toBe(AUTH_CLASS);
  });
});

describe('request rules', () => {
  it('Version header: missing or unknown → 401; /oauth/token is exempt', async () => {
    const loc = agency.locations[0]!.id;
    const t = await connect(base, app, loc);
    const none = await call(base, 'GET', `/locations/${loc}`, { token: t.access_token, version: null });
    expect(none.status).toBe(401);
    expect(none.body).toMatchObject({ statusCode: 401, message: 'version header was not found.' });
    const bad = await call(base, 'GET', `/locations/${loc}`, { token: t.access_token, version: '2020-01-01' });
    expect(bad.status).toBe(401);
    expect(bad.body.message).toBe('version header is invalid');
    expect((await call(base, 'GET', `/locations/${loc}`, { token: t.access_token, version: '2023-02-21' })).status).toBe(200);
  });

  it('scope missing → 401; other location → 403; Company token on a Location-only route → 401', async () => {
    const [l1, l2] = agency.locations;
    const narrow = await connect(base, app, l1!.id, { scope: 'contacts.readonly' });
    const noScope = await call(base, 'GET', `/locations/${l1!.id}`, { token: narrow.access_token });
    expect(noScope.status).toBe(401);
    expect(noScope.body.message).toBe('The token is not authorized for this scope.');

    const t = await connect(base, app, l1!.id);
    const other = await call(base, 'GET', `/locations/${l2!.id}`, { token: t.access_token });
    expect(other.status).toBe(403);
    expect(other.body.message).toBe('The token does not have access to this location.');

    const company = await connect(base, app, 'agency');
    const wrongClass = await call(base, 'GET', `/users/?locationId=${l1!.id}`, { token: company.access_token });
    expect(wrongClass.status).toBe(401);
    expect(wrongClass.body.message).toBe(AUTH_CLASS);
  });
});

describe('INSTALL and UNINSTALL webhooks', () => {
  it('sends INSTALL per location (and one Company INSTALL for agency installs), UNINSTALL on removal', async () => {
    const hook = await webhookReceiver();
    try {
      const wl = seedAgency(em.emu, 'White Label Co', ['Solo'], 'app.wl.example');
      const hooked = seedApp(em.emu, { webhookUrl: hook.url });
      await connect(base, hooked, wl.locations[0]!.id);
      const loc = await until(() => hook.events.find((e) => e.type === 'INSTALL' && e.locationId === wl.locations[0]!.id));
      expect(loc).toMatchObject({
        appId: hooked.appId,
        versionId: hooked.versionId,
        installType: 'Location',
        companyId: wl.company.id,
        userId: wl.admin.id,
        companyName: 'White Label Co',
        isWhitelabelCompany: true,
        whitelabelDetails: { domain: 'app.wl.example' },
      });
      expect(typeof loc.webhookId).toBe('string');
      expect(typeof loc.timestamp).toBe('string');

      await connect(base, hooked, 'agency', { userId: agency.admin.id, locationIds: [agency.locations[0]!.id], installToFutureLocations: true });
      const companyInstall = await until(() => hook.events.find((e) => e.type === 'INSTALL' && e.installType === 'Company'));
      expect(companyInstall).toMatchObject({ companyId: agency.company.id, userId: agency.admin.id, companyName: 'Acme Agency' });
      expect(companyInstall.locationId).toBeUndefined();
      await until(() => hook.events.find((e) => e.type === 'INSTALL' && e.locationId === agency.locations[0]!.id));
      expect(hook.events.some((e) => e.type === 'INSTALL' && e.locationId === agency.locations[1]!.id)).toBe(false);

      const later = addLocation(em.emu, agency.company.id, 'Future');
      const futureInstall = await until(() => hook.events.find((e) => e.type === 'INSTALL' && e.locationId === later.id));
      expect(futureInstall).toMatchObject({ companyId: agency.company.id, installType: 'Location' });

      uninstall(em.emu, { appId: hooked.appId, companyId: agency.company.id });
      await until(() => hook.events.find((e) => e.type === 'UNINSTALL' && e.companyId === agency.company.id));
      await until(() => hook.events.find((e) => e.type === 'UNINSTALL' && e.locationId === later.id));
      expect(em.emu.appsInstalledOn(agency.locations[0]!.id)).toEqual([]);
    } finally {
      await hook.close();
    }
  });

  it('a repeated install updates the installation instead of duplicating it', async () => {
    const loc = agency.locations[0]!.id;
    await connect(base, app, loc);
    await connect(base, app, loc);
    expect(em.emu.world.installations.filter((i) => i.locationId === loc)).toHaveLength(1);
    await connect(base, app, 'agency', { locationIds: [loc] });
    await connect(base, app, 'agency', { locationIds: [agency.locations[1]!.id] });
    const agencyInstalls = em.emu.world.installations.filter((i) => !i.locationId);
    expect(agencyInstalls).toHaveLength(1);
    expect(agencyInstalls[0]!.approvedLocations.sort()).toEqual(agency.locations.map((l) => l.id).sort());
    expect(agencyInstalls[0]!.approveAllLocations).toBe(true);
  });
});
