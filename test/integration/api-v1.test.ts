// Tandem's REST API over real HTTP: contacts CRUD with normalisation, duplicates, If-Match,
// archive/restore, filters and cursor paging across concurrent writes; users; strict schemas;
// API-key authentication (revoked keys, and a key of A never reaching B: T19 for apiKey routes);
// the outbox row of every API write; the OpenAPI document. The sync loop is not started, so what
// the API writes stays where the assertions look.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey, revokeApiKey } from '../../db/api-keys.ts';
import { createContact, getContact, updateContact } from '../../db/contacts.ts';
import { getOutbox } from '../../db/outbox.ts';
import { emptyContact } from '../../server/sync/contact-model.ts';
import { API_KEY_NOT_INSTALLED, API_KEY_UNAUTHORIZED } from '../../server/auth/api-key.ts';
import { control } from '../helpers/emulator.ts';
import { createAgency, installLocation, startTestTandem, waitForInstallation, type TestTandem } from '../helpers/tandem.ts';
import { restCall, type RestAnswer, type RestRequest } from '../helpers/rest.ts';

let t: TestTandem;
let A: { id: string; name: string };
let B: { id: string; name: string };
let keyA: string;
let keyB: string;

beforeAll(async () => {
  t = await startTestTandem({ sync: { start: false } });
  const x = await createAgency(t, { name: 'Xavier Agency', locations: ['Alpha Dental'] });
  const y = await createAgency(t, { name: 'Yonder Agency', locations: ['Bravo Roofing'] });
  A = x.locations[0]!;
  B = y.locations[0]!;
  for (const [location, admin] of [
    [A, x.adminId],
    [B, y.adminId],
  ] as const) {
    expect((await installLocation(t, location.id, { userId: admin })).status).toBe(200);
    await waitForInstallation(t, location.id, 'active');
  }
  keyA = createApiKey(t.db, { locationId: A.id, name: 'A key', createdBy: null, now: t.clock.now() }).key;
  keyB = createApiKey(t.db, { locationId: B.id, name: 'B key', createdBy: null, now: t.clock.now() }).key;
});
afterAll(async () => {
  await t?.close();
});

type Res = RestAnswer;

function api(method: string, path: string, opts: Omit<RestRequest, 'contentType'> = {}): Promise<Res> {
  return restCall(t.url, method, path, { ...opts, key: opts.key === undefined ? keyA : opts.key });
}

let seq = 0;
const unique = (label: string) => `${label}-${++seq}-${Math.random().toString(36).slice(2, 8)}@example.com`;

