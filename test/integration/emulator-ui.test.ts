// The emulated HighLevel UI at the HTTP level: the index, the custom page shell (sidebar, header,
// user switcher, the app's iframe and the SSO handshake script), the contacts list and the contact
// page whose form writes like the API (same validation, same webhooks).
// A real-browser test of the postMessage handshake is the lead's (test/e2e).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { call, control, testEmulator, until } from '../helpers/emulator.ts';
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

/** A webhook receiver: records every body it is sent. */
async function startReceiver() {
  const received: Record<string, unknown>[] = [];
  const server = createServer((req, res) => {
    let data = '';
    req.on('data', (c) => (data += c));
    req.on('end', () => {
      received.push(JSON.parse(data) as Record<string, unknown>);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function postForm(path: string, fields: Record<string, string>) {
  const res = await fetch(emu.url + path, { method: 'POST', body: new URLSearchParams(fields), redirect: 'manual' });
  return { status: res.status, location: res.headers.get('location'), html: await res.text() };
}

describe('contact page', () => {
  it('links each contact from the list, and saving the form writes like the API: new version, ContactUpdate webhook, createdBy kept', async () => {
    const receiver = await startReceiver();
    try {
      const w = await world();
      await control(emu.url, 'PATCH', `/apps/${w.app.appId}`, { webhookUrl: receiver.url });
      const created = await call(emu.url, 'POST', '/contacts/', {
        token: w.location.privateToken,
        body: { locationId: w.location.id, firstName: 'Ann', lastName: 'Lee', email: 'ann@example.com', tags: ['vip'] },
      });
      const id = created.body.contact.id as string;
      await until(() => receiver.received.some((b) => b.type === 'ContactCreate'), 'ContactCreate');
      const list = await getHtml(`/v2/location/${w.location.id}/contacts?userId=${w.locationAdmin.id}`);
      expect(list.html).toContain(`href="/v2/location/${w.location.id}/contacts/${id}?userId=${w.locationAdmin.id}" data-testid="contact-link">Ann Lee</a>`);
      expect(list.html).toContain(`href="/v2/location/${w.location.id}/contacts/new?userId=${w.locationAdmin.id}"`);

      const page = await getHtml(`/v2/location/${w.location.id}/contacts/${id}?userId=${w.locationAdmin.id}`);
      expect(page.status).toBe(200);
      expect(page.html).toContain('name="firstName" value="Ann"');
      expect(page.html).toContain('name="tags" value="vip"');

      const saved = await postForm(`/v2/location/${w.location.id}/contacts/${id}?userId=${w.locationAdmin.id}`, {
        firstName: 'Anna', lastName: 'Lee', email: 'ann@example.com', phone: '', companyName: 'Lee & Co', tags: 'vip, Gold',
      });
      expect(saved.status).toBe(303);
      expect(saved.location).toBe(`/v2/location/${w.location.id}/contacts/${id}?userId=${w.locationAdmin.id}&saved=1`);
      const after = await call(emu.url, 'GET', `/contacts/${id}`, { token: w.location.privateToken });
      expect(after.body.contact).toMatchObject({ firstName: 'Anna', companyName: 'Lee & Co', tags: ['vip', 'gold'] });
      expect(after.body.contact.createdBy).toEqual(created.body.contact.createdBy);
      const update = await until(() => receiver.received.find((b) => b.type === 'ContactUpdate'), 'ContactUpdate');
      expect(update).toMatchObject({ id, firstName: 'Anna', locationId: w.location.id });
      await until(() => receiver.received.find((b) => b.type === 'ContactTagUpdate'), 'ContactTagUpdate');

      const shown = await getHtml(saved.location!);
      expect(shown.html).toContain('data-testid="saved-notice"');
      expect(shown.html).toContain('name="companyName" value="Lee &amp; Co"');
    } finally {
      await receiver.close();
    }
  });

  it('saving an unchanged form stores nothing and sends no webhook', async () => {
    const w = await world();
    const created = await call(emu.url, 'POST', '/contacts/', { token: w.location.privateToken, body: { locationId: w.location.id, firstName: 'Bo', email: 'bo@example.com' } });
    const before = created.body.contact;
    const saved = await postForm(`/v2/location/${w.location.id}/contacts/${before.id}`, { firstName: 'Bo', lastName: '', email: 'bo@example.com', phone: '', companyName: '', tags: '' });
    expect(saved.status).toBe(303);
    const after = await call(emu.url, 'GET', `/contacts/${before.id}`, { token: w.location.privateToken });
    expect(after.body.contact.dateUpdated).toBe(before.dateUpdated);
  });

  it('creates a contact from the new-contact form with a web user as createdBy', async () => {
    const w = await world();
    const form = await getHtml(`/v2/location/${w.location.id}/contacts/new?userId=${w.plainUser.id}`);
    expect(form.status).toBe(200);
    expect(form.html).toContain('data-testid="contact-form"');
    const saved = await postForm(`/v2/location/${w.location.id}/contacts/new?userId=${w.plainUser.id}`, { firstName: 'Cy', lastName: 'Ng', email: 'cy@example.com', phone: '', companyName: '', tags: '' });
    expect(saved.status).toBe(303);
    const id = /contacts\/([A-Za-z0-9]+)\?/.exec(saved.location ?? '')?.[1];
    expect(id).toMatch(/^[A-Za-z0-9]{20}$/);
    const got = await call(emu.url, 'GET', `/contacts/${id}`, { token: w.location.privateToken });
    expect(got.body.contact).toMatchObject({ firstName: 'Cy', lastName: 'Ng', email: 'cy@example.com', locationId: w.location.id });
    expect(got.body.contact.phone).toBeUndefined();
    expect(got.body.contact.createdBy).toMatchObject({ source: 'WEB_USER', channel: 'APP', sourceId: w.plainUser.id });
  });

  it('saves a phone the form can read in E.164, as HighLevel\'s contact form does, and one it cannot as typed', async () => {
    const w = await world();
    const made = async (phone: string) => {
      const saved = await postForm(`/v2/location/${w.location.id}/contacts/new`, { firstName: 'Ph', lastName: 'One', email: `ph.${phone.replace(/\W/g, '')}@example.com`, phone, companyName: '', tags: '' });
      expect(saved.status).toBe(303);
      const id = /contacts\/([A-Za-z0-9]+)\?/.exec(saved.location ?? '')![1];
      return (await call(emu.url, 'GET', `/contacts/${id}`, { token: w.location.privateToken })).body.contact.phone;
    };
    expect(await made('(503) 555-7094')).toBe('+15035557094');
    // Possible though not assigned (a 555 area code), as Tandem reads such a number too.
    expect(await made('(555) 555-4908')).toBe('+15555554908');
    expect(await made('+44 20 7946 0958')).toBe('+442079460958');
    expect(await made('ext. 12')).toBe('ext. 12');
  });

  it('shows validation and duplicate errors with the values entered, and changes nothing', async () => {
    const w = await world();
    const a = await call(emu.url, 'POST', '/contacts/', { token: w.location.privateToken, body: { locationId: w.location.id, firstName: 'Di', email: 'di@example.com' } });
    await call(emu.url, 'POST', '/contacts/', { token: w.location.privateToken, body: { locationId: w.location.id, firstName: 'Ed', email: 'ed@example.com' } });
    const bad = await postForm(`/v2/location/${w.location.id}/contacts/${a.body.contact.id}`, { firstName: 'Dinah', email: 'not-an-email' });
    expect(bad.status).toBe(422);
    expect(bad.html).toContain('data-testid="form-errors"');
    expect(bad.html).toContain('email must be an email');
    expect(bad.html).toContain('name="firstName" value="Dinah"');
    const dup = await postForm(`/v2/location/${w.location.id}/contacts/${a.body.contact.id}`, { email: 'ED@example.com' });
    expect(dup.status).toBe(400);
    expect(dup.html).toContain('This location does not allow duplicated contacts.');
    const newDup = await postForm(`/v2/location/${w.location.id}/contacts/new`, { firstName: 'X', email: 'di@example.com' });
    expect(newDup.status).toBe(400);
    const after = await call(emu.url, 'GET', `/contacts/${a.body.contact.id}`, { token: w.location.privateToken });
    expect(after.body.contact).toMatchObject({ firstName: 'Di', email: 'di@example.com', dateUpdated: a.body.contact.dateUpdated });
  });

  it('answers 404 for a contact of another location', async () => {
    const w = await world();
    const c = await call(emu.url, 'POST', '/contacts/', { token: w.location.privateToken, body: { locationId: w.location.id, firstName: 'Fay' } });
    expect((await getHtml(`/v2/location/${w.other.id}/contacts/${c.body.contact.id}`)).status).toBe(404);
    expect((await postForm(`/v2/location/${w.other.id}/contacts/${c.body.contact.id}`, { firstName: 'Z' })).status).toBe(404);
  });
});
