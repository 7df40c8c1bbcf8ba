// The emulator's Contacts API over real HTTP: shapes checked against HighLevel's official schemas,
// envelopes, validation, duplicates, upsert, tags, the legacy list and the webhooks writes send.
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, ManualClock, testEmulator, until } from '../helpers/emulator.ts';
import { specErrors } from '../helpers/openapi.ts';
import { addLocation, addOauthToken, installApp } from '../helpers/world.ts';
import { seedContacts } from '../../emulator/contact-model.ts';
import type { RunningEmulator } from '../../emulator/server.ts';

const SPEC = 'apps/contacts.json';
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const CUSTOM_FIELD_ID = 'AbCdEfGhIjKlMnOpQrSt';

let running: RunningEmulator;
let base: string;
const clock = new ManualClock();

beforeAll(async () => {
  running = await testEmulator({ clock, config: { rateLimit: { burstMax: 1_000_000, burstWindowMs: 10_000, dailyMax: 10_000_000 } } });
  base = running.url;
});
afterAll(async () => {
  await running.close();
});

function location(opts: Parameters<typeof addLocation>[1] = {}) {
  return addLocation(running.emu, opts);
}

describe('contact lifecycle', () => {
  it('creates, reads, updates and deletes with the documented shapes and envelopes', async () => {
    const { location: loc, token } = location();
    const created = await call(base, 'POST', '/contacts/', {
      token,
      body: {
        locationId: loc.id,
        firstName: 'Jane',
        lastName: 'Doe',
        email: 'Jane.Doe@Example.com',
        phone: ' +1 888-888-8888 ',
        companyName: 'Acme',
        address1: '1 Main St',
        city: 'Austin',
        tags: [' VIP ', 'vip', 'Customer'],
        dateOfBirth: '09/25/1990',
        dndSettings: { SMS: { status: 'active', message: 'no texts' } },
        customFields: [{ id: CUSTOM_FIELD_ID, field_value: 'blue' }],
        source: 'tandem',
      },
    });
    expect(created.status).toBe(201);
    expect(specErrors(SPEC, 'POST', '/contacts/', 201, created.body)).toEqual([]);
    expect(created.body.traceId).toMatch(/^[0-9a-f-]{36}$/);
    const c = created.body.contact;
    expect(c.id).toMatch(/^[A-Za-z0-9]{20}$/);
    expect(c).toMatchObject({
      locationId: loc.id,
      deleted: false,
      type: 'lead',
      email: 'Jane.Doe@Example.com',
      emailLowerCase: 'jane.doe@example.com',
      firstNameLowerCase: 'jane',
      lastNameLowerCase: 'doe',
      fullNameLowerCase: 'jane doe',
      phone: '+1 888-888-8888',
      tags: ['vip', 'customer'],
      dateOfBirth: '1990-09-25T00:00:00.000Z',
      birthMonth: 8,
      birthDay: 25,
      customFields: [{ id: CUSTOM_FIELD_ID, value: 'blue' }],
      dndSettings: { SMS: { status: 'active', message: 'no texts' } },
      createdBy: { source: 'WEB_USER', channel: 'APP' },
    });
    expect(c.dateAdded).toMatch(ISO_MS);
    expect(c.dateUpdated).toBe(c.dateAdded);
    // Sparse: unset fields are absent, and no `name` key (captures of real payloads show none).
    expect(c).not.toHaveProperty('website');
    expect(c).not.toHaveProperty('name');
    expect(c).not.toHaveProperty('dnd');

    const got = await call(base, 'GET', `/contacts/${c.id}`, { token });
    expect(got.status).toBe(200);
    expect(specErrors(SPEC, 'GET', '/contacts/{contactId}', 200, got.body)).toEqual([]);
    expect(got.body.contact).toEqual(Object.fromEntries(Object.entries(c).filter(([k]) => !['deleted', 'birthMonth', 'birthDay'].includes(k))));

    clock.advance(1000);
    const updated = await call(base, 'PUT', `/contacts/${c.id}`, { token, body: { firstName: 'Janet', tags: ['New'], website: 'https://x.test' } });
    expect(updated.status).toBe(200);
    expect(specErrors(SPEC, 'PUT', '/contacts/{contactId}', 200, updated.body)).toEqual([]);
    expect(updated.body.succeded).toBe(true);
    expect(updated.body.contact).toMatchObject({ firstName: 'Janet', firstNameLowerCase: 'janet', fullNameLowerCase: 'janet doe', tags: ['new'], website: 'https://x.test' });
    expect(Date.parse(updated.body.contact.dateUpdated)).toBe(Date.parse(c.dateAdded) + 1000);

    // Nothing changes: nothing is stored, dateUpdated stays.
    clock.advance(1000);
    const same = await call(base, 'PUT', `/contacts/${c.id}`, { token, body: { firstName: 'Janet' } });
    expect(same.body.contact.dateUpdated).toBe(updated.body.contact.dateUpdated);

    // null clears a field; custom fields merge by id and an empty value removes one.
    const cleared = await call(base, 'PUT', `/contacts/${c.id}`, {
      token,
      body: { website: null, companyName: 'Globex', customFields: [{ id: CUSTOM_FIELD_ID, field_value: '' }, { key: 'contact.shoe_size', field_value: '42' }] },
    });
    expect(cleared.status).toBe(200);
    expect(cleared.body.contact).not.toHaveProperty('website');
    expect(cleared.body.contact.companyName).toBe('Globex');
    expect(cleared.body.contact.customFields).toEqual([{ id: expect.stringMatching(/^[A-Za-z0-9]{20}$/), value: '42' }]);

    const deleted = await call(base, 'DELETE', `/contacts/${c.id}`, { token });
    expect(deleted.status).toBe(200);
    expect(specErrors(SPEC, 'DELETE', '/contacts/{contactId}', 200, deleted.body)).toEqual([]);
    expect(deleted.body).toEqual({ succeded: true, traceId: expect.any(String) });
    const gone = await call(base, 'GET', `/contacts/${c.id}`, { token });
    expect(gone.status).toBe(400);
  });

  it('answers 400 "Contact with id … not found" for unknown ids', async () => {
    const { token } = location();
    for (const [method, body] of [['GET', undefined], ['PUT', { firstName: 'x' }], ['DELETE', undefined]] as const) {
      const res = await call(base, method, '/contacts/abcdefghij0123456789', { token, body });
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ statusCode: 400, message: 'Contact with id abcdefghij0123456789 not found', error: 'Bad Request', traceId: expect.any(String) });
    }
  });

  it('accepts every documented dateOfBirth format and rejects others', async () => {
    const { location: loc, token } = location({ allowDuplicateContact: true });
    for (const dob of ['1990/09/25', '09/25/1990', '1990-09-25', '09-25-1990', '1990.09.25', '09.25.1990', '1990_09_25', '09_25_1990', '1990-09-25T00:00:00.000Z']) {
      const res = await call(base, 'POST', '/contacts/', { token, body: { locationId: loc.id, dateOfBirth: dob } });
      expect(res.status, dob).toBe(201);
      expect(res.body.contact.dateOfBirth).toBe('1990-09-25T00:00:00.000Z');
    }
    const bad = await call(base, 'POST', '/contacts/', { token, body: { locationId: loc.id, dateOfBirth: '1990-02-30' } });
    expect(bad.status).toBe(422);
  });
});