async function create(body: Record<string, unknown>, key = keyA) {
  const res = await api('POST', '/api/v1/contacts', { body, key });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

describe('contacts', () => {
  it('creates with normalised fields and reads back the documented shape', async () => {
    const email = unique('Ada.Lovelace').replace('ada', 'ADA');
    const res = await api('POST', '/api/v1/contacts', {
      body: {
        firstName: '  Ada ',
        lastName: 'Lovelace',
        email,
        phone: '(415) 555-0123',
        tags: ['VIP', ' vip', 'Lead'],
        address: { line1: '1 Main St', city: 'Springfield', country: 'us' },
        dateOfBirth: '1815-12-10',
        dnd: true,
        customFields: { cf1: 'blue', cf2: ['a', 'b'], cf3: 7 },
      },
    });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      id: expect.stringMatching(/^c_[0-9A-Za-z]{20}$/),
      firstName: 'Ada',
      lastName: 'Lovelace',
      email,
      phone: '+14155550123',
      companyName: null,
      address: { line1: '1 Main St', city: 'Springfield', state: null, postalCode: null, country: 'US' },
      website: null,
      timezone: null,
      dateOfBirth: '1815-12-10',
      source: null,
      tags: ['vip', 'lead'],
      dnd: true,
      ownerUserId: null,
      customFields: { cf1: 'blue', cf2: ['a', 'b'], cf3: 7 },
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      updatedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      archivedAt: null,
      version: 1,
      // Not in HighLevel yet: its creation waits in the outbox (the loop is not running here).
      highlevelId: null,
      outbound: { status: 'pending', reason: null },
    });
    expect(res.headers.get('location')).toBe(`/api/v1/contacts/${res.body.id}`);
    const got = await api('GET', `/api/v1/contacts/${res.body.id}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(res.body);
    expect(got.headers.get('etag')).toBe('"1"');
    // Stored case-insensitively for matching, shown as entered.
    expect(getContact(t.db, A.id, res.body.id)?.fields.email).toBe(email);
  });

  it('reads a phone without +prefix in the contact’s own country, US otherwise', async () => {
    const uk = await create({ phone: '020 7946 0958', address: { country: 'GB' } });
    expect(uk.phone).toBe('+442079460958');
    const us = await create({ phone: '415.555.0199' });
    expect(us.phone).toBe('+14155550199');
    const odd = await create({ phone: 'call me maybe' });
    expect(odd.phone).toBe('call me maybe');
  });

  it('refuses a phone with an extension (400, nothing written) instead of storing the number without it', async () => {
    const message =
      'Invalid request: body.phone: must be a number without an extension (this one has extension 12, and Tandem stores phones without extensions); send the number alone, and keep the extension in another field, such as a custom field.';
    const email = unique('ext');
    const refused = await api('POST', '/api/v1/contacts', { body: { firstName: 'Ext', email, phone: '+1 415 555 9999 ext 12' } });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toEqual({ code: 'invalid_request', message });
    expect((await api('GET', `/api/v1/contacts?email=${encodeURIComponent(email)}`)).body.contacts).toEqual([]);
    // Read in the contact's country, as any phone: "x12" is an extension too.
    const uk = await api('POST', '/api/v1/contacts', { body: { phone: '020 7946 0958 x12', address: { country: 'GB' } } });
    expect(uk.status).toBe(400);
    expect(uk.body.error.message).toBe(message);

    const c = await create({ firstName: 'Ext', phone: '+1 415 555 9999' });
    const patch = await api('PATCH', `/api/v1/contacts/${c.id}`, { body: { phone: '(415) 555-9999 ext. 12', lastName: 'Ension' } });
    expect(patch.status).toBe(400);
    expect(patch.body.error).toEqual({ code: 'invalid_request', message });
    expect(getContact(t.db, A.id, c.id)).toMatchObject({ version: c.version, fields: { phone: '+14155559999', lastName: null } });
    // The number alone is taken; the contact's phone sent back as it is, with a country change, too.
    expect((await api('PATCH', `/api/v1/contacts/${c.id}`, { body: { phone: '(415) 555-9998' } })).body.phone).toBe('+14155559998');
    expect((await api('PATCH', `/api/v1/contacts/${c.id}`, { body: { phone: '+14155559998', address: { country: 'DE' } } })).status).toBe(200);

    const doc = (await api('GET', '/api/v1/openapi.json', { key: null })).body;
    expect(JSON.stringify(doc.paths['/api/v1/contacts'].post.requestBody)).toContain('A number with an extension');
  });

  it('refuses a second contact with the same email (any case) with 409 naming it, unless allowDuplicate', async () => {
    const email = unique('grace');
    const first = await create({ email });
    const dup = await api('POST', '/api/v1/contacts', { body: { email: email.toUpperCase(), firstName: 'Again' } });
    expect(dup.status).toBe(409);
    expect(dup.body.error).toMatchObject({ code: 'duplicate_contact', contactId: first.id });
    expect(dup.body.error.message).toContain(first.id);
    const allowed = await api('POST', '/api/v1/contacts', { body: { email, allowDuplicate: true } });
    expect(allowed.status).toBe(201);
    expect(allowed.body.id).not.toBe(first.id);
    // Changing another contact's email to it is refused the same way.
    const other = await create({ email: unique('other') });
    const patch = await api('PATCH', `/api/v1/contacts/${other.id}`, { body: { email } });
    expect(patch.status).toBe(409);
    // Saying what to do, as the create's does.
    expect(patch.body.error).toEqual({
      code: 'duplicate_contact',
      message: `Another active contact already has this email (${first.id}). Send another email, or change or archive that contact first.`,
      contactId: first.id,
    });
    // The same letters spelled otherwise ("å" as one character, or "a" and a ring) are the same email (QA).
    const composed = `\u00e5sa.${Date.now()}@example.com`;
    const asa = await create({ email: composed });
    const decomposed = await api('POST', '/api/v1/contacts', { body: { email: composed.normalize('NFD'), firstName: 'Again' } });
    expect(decomposed.status).toBe(409);
    expect(decomposed.body.error.contactId).toBe(asa.id);
    const found = await api('GET', `/api/v1/contacts?email=${encodeURIComponent(composed.normalize('NFD'))}`);
    expect(found.body.contacts.map((c: { id: string }) => c.id)).toEqual([asa.id]);
  });

  it('updates only the fields sent; null clears; tags replace or add/remove', async () => {
    const c = await create({ firstName: 'Linus', lastName: 'T', companyName: 'Kernel', tags: ['a', 'b'], customFields: { x: '1', y: '2' } });
    const r1 = await api('PATCH', `/api/v1/contacts/${c.id}`, { body: { lastName: 'Torvalds', companyName: null, customFields: { x: null, z: 'new' } } });
    expect(r1.status).toBe(200);
    expect(r1.body).toMatchObject({ firstName: 'Linus', lastName: 'Torvalds', companyName: null, tags: ['a', 'b'], customFields: { y: '2', z: 'new' }, version: 2 });
    expect(r1.body.customFields).not.toHaveProperty('x');
    const r2 = await api('PATCH', `/api/v1/contacts/${c.id}`, { body: { addTags: ['C', 'a'], removeTags: ['b'] } });
    expect(r2.body.tags).toEqual(['a', 'c']);
    const r3 = await api('PATCH', `/api/v1/contacts/${c.id}`, { body: { tags: ['Only'] } });
    expect(r3.body.tags).toEqual(['only']);
    const both = await api('PATCH', `/api/v1/contacts/${c.id}`, { body: { tags: ['x'], addTags: ['y'] } });
    expect(both.status).toBe(400);
    expect(both.body.error.message).toContain('addTags');
    // Sending what is already there changes nothing, not even the version.
    const same = await api('PATCH', `/api/v1/contacts/${c.id}`, { body: { lastName: 'Torvalds' } });
    expect(same.body.version).toBe(r3.body.version);
    const phone = await api('PATCH', `/api/v1/contacts/${c.id}`, { body: { phone: '+1 (415) 555 0100' } });
    expect(phone.body.phone).toBe('+14155550100');
    const bad = await api('PATCH', `/api/v1/contacts/${c.id}`, { body: { dateOfBirth: '2023-02-30' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('dateOfBirth');
  });

  it('updates a contact HighLevel gave with nothing to tell it apart; refuses only an update that clears the last of it', async () => {
    // HighLevel allows a contact with no name, email, phone or company, and a pull brings it here.
    const blank = createContact(t.db, { locationId: A.id, fields: { ...emptyContact(), source: 'import' }, now: t.clock.now(), origin: 'remote' });
    const res = await api('PATCH', `/api/v1/contacts/${blank.id}`, { body: { source: 'y' } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.source).toBe('y');
    // Clearing what it does not have clears nothing; adding one is fine too.
    expect((await api('PATCH', `/api/v1/contacts/${blank.id}`, { body: { firstName: null, dnd: true } })).status).toBe(200);
    expect((await api('PATCH', `/api/v1/contacts/${blank.id}`, { body: { companyName: 'Acme' } })).body.companyName).toBe('Acme');

    // Clearing the last of them is refused, and the message names what would be cleared.
    const two = await create({ firstName: 'Only', email: unique('only') });
    const cleared = await api('PATCH', `/api/v1/contacts/${two.id}`, { body: { firstName: null, email: null } });
    expect(cleared.status).toBe(400);
    expect(cleared.body.error.message).toContain('would clear firstName and email, the last it has');
    expect((await api('GET', `/api/v1/contacts/${two.id}`)).body.version).toBe(two.version);
  });

  it('takes back what a GET gave, unchanged: only the fields that change are checked', async () => {
    // Values HighLevel holds that the API would not take as new ones: a time zone this runtime does
    // not know, an email host with "_", a name past the limit, a retired country code, a long tag.
    const fields = {
      ...emptyContact(),
      firstName: 'Rio',
      lastName: 'L'.repeat(250),
      email: 'u@my_host.example.com',
      timezone: 'Not/AZone',
      country: 'AN',
      tags: ['t'.repeat(150)],
      customFields: { cf: 'v' },
    };
    const stored = createContact(t.db, { locationId: A.id, fields, now: t.clock.now(), origin: 'remote' });
    const got = (await api('GET', `/api/v1/contacts/${stored.id}`)).body;
    const { id: _id, createdAt: _c, updatedAt: _u, archivedAt: _a, version, highlevelId: _h, outbound: _o, ...writable } = got;
    // Sent back exactly as read, what PATCH does not take (id, version, dates) included, unchanged.
    const res = await api('PATCH', `/api/v1/contacts/${stored.id}`, { body: { ...got, source: 'round trip' } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    // Now with a change waiting to go to HighLevel.
    expect(res.body).toEqual({ ...got, source: 'round trip', version: version + 1, updatedAt: expect.any(String), outbound: { status: 'pending', reason: null } });
    // Changed, they are refused as what they are: not writable.
    const moved = await api('PATCH', `/api/v1/contacts/${stored.id}`, { body: { ...res.body, createdAt: '2020-01-01T00:00:00.000Z' } });
    expect(moved.status).toBe(400);
    expect(moved.body.error.message).toMatch(/createdAt: is read-only/);
    // A value that changes is checked as ever.
    for (const body of [{ timezone: 'Not/BZone' }, { email: 'v@my_host.example.com' }, { lastName: 'M'.repeat(201) }, { address: { ...writable.address, country: 'XX' } }]) {
      const changed = await api('PATCH', `/api/v1/contacts/${stored.id}`, { body });
      expect(changed.status, JSON.stringify(body)).toBe(400);
    }
    // The limit on names is the panel's (200), and an email may have letters of any script before its @.
    const long = await create({ firstName: 'F'.repeat(200), lastName: 'N'.repeat(150), email: `josé.${unique('müller')}` });
    expect(long.lastName).toHaveLength(150);
    expect(long.email).toMatch(/^josé\./);
    for (const email of ['jo sé@example.com', 'josé@exämple.com', 'josé@example', 'josé@@example.com', '@example.com', 'a<b>@example.com']) {
      const bad = await api('POST', '/api/v1/contacts', { body: { firstName: 'Bad', email } });
      expect(bad.status, email).toBe(400);
      expect(bad.body.error.message, email).toContain('body.email: must be an email address');
    }
  });

  it('takes "" as it takes null: it clears a field on PATCH and means "none" on create', async () => {
    const c = await create({ firstName: 'Empty', lastName: 'E', email: unique('empty'), dateOfBirth: '1990-01-02', address: { city: 'Lyon', country: 'FR' } });
    const res = await api('PATCH', `/api/v1/contacts/${c.id}`, { body: { email: '', dateOfBirth: '', address: { country: '' }, lastName: '' } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ firstName: 'Empty', lastName: null, email: null, dateOfBirth: null, address: { city: 'Lyon', country: null } });
    const created = await create({ firstName: 'Blank', email: '', dateOfBirth: '', address: { country: '' } });
    expect(created).toMatchObject({ email: null, dateOfBirth: null, address: { country: null } });
  });

  it('honours If-Match: 412 on a stale version, the write on the current one', async () => {
    const c = await create({ firstName: 'Optimistic' });
    const ok = await api('PATCH', `/api/v1/contacts/${c.id}`, { body: { lastName: 'One' }, headers: { 'if-match': '"1"' } });
    expect(ok.status).toBe(200);
    expect(ok.body.version).toBe(2);
    const stale = await api('PATCH', `/api/v1/contacts/${c.id}`, { body: { lastName: 'Two' }, headers: { 'if-match': '"1"' } });
    expect(stale.status).toBe(412);
    // The current version is a field of the error, as a 409 names the other contact.
    expect(stale.body.error).toEqual({ code: 'version_mismatch', message: expect.stringContaining('2'), currentVersion: 2 });
    expect((await api('GET', `/api/v1/contacts/${c.id}`)).body.lastName).toBe('One');
    const weak = await api('PATCH', `/api/v1/contacts/${c.id}`, { body: { lastName: 'Three' }, headers: { 'if-match': 'W/"2"' } });
    expect(weak.status).toBe(200);
    const staleDelete = await api('DELETE', `/api/v1/contacts/${c.id}`, { headers: { 'if-match': '"2"' } });
    expect(staleDelete.status).toBe(412);
    expect(staleDelete.body.error.currentVersion).toBe(3);
    expect((await api('PATCH', `/api/v1/contacts/${c.id}`, { body: {}, headers: { 'if-match': 'soon' } })).status).toBe(400);
    // `*` (RFC 9110: any current representation) writes whatever the version; a missing contact is still 404.
    const any = await api('PATCH', `/api/v1/contacts/${c.id}`, { body: { lastName: 'Four' }, headers: { 'if-match': '*' } });
    expect(any.status, JSON.stringify(any.body)).toBe(200);
    expect(any.body.lastName).toBe('Four');
    expect((await api('PATCH', '/api/v1/contacts/c_doesnotexist00000000', { body: { lastName: 'X' }, headers: { 'if-match': '*' } })).status).toBe(404);
    expect((await api('DELETE', `/api/v1/contacts/${c.id}`, { headers: { 'if-match': '*' } })).status).toBe(204);
    expect((await api('DELETE', '/api/v1/contacts/c_doesnotexist00000000', { headers: { 'if-match': '*' } })).status).toBe(404);
  });

  it('answers a body read before the contact changed (GET, a change, PATCH of that GET) with 412, as a stale If-Match', async () => {
    const c = await create({ firstName: 'Stale', lastName: 'Read' });
    const read = (await api('GET', `/api/v1/contacts/${c.id}`)).body;
    expect((await api('PATCH', `/api/v1/contacts/${c.id}`, { body: { companyName: 'Meanwhile' } })).status).toBe(200);
    const stale = await api('PATCH', `/api/v1/contacts/${c.id}`, { body: { ...read, lastName: 'Edited' } });
    expect(stale.status, JSON.stringify(stale.body)).toBe(412);
    expect(stale.body.error).toEqual({ code: 'version_mismatch', message: expect.stringContaining('Read it again'), currentVersion: 2 });
    expect((await api('GET', `/api/v1/contacts/${c.id}`)).body).toMatchObject({ lastName: 'Read', companyName: 'Meanwhile', version: 2 });
    // Only version, or only updatedAt, of an earlier read: the same.
    for (const body of [{ version: 1, lastName: 'Edited' }, { updatedAt: new Date(Date.parse(read.updatedAt) - 1000).toISOString(), lastName: 'Edited' }]) {
      const res = await api('PATCH', `/api/v1/contacts/${c.id}`, { body });
      expect(res.status, JSON.stringify(body)).toBe(412);
      expect(res.body.error.currentVersion).toBe(2);
    }
    // Read again, the edit goes through.
    const fresh = (await api('GET', `/api/v1/contacts/${c.id}`)).body;
    const ok = await api('PATCH', `/api/v1/contacts/${c.id}`, { body: { ...fresh, lastName: 'Edited' } });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ lastName: 'Edited', companyName: 'Meanwhile', version: 3 });
    // Archived since the read: its archivedAt differs with its version, a stale read too.
    expect((await api('DELETE', `/api/v1/contacts/${c.id}`)).status).toBe(204);
    const archived = await api('PATCH', `/api/v1/contacts/${c.id}`, { body: { ...ok.body, lastName: 'Gone' } });
    expect(archived.status, JSON.stringify(archived.body)).toBe(412);
    expect(archived.body.error.currentVersion).toBe(4);
  });

  it('archives on DELETE (204), hides archived contacts from lists, restores them', async () => {
    const email = unique('archived');
    const c = await create({ email });
    const del = await api('DELETE', `/api/v1/contacts/${c.id}`);
    expect(del.status).toBe(204);
    const got = await api('GET', `/api/v1/contacts/${c.id}`);
    expect(got.body.archivedAt).toEqual(expect.any(String));
    expect((await api('GET', `/api/v1/contacts?email=${encodeURIComponent(email)}`)).body.contacts).toEqual([]);
    const withArchived = await api('GET', `/api/v1/contacts?email=${encodeURIComponent(email)}&includeArchived=true`);
    expect(withArchived.body.contacts.map((x: { id: string }) => x.id)).toEqual([c.id]);
    expect((await api('PATCH', `/api/v1/contacts/${c.id}`, { body: { firstName: 'Ghost' } })).status).toBe(409);
    // An archived contact does not block its email; but while another has it, it is not restored.
    const other = await api('POST', '/api/v1/contacts', { body: { email } });
    expect(other.status).toBe(201);
    expect((await api('POST', `/api/v1/contacts/${c.id}/restore`)).status).toBe(409);
    expect((await api('DELETE', `/api/v1/contacts/${other.body.id}`)).status).toBe(204);
    const restored = await api('POST', `/api/v1/contacts/${c.id}/restore`);
    expect(restored.status).toBe(200);
    expect(restored.body.archivedAt).toBeNull();
    expect((await api('DELETE', '/api/v1/contacts/c_doesnotexist00000000')).status).toBe(404);
  });

  it('filters by email, phone, tag, owner and updatedSince', async () => {
    const tag = `t${Date.now()}`;
    const owner = (await api('POST', '/api/v1/users', { body: { name: 'Owner', email: unique('owner') } })).body;
    const email = unique('Filter');
    const one = await create({ email, phone: '+1 415 555 0142', tags: [tag], ownerUserId: owner.id });
    const two = await create({ email: unique('filter2'), tags: [tag.toUpperCase()] });
    const ids = (res: Res) => res.body.contacts.map((x: { id: string }) => x.id).sort();
    expect(ids(await api('GET', `/api/v1/contacts?email=${encodeURIComponent(email.toUpperCase())}`))).toEqual([one.id]);
    expect(ids(await api('GET', `/api/v1/contacts?phone=${encodeURIComponent('(415) 555-0142')}`))).toEqual([one.id]);
    expect(ids(await api('GET', `/api/v1/contacts?tag=${tag}`))).toEqual([one.id, two.id].sort());
    expect(ids(await api('GET', `/api/v1/contacts?ownerUserId=${owner.id}`))).toEqual([one.id]);
    const since = new Date(Date.parse(two.updatedAt)).toISOString();
    const recent = ids(await api('GET', `/api/v1/contacts?updatedSince=${encodeURIComponent(since)}&tag=${tag}`));
    expect(recent).toEqual([two.id]);
    expect((await api('GET', '/api/v1/contacts?updatedSince=yesterday')).status).toBe(400);
    // An empty filter is a mistake, not a filter that matches nothing.
    for (const [path, param] of [
      ['/api/v1/contacts', 'tag'],
      ['/api/v1/contacts', 'email'],
      ['/api/v1/contacts', 'phone'],
      ['/api/v1/contacts', 'ownerUserId'],
      ['/api/v1/users', 'email'],
    ]) {
      for (const value of ['', '%20%20']) {
        const empty = await api('GET', `${path}?${param}=${value}`);
        expect(empty.status, `${path}?${param}=${value}`).toBe(400);
        expect(empty.body.error.message).toBe(`Invalid request: querystring.${param}: must not be empty (leave the parameter out to match any)`);
      }
    }
    // An owner must be an active user of the location.
    const unknown = await api('POST', '/api/v1/contacts', { body: { firstName: 'Owned', ownerUserId: 'u_nobody' } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.code).toBe('unknown_owner');
  });

  it('pages by cursor without losing a contact written while paging', async () => {
    const tag = `page${Date.now()}`;
    const initial: string[] = [];
    for (let i = 0; i < 25; i++) initial.push((await create({ firstName: `P${i}`, tags: [tag] })).id);
    const seen = new Set<string>();
    const added: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q = new URLSearchParams({ tag, limit: '7', ...(cursor ? { cursor } : {}) });
      const res = await api('GET', `/api/v1/contacts?${q}`);
      expect(res.status).toBe(200);
      expect(res.body.contacts.length).toBeLessThanOrEqual(7);
      for (const c of res.body.contacts) seen.add(c.id);
      cursor = res.body.nextCursor;
      pages++;
      if (pages <= 3) {
        // Between pages: one contact already seen and one not yet seen change, and one is created.
        const unseen = initial.find((id) => !seen.has(id));
        await api('PATCH', `/api/v1/contacts/${initial[pages - 1]}`, { body: { lastName: `seen${pages}` } });
        if (unseen) await api('PATCH', `/api/v1/contacts/${unseen}`, { body: { lastName: `unseen${pages}` } });
        added.push((await create({ firstName: `new${pages}`, tags: [tag] })).id);
      }
    } while (cursor && pages < 50);
    expect(cursor).toBeNull();
    for (const id of [...initial, ...added]) expect(seen.has(id), id).toBe(true);
    expect((await api('GET', '/api/v1/contacts?cursor=bm9wZQ')).body.error.code).toBe('invalid_cursor');
    expect((await api('GET', '/api/v1/contacts?limit=201')).status).toBe(400);
    expect((await api('GET', '/api/v1/contacts?limit=0')).status).toBe(400);
  });
});

describe('users', () => {
  it('creates, refuses a duplicate email in any case, updates, deactivates and reactivates', async () => {
    const email = unique('Hedy');
    const created = await api('POST', '/api/v1/users', { body: { name: ' Hedy Lamarr ', email } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id: expect.stringMatching(/^u_[0-9A-Za-z]{20}$/), name: 'Hedy Lamarr', email, active: true });
    const id = created.body.id;
    const dup = await api('POST', '/api/v1/users', { body: { name: 'Other', email: email.toUpperCase() } });
    expect(dup.status).toBe(409);
    expect(dup.body.error).toMatchObject({ code: 'duplicate_user', userId: id });
    const other = await api('POST', '/api/v1/users', { body: { name: 'Other', email: unique('other') } });
    expect((await api('PATCH', `/api/v1/users/${other.body.id}`, { body: { email } })).status).toBe(409);
    const renamed = await api('PATCH', `/api/v1/users/${id}`, { body: { name: 'Hedy K. Lamarr' } });
    expect(renamed.body).toMatchObject({ name: 'Hedy K. Lamarr', email });
    expect((await api('GET', `/api/v1/users/${id}`)).body.name).toBe('Hedy K. Lamarr');
    const off = await api('POST', `/api/v1/users/${id}/deactivate`);
    expect(off.body.active).toBe(false);
    const listed = (res: Res) => res.body.users.map((u: { id: string }) => u.id);
    expect(listed(await api('GET', '/api/v1/users'))).not.toContain(id);
    expect(listed(await api('GET', '/api/v1/users?includeInactive=true'))).toContain(id);
    expect((await api('POST', '/api/v1/contacts', { body: { firstName: 'Owned', ownerUserId: id } })).status).toBe(400);
    expect((await api('POST', `/api/v1/users/${id}/reactivate`)).body.active).toBe(true);
    expect((await api('POST', '/api/v1/contacts', { body: { firstName: 'Owned', ownerUserId: id } })).status).toBe(201);
    expect((await api('POST', '/api/v1/users', { body: { name: 'No mail', email: 'not-an-email' } })).status).toBe(400);
  });
});

describe('users, as read', () => {
  it('takes a user back as GET gave it, read-only properties included; refuses them changed as read-only', async () => {
    const user = (await api('POST', '/api/v1/users', { body: { name: 'Grace Hopper', email: unique('grace') } })).body;
    const read = (await api('GET', `/api/v1/users/${user.id}`)).body;
    const renamed = await api('PATCH', `/api/v1/users/${user.id}`, { body: { ...read, name: 'Grace B. Hopper' } });
    expect(renamed.status, JSON.stringify(renamed.body)).toBe(200);
    expect(renamed.body).toMatchObject({ id: user.id, name: 'Grace B. Hopper', email: user.email, active: true });
    for (const [name, value] of [
      ['id', 'u_other'],
      ['createdAt', '2020-01-01T00:00:00.000Z'],
      ['updatedAt', 42],
    ] as const) {
      const res = await api('PATCH', `/api/v1/users/${user.id}`, { body: { ...renamed.body, [name]: value } });
      expect(res.status, name).toBe(400);
      expect(res.body.error.message, name).toBe(`Invalid request: body.${name}: is read-only: send it as GET gave it, or leave it out`);
    }
    // `active` says how it is changed.
    const off = await api('PATCH', `/api/v1/users/${user.id}`, { body: { ...renamed.body, active: false } });
    expect(off.status).toBe(400);
    expect(off.body.error.message).toContain('body.active: is read-only here: POST /api/v1/users/{id}/deactivate');
    expect((await api('GET', `/api/v1/users/${user.id}`)).body).toMatchObject({ active: true, name: 'Grace B. Hopper' });
    // Nothing else is taken: a property no user has is still unknown.
    expect((await api('PATCH', `/api/v1/users/${user.id}`, { body: { ...renamed.body, role: 'admin' } })).body.error.message).toBe('Invalid request: unknown property "role" in body');
  });
});

describe('emails with spaces around them', () => {
  it('are trimmed, then checked, on contacts and users, as every other field', async () => {
    const spaced = ` ${unique('SPACE')} `;
    const contact = await api('POST', '/api/v1/contacts', { body: { firstName: 'Spaced', email: spaced } });
    expect(contact.status, JSON.stringify(contact.body)).toBe(201);
    expect(contact.body.email).toBe(spaced.trim());
    const patched = await api('PATCH', `/api/v1/contacts/${contact.body.id}`, { body: { email: `\u00a0${spaced.trim().toUpperCase()}  ` } });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    expect(patched.body.email).toBe(spaced.trim().toUpperCase());
    const user = await api('POST', '/api/v1/users', { body: { name: 'Spaced', email: ` ${unique('User')} ` } });
    expect(user.status, JSON.stringify(user.body)).toBe(201);
    expect(user.body.email).not.toMatch(/^\s|\s$/);
    const userPatched = await api('PATCH', `/api/v1/users/${user.body.id}`, { body: { email: `  ${unique('again')}` } });
    expect(userPatched.status, JSON.stringify(userPatched.body)).toBe(200);
    // Spaces inside are still no email.
    expect((await api('POST', '/api/v1/users', { body: { name: 'Inside', email: 'in side@example.com' } })).body.error.message).toBe('Invalid request: body.email: must be an email address');
  });
});

describe('strict requests', () => {
  it('refuses unknown properties with 400 naming them, in the body, nested objects and the query', async () => {
    const res = await api('POST', '/api/v1/contacts', { body: { firstName: 'X', locationId: B.id, foo: 1, address: { zip: '1' } } });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_request');
    for (const name of ['"locationId"', '"foo"', '"zip"']) expect(res.body.error.message).toContain(name);
    const q = await api('GET', `/api/v1/contacts?locationId=${B.id}`);
    expect(q.status).toBe(400);
    expect(q.body.error.message).toContain('"locationId"');
    const patch = await api('PATCH', '/api/v1/contacts/c_x', { body: { version: 3 } });
    expect(patch.status).toBe(400);
    expect((await api('POST', '/api/v1/users', { body: { name: 'N', email: unique('n'), active: false } })).status).toBe(400);
  });

  it('refuses malformed JSON and bodies over the limit', async () => {
    expect((await api('POST', '/api/v1/contacts', { raw: '{"firstName": ' })).status).toBe(400);
    const huge = await api('POST', '/api/v1/contacts', { body: { firstName: 'x', source: 'y'.repeat(1100 * 1024) } });
    expect(huge.status).toBe(413);
  });
});

describe('API keys', () => {
  it('answers every failure with the same 401 and reads nothing before the key', async () => {
    const revoked = createApiKey(t.db, { locationId: A.id, name: 'to revoke', createdBy: null, now: t.clock.now() });
    expect((await api('GET', '/api/v1/contacts', { key: revoked.key })).status).toBe(200);
    revokeApiKey(t.db, { locationId: A.id, id: revoked.apiKey.id, now: t.clock.now() });
    const cases: (string | null)[] = [revoked.key, null, 'tk_short', `${keyA}x`, keyA.replace(/.$/, (c) => (c === 'a' ? 'b' : 'a'))];
    for (const key of cases) {
      const res = await api('POST', '/api/v1/contacts', { key, body: { unknownProperty: true } });
      expect(res.status, String(key)).toBe(401);
      expect(res.body).toEqual({ error: API_KEY_UNAUTHORIZED });
      expect(res.headers.get('www-authenticate')).toContain('Bearer');
    }
    const basic = await api('GET', '/api/v1/contacts', { key: null, headers: { authorization: `Basic ${Buffer.from(`x:${keyA}`).toString('base64')}` } });
    expect(basic.status).toBe(401);
  });

  it('a key of A never reaches B’s contacts or users, on any route (T19)', async () => {
    const bContact = await create({ firstName: 'Bravo', email: unique('bravo') }, keyB);
    const bUser = (await api('POST', '/api/v1/users', { key: keyB, body: { name: 'Bravo User', email: unique('bravo-user') } })).body;
    const doc = (await api('GET', '/api/v1/openapi.json', { key: null })).body;
    const operations = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) => Object.keys(ops).map((m) => ({ method: m.toUpperCase(), path })));
    expect(operations.length).toBeGreaterThanOrEqual(12);
    const secrets = [bContact.id, bContact.email, bUser.id, bUser.email, B.id];
    for (const { method, path } of operations) {
      for (const id of [bContact.id, bUser.id]) {
        const url = path.replace('{id}', id);
        const body = method === 'GET' || method === 'DELETE' ? undefined : {};
        const res = await api(method, url, { body });
        const text = JSON.stringify(res.body ?? '');
        for (const s of secrets) expect.soft(text, `${method} ${url} leaks ${s}`).not.toContain(s);
        if (path.includes('{id}')) expect.soft([400, 404], `${method} ${url}`).toContain(res.status);
      }
    }
    // B's contact is untouched, and B's own key does see it.
    const b = await api('GET', `/api/v1/contacts/${bContact.id}`, { key: keyB });
    expect(b.body).toMatchObject({ firstName: 'Bravo', version: 1, archivedAt: null });
    expect(b.status).toBe(200);
  });
});

describe('outbox', () => {
  it('an API write enqueues the contact in the same transaction; a remote write does not', async () => {
    const c = await create({ firstName: 'Queued' });
    const row = getOutbox(t.db, A.id, c.id);
    expect(row).toMatchObject({ kind: 'upsert', status: 'pending' });
    expect((await api('DELETE', `/api/v1/contacts/${c.id}`)).status).toBe(204);
    const archived = getOutbox(t.db, A.id, c.id);
    // Coalesced: still one row for the contact, now saying "archive", and newer.
    expect(archived).toMatchObject({ id: row!.id, kind: 'archive', status: 'pending' });
    expect(archived!.updatedAt).toBeGreaterThan(row!.updatedAt);

    const remote = createContact(t.db, { locationId: A.id, fields: { ...emptyContact(), firstName: 'From HighLevel' }, now: t.clock.now(), origin: 'remote' });
    expect(getOutbox(t.db, A.id, remote.id)).toBeUndefined();
    updateContact(t.db, { locationId: A.id, id: remote.id, patch: { lastName: 'Remote' }, now: t.clock.now(), origin: 'remote' });
    expect(getOutbox(t.db, A.id, remote.id)).toBeUndefined();
    // The same contact changed through the API is queued.
    expect((await api('PATCH', `/api/v1/contacts/${remote.id}`, { body: { lastName: 'Local' } })).status).toBe(200);
    expect(getOutbox(t.db, A.id, remote.id)).toMatchObject({ kind: 'upsert' });
    // A write that fails (stale If-Match) leaves no outbox row behind.
    const untouched = createContact(t.db, { locationId: A.id, fields: emptyContact(), now: t.clock.now(), origin: 'remote' });
    expect((await api('PATCH', `/api/v1/contacts/${untouched.id}`, { body: { firstName: 'X' }, headers: { 'if-match': '9' } })).status).toBe(412);
    expect(getOutbox(t.db, A.id, untouched.id)).toBeUndefined();
  });
});

describe('OpenAPI document', () => {
  it('is served without a key, valid JSON, and lists every route with its schemas', async () => {
    const res = await fetch(`${t.url}/api/v1/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/json');
    const doc = JSON.parse(await res.text());
    expect(doc.openapi).toMatch(/^3\.1\./);
    const listed = Object.entries(doc.paths as Record<string, Record<string, { operationId?: string; responses?: object }>>).flatMap(([path, ops]) =>
      Object.entries(ops).map(([m, op]) => ({ route: `${m.toUpperCase()} ${path}`, op })),
    );
    expect(listed.map((l) => l.route).sort()).toEqual(
      [
        'GET /api/v1/contacts',
        'POST /api/v1/contacts',
        'GET /api/v1/contacts/{id}',
        'PATCH /api/v1/contacts/{id}',
        'DELETE /api/v1/contacts/{id}',
        'POST /api/v1/contacts/{id}/restore',
        'GET /api/v1/users',
        'POST /api/v1/users',
        'GET /api/v1/users/{id}',
        'PATCH /api/v1/users/{id}',
        'POST /api/v1/users/{id}/deactivate',
        'POST /api/v1/users/{id}/reactivate',
        'GET /api/v1/custom-fields',
      ].sort(),
    );
    for (const { route, op } of listed) {
      expect.soft(op.operationId, route).toEqual(expect.any(String));
      expect.soft(Object.keys(op.responses ?? {}), route).toContain('401');
    }
    expect(doc.components.securitySchemes.apiKey).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.security).toEqual([{ apiKey: [] }]);
    expect(JSON.stringify(doc.paths['/api/v1/contacts'].post.requestBody)).toContain('allowDuplicate');
  });
});

