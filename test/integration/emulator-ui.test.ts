// The emulated HighLevel UI at the HTTP level: the index, the custom page shell (sidebar, header,
// user switcher, the app's iframe and the SSO handshake script) and the contacts list.
// A real-browser test of the postMessage handshake is the lead's (test/e2e).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { call, control, testEmulator } from '../helpers/emulator.ts';
import type { RunningEmulator } from '../../emulator/server.ts';
import { decryptUserData } from '../../emulator/sso.ts';

let emu: RunningEmulator;

beforeEach(async () => {
  emu = await testEmulator();
});

afterEach(async () => {
  await emu.close();
});

async function getHtml(path: string) {
  const res = await fetch(emu.url + path);
  return { status: res.status, type: res.headers.get('content-type'), html: await res.text() };
}

async function world() {
  const location = await control(emu.url, 'POST', '/locations', { name: 'Main <Street>', companyName: 'Acme Agency' });
  const app = await control(emu.url, 'POST', '/apps', {
    name: 'Tandem',
    redirectUris: ['http://127.0.0.1:3000/oauth/callback'],
    customPageUrl: 'http://127.0.0.1:3000/panel/?x=1&y=2',
    scopes: ['contacts.readonly', 'contacts.write'],
    sharedSecret: 'ui-secret',
  });
  const user = (type: 'agency' | 'account', role: 'admin' | 'user', firstName: string, locationIds: string[]) =>
    control(emu.url, 'POST', '/users', {
      companyId: location.companyId,
      firstName,
      lastName: 'Test',
      email: `${firstName.toLowerCase()}@example.com`,
      type,
      role,
      locationIds,
    });
  const agencyAdmin = await user('agency', 'admin', 'Agnes', []);
  const locationAdmin = await user('account', 'admin', 'Lara', [location.id]);
  const plainUser = await user('account', 'user', 'Paul', [location.id]);
  const other = await control(emu.url, 'POST', '/locations', { name: 'Other', companyId: location.companyId });
  const outsider = await user('account', 'user', 'Olga', [other.id]);
  await control(emu.url, 'POST', '/installs', { appId: app.appId, locationId: location.id, userId: agencyAdmin.id });
  return { location, app, agencyAdmin, locationAdmin, plainUser, outsider, other };
}