describe('validation and access', () => {
  it('rejects unknown properties and wrong types with 422 message arrays', async () => {
    const { location: loc, token } = location();
    const unknown = await call(base, 'POST', '/contacts/', { token, body: { locationId: loc.id, additionalEmails: ['a@b.co'], foo: 1 } });
    expect(unknown.status).toBe(422);
    expect(unknown.body).toMatchObject({ statusCode: 422, error: 'Unprocessable Entity' });
    expect(unknown.body.message).toEqual(['property additionalEmails should not exist', 'property foo should not exist']);

    const types = await call(base, 'POST', '/contacts/', {
      token,
      body: { locationId: loc.id, email: 'not-an-email', dnd: 'yes', tags: 'vip', dndSettings: { SMS: { status: 'maybe' } } },
    });
    expect(types.status).toBe(422);
    expect(types.body.message).toEqual(
      expect.arrayContaining(['email must be an email', 'dnd must be a boolean value', 'tags must be an array', 'dndSettings.SMS.status must be one of the following values: active, inactive, permanent']),
    );

    const noLocation = await call(base, 'POST', '/contacts/', { token, body: { firstName: 'x' } });
    expect(noLocation.status).toBe(422);
    expect(noLocation.body.message).toContain('locationId should not be empty');

    const created = await call(base, 'POST', '/contacts/', { token, body: { locationId: loc.id, firstName: 'A' } });
    const put = await call(base, 'PUT', `/contacts/${created.body.contact.id}`, { token, body: { locationId: loc.id, gender: 'male' } });
    expect(put.status).toBe(422);
    expect(put.body.message).toEqual(['property locationId should not exist', 'property gender should not exist']);
  });

  it('answers 403 for another location and 401 for a company token or a missing scope', async () => {
    const a = location();
    const b = location();
    const inB = await call(base, 'POST', '/contacts/', { token: b.token, body: { locationId: b.location.id, firstName: 'B' } });
    const wrongBody = await call(base, 'POST', '/contacts/', { token: a.token, body: { locationId: b.location.id, firstName: 'x' } });
    expect(wrongBody.status).toBe(403);
    expect(wrongBody.body).toMatchObject({ statusCode: 403, message: 'The token does not have access to this location.' });
    const wrongContact = await call(base, 'GET', `/contacts/${inB.body.contact.id}`, { token: a.token });
    expect(wrongContact.status).toBe(403);
    const wrongQuery = await call(base, 'GET', `/contacts/?locationId=${b.location.id}`, { token: a.token });
    expect(wrongQuery.status).toBe(403);

    const company = addOauthToken(running.emu, { authClass: 'Company', companyId: a.companyId, scopes: ['contacts.readonly', 'contacts.write'] });
    const asCompany = await call(base, 'GET', `/contacts/${inB.body.contact.id}`, { token: company });
    expect(asCompany.status).toBe(401);
    expect(asCompany.body.message).toBe('This authClass type is not allowed to access this scope. Please reach out to the Platform team to get it added.');

    const readOnly = addOauthToken(running.emu, { authClass: 'Location', companyId: a.companyId, locationId: a.location.id, scopes: ['contacts.readonly'] });
    const write = await call(base, 'POST', '/contacts/', { token: readOnly, body: { locationId: a.location.id, firstName: 'x' } });
    expect(write.status).toBe(401);
    expect(write.body.message).toBe('The token is not authorized for this scope.');
  });
});