describe('after an uninstall', () => {
  it('the location’s keys stop working, saying why, while other locations’ keys go on', async () => {
    expect((await api('GET', '/api/v1/contacts', { key: keyB })).status).toBe(200);
    await control(t.highlevelUrl, 'DELETE', '/installs', { appId: t.app.appId, locationId: B.id });
    await waitForInstallation(t, B.id, 'uninstalled');
    // Said as it is (the key is fine; Tandem is not installed there), on every route, and only to
    // the key's holder: an unknown key is told nothing more than before.
    for (const [method, path] of [['GET', '/api/v1/contacts'], ['POST', '/api/v1/contacts'], ['GET', '/api/v1/users'], ['GET', '/api/v1/custom-fields']]) {
      const res = await api(method!, path!, { key: keyB, ...(method === 'POST' ? { body: { firstName: 'Late' } } : {}) });
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.body).toEqual({ error: API_KEY_NOT_INSTALLED });
      expect(res.headers.get('www-authenticate')).toBeNull();
    }
    expect(API_KEY_NOT_INSTALLED).toEqual({ code: 'not_installed', message: expect.stringContaining('once Tandem is reinstalled') });
    const unknown = await api('GET', '/api/v1/contacts', { key: keyB.replace(/.$/, (c) => (c === 'a' ? 'b' : 'a')) });
    expect(unknown.status).toBe(401);
    expect(unknown.body).toEqual({ error: API_KEY_UNAUTHORIZED });
    expect((await api('GET', '/api/v1/contacts', { key: keyA })).status).toBe(200);
  });
});