describe('custom page', () => {
  it('frames the app URL in HighLevel\'s shell with a user switcher of the users who can open the location', async () => {
    const w = await world();
    const page = await getHtml(`/v2/location/${w.location.id}/custom-page/${w.app.appId}?userId=${w.plainUser.id}`);
    expect(page.status).toBe(200);
    expect(page.type).toMatch(/^text\/html/);
    const { html } = page;
    expect(html).toContain('data-testid="sidebar"');
    expect(html).toContain('data-testid="header"');
    expect(html).toMatch(/<iframe class="app-frame" data-testid="app-frame" title="Tandem" src="http:\/\/127\.0\.0\.1:3000\/panel\/\?x=1&amp;y=2"><\/iframe>/);
    // The location name is escaped, the app is the active menu item, built-in items are there.
    expect(html).toContain('Main &lt;Street&gt;');
    expect(html).not.toContain('Main <Street>');
    expect(html).toMatch(/<a class="nav active" href="[^"]*custom-page\/[^"]*"[^>]*>Tandem<\/a>/);
    for (const item of ['Launchpad', 'Dashboard', 'Conversations', 'Contacts', 'Opportunities', 'Payments']) {
      expect(html).toContain(`>${item}</a>`);
    }
    // The switcher: agency admin, location admin and plain user, each with role and type; not the outsider.
    const switcher = html.match(/<select data-testid="user-switcher"[^>]*>(.*?)<\/select>/s)?.[1] ?? '';
    expect(switcher).toContain(`<option value="${w.agencyAdmin.id}">Agnes Test (agency admin)</option>`);
    expect(switcher).toContain(`<option value="${w.locationAdmin.id}">Lara Test (location admin)</option>`);
    expect(switcher).toContain(`<option value="${w.plainUser.id}" selected>Paul Test (location user)</option>`);
    expect(switcher).not.toContain(w.outsider.id);
  });

  it('carries a handshake script answering REQUEST_USER_DATA to the app origin for the selected user', async () => {
    const w = await world();
    const { html } = await getHtml(`/v2/location/${w.location.id}/custom-page/${w.app.appId}?userId=${w.locationAdmin.id}`);
    const script = html.match(/var ctx = (\{.*?\});/)?.[1];
    expect(JSON.parse(script!)).toEqual({
      appId: w.app.appId,
      userId: w.locationAdmin.id,
      locationId: w.location.id,
      frameOrigin: 'http://127.0.0.1:3000',
    });
    expect(html).toContain("data.message !== 'REQUEST_USER_DATA'");
    expect(html).toContain("message: 'REQUEST_USER_DATA_RESPONSE'");
    expect(html).toContain("fetch('/__emulator/sso?'");
    expect(html).toContain('event.source !== frame.contentWindow');

    // What the script fetches decrypts, with the app's shared secret, to the selected user.
    const sso = await control(emu.url, 'GET', `/sso?appId=${w.app.appId}&userId=${w.locationAdmin.id}&locationId=${w.location.id}`);
    expect(decryptUserData(sso.payload, 'ui-secret')).toEqual({
      userId: w.locationAdmin.id,
      companyId: w.location.companyId,
      role: 'admin',
      type: 'location',
      activeLocation: w.location.id,
      userName: 'Lara Test',
      email: 'lara@example.com',
    });
  });

  it('signs in the first agency user when no userId is given, and refuses a user of another location', async () => {
    const w = await world();
    const { html } = await getHtml(`/v2/location/${w.location.id}/custom-page/${w.app.appId}`);
    expect(html).toContain(`<option value="${w.agencyAdmin.id}" selected>`);
    const denied = await getHtml(`/v2/location/${w.location.id}/custom-page/${w.app.appId}?userId=${w.outsider.id}`);
    expect(denied.status).toBe(403);
  });

  it('shows a notice instead of a frame when the app is not installed or has no custom page', async () => {
    const w = await world();
    const notInstalled = await getHtml(`/v2/location/${w.other.id}/custom-page/${w.app.appId}`);
    expect(notInstalled.status).toBe(200);
    expect(notInstalled.html).not.toContain('<iframe');
    expect(notInstalled.html).toContain('Tandem is not installed on this location.');

    await control(emu.url, 'PATCH', `/apps/${w.app.appId}`, { customPageUrl: null });
    const noPage = await getHtml(`/v2/location/${w.location.id}/custom-page/${w.app.appId}`);
    expect(noPage.html).not.toContain('<iframe');
    expect(noPage.html).toContain('Tandem has no custom page URL.');
  });

  it('answers 404 for an unknown location or app', async () => {
    const w = await world();
    expect((await getHtml(`/v2/location/nope/custom-page/${w.app.appId}`)).status).toBe(404);
    expect((await getHtml(`/v2/location/${w.location.id}/custom-page/nope`)).status).toBe(404);
  });
});

describe('index and contacts pages', () => {
  it('lists companies, locations with their custom pages, and apps', async () => {
    const w = await world();
    const { status, html } = await getHtml('/');
    expect(status).toBe(200);
    expect(html).toContain('Acme Agency');
    expect(html).toContain(`href="/v2/location/${w.location.id}/custom-page/${w.app.appId}"`);
    expect(html).toContain(w.location.privateToken);
    expect(html).toContain(w.app.clientId);
    expect(html).toContain('/oauth/chooselocation?response_type=code');
  });

  it('lists a location\'s contacts', async () => {
    const w = await world();
    const created = await call(emu.url, 'POST', '/contacts/', {
      token: w.location.privateToken,
      body: { locationId: w.location.id, firstName: 'Ann', lastName: 'Lee', email: 'ann@example.com', tags: ['vip'] },
    });
    expect(created.status).toBe(201);
    const { status, html } = await getHtml(`/v2/location/${w.location.id}/contacts`);
    expect(status).toBe(200);
    expect(html).toContain(`data-contact-id="${created.body.contact.id}"`);
    expect(html).toContain('Ann Lee');
    expect(html).toContain('ann@example.com');
    expect(html).toContain('<span class="tag">vip</span>');
    expect(html).toMatch(/<a class="nav active"[^>]*>Contacts<\/a>/);
  });
});