describe('duplicates and upsert', () => {
  it('rejects duplicate email or phone when the location does not allow duplicates', async () => {
    const { location: loc, token } = location();
    const a = (await call(base, 'POST', '/contacts/', { token, body: { locationId: loc.id, firstName: 'Ann', lastName: 'Lee', email: 'ann@x.test', phone: '+1 555 0100' } })).body.contact;
    const byEmail = await call(base, 'POST', '/contacts/', { token, body: { locationId: loc.id, email: 'ANN@X.TEST' } });
    expect(byEmail.status).toBe(400);
    expect(byEmail.body).toMatchObject({
      statusCode: 400,
      message: 'This location does not allow duplicated contacts.',
      meta: { contactId: a.id, contactName: 'Ann Lee', matchingField: 'email' },
    });
    const byPhone = await call(base, 'POST', '/contacts/', { token, body: { locationId: loc.id, email: 'other@x.test', phone: '+15550100' } });
    expect(byPhone.status).toBe(400);
    expect(byPhone.body.meta).toEqual({ contactId: a.id, contactName: 'Ann Lee', matchingField: 'phone' });

    const b = (await call(base, 'POST', '/contacts/', { token, body: { locationId: loc.id, email: 'bob@x.test' } })).body.contact;
    const steal = await call(base, 'PUT', `/contacts/${b.id}`, { token, body: { email: 'Ann@x.test' } });
    expect(steal.status).toBe(400);
    expect(steal.body.meta.matchingField).toBe('email');

    // Once an email is changed or its contact deleted, it is free again.
    await call(base, 'PUT', `/contacts/${b.id}`, { token, body: { email: 'robert@x.test' } });
    expect((await call(base, 'POST', '/contacts/', { token, body: { locationId: loc.id, email: 'bob@x.test' } })).status).toBe(201);
    await call(base, 'DELETE', `/contacts/${a.id}`, { token });
    expect((await call(base, 'POST', '/contacts/', { token, body: { locationId: loc.id, email: 'ann@x.test' } })).status).toBe(201);
    // Contacts written outside the API (seeding) count too.
    const [seeded] = seedContacts(running.emu, loc.id, 1);
    const seededDup = await call(base, 'POST', '/contacts/', { token, body: { locationId: loc.id, phone: seeded!.phone } });
    expect(seededDup.body.meta).toMatchObject({ contactId: seeded!.id, matchingField: 'phone' });

    const allowed = location({ allowDuplicateContact: true });
    for (let i = 0; i < 2; i++) {
      const res = await call(base, 'POST', '/contacts/', { token: allowed.token, body: { locationId: allowed.location.id, email: 'same@x.test' } });
      expect(res.status).toBe(201);
    }
  });

  it('upserts by email, then phone, and creates when nothing matches', async () => {
    const { location: loc, token } = location();
    const first = await call(base, 'POST', '/contacts/upsert', { token, body: { locationId: loc.id, email: 'Up@x.test', firstName: 'Up', gender: 'female' } });
    expect(first.status).toBe(200);
    expect(specErrors(SPEC, 'POST', '/contacts/upsert', 200, first.body)).toEqual([]);
    expect(first.body).toMatchObject({ new: true, traceId: expect.any(String), contact: { email: 'Up@x.test', gender: 'female' } });
    const id = first.body.contact.id;

    const again = await call(base, 'POST', '/contacts/upsert', { token, body: { locationId: loc.id, email: 'up@X.test', lastName: 'Date', gender: 'male', tags: ['t1'] } });
    expect(again.body).toMatchObject({ new: false, contact: { id, firstName: 'Up', lastName: 'Date', gender: 'female', tags: ['t1'] } });

    const other = (await call(base, 'POST', '/contacts/', { token, body: { locationId: loc.id, phone: '+15550199' } })).body.contact;
    const byPhone = await call(base, 'POST', '/contacts/upsert', { token, body: { locationId: loc.id, phone: '+1 555 0199', firstName: 'Phoned' } });
    expect(byPhone.body).toMatchObject({ new: false, contact: { id: other.id, firstName: 'Phoned' } });

    // Email matches one contact and phone another: the email contact is updated, the phone ignored.
    const both = await call(base, 'POST', '/contacts/upsert', { token, body: { locationId: loc.id, email: 'up@x.test', phone: '+15550199', city: 'Oslo' } });
    expect(both.body.contact.id).toBe(id);
    expect(both.body.contact.city).toBe('Oslo');
    expect(both.body.contact).not.toHaveProperty('phone');

    const neither = await call(base, 'POST', '/contacts/upsert', { token, body: { locationId: loc.id, firstName: 'x' } });
    expect(neither.status).toBe(400);

    const dup = location({ allowDuplicateContact: true });
    const r1 = await call(base, 'POST', '/contacts/upsert', { token: dup.token, body: { locationId: dup.location.id, email: 'd@x.test', createNewIfDuplicateAllowed: true } });
    const r2 = await call(base, 'POST', '/contacts/upsert', { token: dup.token, body: { locationId: dup.location.id, email: 'd@x.test', createNewIfDuplicateAllowed: true } });
    const r3 = await call(base, 'POST', '/contacts/upsert', { token: dup.token, body: { locationId: dup.location.id, email: 'd@x.test' } });
    expect([r1.body.new, r2.body.new, r3.body.new]).toEqual([true, true, false]);
    expect(r2.body.contact.id).not.toBe(r1.body.contact.id);
  });

  it('finds duplicates by email first, then phone', async () => {
    const { location: loc, token } = location();
    const a = (await call(base, 'POST', '/contacts/', { token, body: { locationId: loc.id, email: 'x+tag@x.test', phone: '+14231645160' } })).body.contact;
    const byEmail = await call(base, 'GET', `/contacts/search/duplicate?locationId=${loc.id}&email=${encodeURIComponent('X+TAG@x.test')}`, { token });
    expect(byEmail.status).toBe(200);
    expect(byEmail.body.contact.id).toBe(a.id);
    const byPhone = await call(base, 'GET', `/contacts/search/duplicate?locationId=${loc.id}&number=${encodeURIComponent('+14231645160')}`, { token });
    expect(byPhone.body.contact.id).toBe(a.id);
    const none = await call(base, 'GET', `/contacts/search/duplicate?locationId=${loc.id}&email=nobody%40x.test`, { token });
    expect(none.body).toEqual({ contact: null, traceId: expect.any(String) });
    const neither = await call(base, 'GET', `/contacts/search/duplicate?locationId=${loc.id}`, { token });
    expect(neither.status).toBe(400);
  });
});

describe('tags', () => {
  it('adds and removes tags, normalised and deduplicated', async () => {
    const { location: loc, token } = location();
    const c = (await call(base, 'POST', '/contacts/', { token, body: { locationId: loc.id, tags: ['a'] } })).body.contact;
    const added = await call(base, 'POST', `/contacts/${c.id}/tags`, { token, body: { tags: ['B ', 'a', 'c'] } });
    expect(added.status).toBe(201);
    expect(specErrors(SPEC, 'POST', '/contacts/{contactId}/tags', 201, added.body)).toEqual([]);
    expect(added.body.tags).toEqual(['a', 'b', 'c']);
    const removed = await call(base, 'DELETE', `/contacts/${c.id}/tags`, { token, body: { tags: ['A', 'zzz'] } });
    expect(removed.status).toBe(200);
    expect(specErrors(SPEC, 'DELETE', '/contacts/{contactId}/tags', 200, removed.body)).toEqual([]);
    expect(removed.body.tags).toEqual(['b', 'c']);
    expect((await call(base, 'GET', `/contacts/${c.id}`, { token })).body.contact.tags).toEqual(['b', 'c']);
    const bad = await call(base, 'POST', `/contacts/${c.id}/tags`, { token, body: { tags: [1] } });
    expect(bad.status).toBe(422);
    expect(bad.body.message).toEqual(['each value in tags must be a string']);
  });
});

describe('seeded contacts', () => {
  it('have emails and phone numbers of their own, also across two seeds of one location', () => {
    const { location: loc } = location();
    const docs = [...seedContacts(running.emu, loc.id, 300), ...seedContacts(running.emu, loc.id, 300)];
    expect(new Set(docs.map((d) => d.email)).size).toBe(600);
    expect(new Set(docs.map((d) => d.phone)).size).toBe(600);
  });
});

describe('legacy list GET /contacts/', () => {
  it('pages newest first with startAfter/startAfterId, losing and repeating nothing', async () => {
    const { location: loc, token } = location();
    seedContacts(running.emu, loc.id, 95);
    const seen: string[] = [];
    const added: number[] = [];
    let query = `locationId=${loc.id}&limit=20`;
    let pages = 0;
    for (;;) {
      const res = await call(base, 'GET', `/contacts/?${query}`, { token });
      expect(res.status).toBe(200);
      expect(specErrors(SPEC, 'GET', '/contacts/', 200, res.body)).toEqual([]);
      pages++;
      const { meta, contacts } = res.body;
      expect(meta.total).toBe(95);
      expect(meta.currentPage).toBe(pages);
      expect(meta.prevPage).toBe(pages === 1 ? null : pages - 1);
      for (const c of contacts) {
        seen.push(c.id);
        added.push(Date.parse(c.dateAdded));
      }
      if (!meta.nextPageUrl) break;
      expect(meta.nextPage).toBe(pages + 1);
      query = `locationId=${loc.id}&limit=20&startAfterId=${meta.startAfterId}&startAfter=${meta.startAfter}`;
    }
    expect(pages).toBe(5);
    expect(new Set(seen).size).toBe(95);
    expect(added).toEqual([...added].sort((x, y) => y - x));
  });

  it('validates limit and locationId and filters by query', async () => {
    const { location: loc, token } = location();
    seedContacts(running.emu, loc.id, 30);
    const tooMany = await call(base, 'GET', `/contacts/?locationId=${loc.id}&limit=101`, { token });
    expect(tooMany.status).toBe(422);
    expect(tooMany.body.message).toEqual(['limit must not be greater than 100']);
    const noLoc = await call(base, 'GET', '/contacts/', { token });
    expect(noLoc.status).toBe(422);
    const defaultLimit = await call(base, 'GET', `/contacts/?locationId=${loc.id}`, { token });
    expect(defaultLimit.body.contacts).toHaveLength(20);
    const q = await call(base, 'GET', `/contacts/?locationId=${loc.id}&query=ava`, { token });
    expect(q.body.contacts.length).toBeGreaterThan(0);
    expect(q.body.contacts.every((c: { firstName: string }) => c.firstName === 'Ava')).toBe(true);
  });
});

describe('webhooks', () => {
  let server: Server;
  const received: Record<string, unknown>[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let text = '';
      req.on('data', (c) => (text += c));
      req.on('end', () => {
        received.push(JSON.parse(text) as Record<string, unknown>);
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
  });

  it('sends ContactCreate, ContactUpdate, ContactTagUpdate, ContactDndUpdate and ContactDelete', async () => {
    const { location: loc, token } = location();
    const address = server.address() as { port: number };
    installApp(running.emu, loc, `http://127.0.0.1:${address.port}/hooks`);
    const c = (await call(base, 'POST', '/contacts/', { token, body: { locationId: loc.id, firstName: 'Web', lastName: 'Hook', email: 'w@x.test', tags: ['one'] } })).body.contact;
    await until(() => received.length >= 1, 'ContactCreate');
    await call(base, 'PUT', `/contacts/${c.id}`, { token, body: { city: 'Rome' } });
    await until(() => received.length >= 2, 'ContactUpdate');
    await call(base, 'PUT', `/contacts/${c.id}`, { token, body: { city: 'Rome' } }); // no change, no event
    await call(base, 'PUT', `/contacts/${c.id}`, { token, body: { tags: ['two'] } });
    await until(() => received.length >= 3, 'ContactTagUpdate');
    await call(base, 'PUT', `/contacts/${c.id}`, { token, body: { dndSettings: { Email: { status: 'active' } } } });
    await until(() => received.length >= 4, 'ContactDndUpdate');
    await call(base, 'DELETE', `/contacts/${c.id}`, { token });
    await until(() => received.length >= 5, 'ContactDelete');

    expect(received.map((p) => p.type)).toEqual(['ContactCreate', 'ContactUpdate', 'ContactTagUpdate', 'ContactDndUpdate', 'ContactDelete']);
    for (const p of received) expect(p).toMatchObject({ id: c.id, locationId: loc.id, name: 'Web Hook', email: 'w@x.test' });
    expect(received[1]).toMatchObject({ city: 'Rome', tags: ['one'] });
    expect(received[2]).toMatchObject({ tags: ['two'] });
    expect(received[3]).toMatchObject({ dndSettings: { Email: { status: 'active' } } });
    expect(received[4]).toMatchObject({ city: 'Rome', tags: ['two'], firstName: 'Web' });
  });
});
