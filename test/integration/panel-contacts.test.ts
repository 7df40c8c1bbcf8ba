// The Contacts tab's API over real HTTP: newest change first with owner and HighLevel link, the
// search query, the Refused and Waiting to send filters (paging and refresh within them, one
// location's outbox alone, strict values), admins edit through the local write path (outbox row),
// an edit may not empty the last of name, email, phone and company (one that had none may still be
// edited), plain users are refused, the body is strict, and the location comes from the session only;
// one contact is read alone for the edit dialog's Load latest, and a stale save says nothing was saved.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveContact, createContact, getContact, updateContact } from '../../db/contacts.ts';
import { tombstone, upsertLink } from '../../db/links.ts';
import { enqueueOutbox, failOutbox, getOutbox, PARKED_AT } from '../../db/outbox.ts';
import { updateSyncSettings } from '../../db/sync-settings.ts';
import { createUser } from '../../db/users.ts';
import { emptyContact, type ContactFields } from '../../server/sync/contact-model.ts';
import { IDENTITY_REQUIRED, PHONE_EXTENSION, type PanelContactRead, type PanelContactSaved, type PanelContactsPage, type PanelContactView } from '../../server/routes/panel-contacts.ts';
import { startTestTandem, type TestAgency, type TestTandem } from '../helpers/tandem.ts';
import { panelApi, panelSignIn, twoInstalledAgencies } from '../helpers/panel.ts';

let t: TestTandem;
let agencyA: TestAgency;
let agencyB: TestAgency;
let A: { id: string; name: string };
let B: { id: string; name: string };
let plainUserA: string;

beforeAll(async () => {
  // The loop is not started: what the routes write stays in the outbox for the test to see.
  t = await startTestTandem({ sync: { start: false } });
  ({ agencyA, agencyB, A, B, plainUserA } = await twoInstalledAgencies(t));
});
afterAll(async () => {
  await t?.close();
});

const signIn = (userId: string, locationId: string) => panelSignIn(t, userId, locationId);

const api = <T = any>(method: string, path: string, token: string, body?: unknown) => panelApi<T>(t, method, path, token, body);

let at = Date.parse('2026-01-01T00:00:00Z');
function seed(locationId: string, fields: Partial<ContactFields>) {
  at += 1000;
  return createContact(t.db, { locationId, fields: { ...emptyContact(), ...fields }, now: at, origin: 'remote' });
}

describe('list', () => {
  it('lists the session location\'s contacts newest change first, with owner and HighLevel link; another location sees none of them', async () => {
    const owner = createUser(t.db, { locationId: A.id, name: 'Olive Owner', email: 'olive@alpha.example', now: at });
    const older = seed(A.id, { firstName: 'Old', lastName: 'Timer', email: 'old@alpha.example', tags: ['vip'], ownerUserId: owner.id });
    const newer = seed(A.id, { firstName: 'New', lastName: 'Comer', phone: '+15550100' });
    upsertLink(t.db, { locationId: A.id, contactId: older.id, highlevelId: 'hl-older', base: older.fields, now: at });
    seed(B.id, { firstName: 'Bravo', lastName: 'Only' });

    const token = await signIn(agencyA.adminId, A.id);
    const { status, body } = await api<PanelContactsPage>('GET', '/api/panel/contacts', token);
    expect(status).toBe(200);
    expect(body.canEdit).toBe(true);
    const ids = body.contacts.map((c) => c.id);
    expect(ids.indexOf(newer.id)).toBeLessThan(ids.indexOf(older.id));
    expect(body.contacts.find((c) => c.id === older.id)).toMatchObject({ firstName: 'Old', tags: ['vip'], owner: 'Olive Owner', highlevelId: 'hl-older' });
    expect(body.contacts.find((c) => c.id === newer.id)).toMatchObject({ phone: '+15550100', owner: null, highlevelId: null });
    expect(body.contacts.some((c) => c.firstName === 'Bravo')).toBe(false);

    const tokenB = await signIn(agencyB.adminId, B.id);
    const listB = await api<PanelContactsPage>('GET', '/api/panel/contacts', tokenB);
    expect(listB.body.contacts.map((c) => c.firstName)).toEqual(['Bravo']);
  });

  it('refreshes down to a position (`until`): the rows Show more loaded, and a contact changed since at the top; never with cursor', async () => {
    // A location of its own, so the counts are exact: 120 contacts, 50 a page.
    const { agencyA: agency, A: location } = await twoInstalledAgencies(t);
    for (let i = 0; i < 120; i++) seed(location.id, { firstName: `Row${i}`, email: `row${i}@until.example` });
    const token = await signIn(agency.adminId, location.id);
    const first = (await api<PanelContactsPage>('GET', '/api/panel/contacts', token)).body;
    const second = (await api<PanelContactsPage>('GET', `/api/panel/contacts?cursor=${encodeURIComponent(first.nextCursor!)}`, token)).body;
    expect(first.contacts).toHaveLength(50);
    expect(second.contacts).toHaveLength(50);
    // A contact of the second page changes: a refresh down to the last row shown has it first, and
    // still 100 rows, continuing where Show more left off.
    const moved = second.contacts[10]!;
    at += 1000;
    updateContact(t.db, { locationId: location.id, id: moved.id, patch: { lastName: 'Moved' }, now: at, origin: 'remote' });
    const refreshed = (await api<PanelContactsPage>('GET', `/api/panel/contacts?until=${encodeURIComponent(second.endCursor!)}`, token)).body;
    expect(refreshed.contacts).toHaveLength(100);
    expect(refreshed.contacts[0]).toMatchObject({ id: moved.id, lastName: 'Moved' });
    expect(refreshed.contacts.at(-1)!.id).toBe(second.contacts.at(-1)!.id);
    const rest = (await api<PanelContactsPage>('GET', `/api/panel/contacts?cursor=${encodeURIComponent(refreshed.nextCursor!)}`, token)).body;
    expect(rest.contacts).toHaveLength(20);
    expect(new Set([...refreshed.contacts, ...rest.contacts].map((c) => c.id)).size).toBe(120);
    const both = await api('GET', `/api/panel/contacts?cursor=${encodeURIComponent(first.nextCursor!)}&until=${encodeURIComponent(second.endCursor!)}`, token);
    expect(both.status).toBe(400);
    expect((await api('GET', '/api/panel/contacts?until=nonsense', token)).status).toBe(400);
  });

  it('filters by a query on name, email or phone (case-insensitive substring)', async () => {
    seed(A.id, { firstName: 'Quincy', lastName: 'Query', email: 'quincy@alpha.example' });
    const token = await signIn(agencyA.adminId, A.id);
    const byName = await api<PanelContactsPage>('GET', '/api/panel/contacts?query=cy%20que', token);
    expect(byName.body.contacts.map((c) => c.firstName)).toEqual(['Quincy']);
    const byEmail = await api<PanelContactsPage>('GET', '/api/panel/contacts?query=QUINCY@', token);
    expect(byEmail.body.contacts.map((c) => c.firstName)).toEqual(['Quincy']);
    const none = await api<PanelContactsPage>('GET', '/api/panel/contacts?query=%25', token);
    expect(none.body.contacts).toEqual([]);
    expect((await api('GET', '/api/panel/contacts?cursor=garbage', token)).status).toBe(400);
  });

  it('tells a contact HighLevel refused from one not sent yet: each row carries its outbox state, the page the settings', async () => {
    const refused = seed(A.id, { firstName: 'Refused', email: 'dupe@alpha.example' });
    const waiting = seed(A.id, { firstName: 'Waiting' });
    const parked = seed(A.id, { firstName: 'Parked' });
    const retrying = seed(A.id, { firstName: 'Retrying' });
    const synced = seed(A.id, { firstName: 'Synced' });
    upsertLink(t.db, { locationId: A.id, contactId: synced.id, highlevelId: 'hl-synced', base: synced.fields, now: at });
    // Its HighLevel contact deleted, then restored in Tandem: not in HighLevel, on its way there again.
    const restored = seed(A.id, { firstName: 'Restored' });
    upsertLink(t.db, { locationId: A.id, contactId: restored.id, highlevelId: 'hl-deleted', base: restored.fields, now: at });
    tombstone(t.db, A.id, 'hl-deleted', at);
    const now = Date.now();
    for (const c of [refused, waiting, parked, retrying, restored]) enqueueOutbox(t.db, A.id, c.id, 'upsert', now);
    // As the sync loop records them (server/sync/outbound.ts): refused for good, parked by a setting, retried later.
    failOutbox(t.db, getOutbox(t.db, A.id, refused.id)!, { error: 'HighLevel refused a second contact with this email', nextAttemptAt: now, permanent: true });
    failOutbox(t.db, getOutbox(t.db, A.id, parked.id)!, { error: 'Waiting: contact creation is set to Inbound', nextAttemptAt: PARKED_AT, permanent: false });
    failOutbox(t.db, getOutbox(t.db, A.id, retrying.id)!, { error: 'HighLevel answered 503', nextAttemptAt: now + 60_000, permanent: false });

    const token = await signIn(agencyA.adminId, A.id);
    const { body } = await api<PanelContactsPage>('GET', '/api/panel/contacts', token);
    const row = (id: string) => body.contacts.find((c) => c.id === id);
    expect(row(refused.id)).toMatchObject({ highlevelId: null, outbound: { status: 'failed', reason: 'HighLevel refused a second contact with this email' } });
    expect(row(waiting.id)).toMatchObject({ highlevelId: null, outbound: { status: 'pending', reason: null } });
    // The park reason restates a setting the page's `sync` states as it is now.
    expect(row(parked.id)).toMatchObject({ outbound: { status: 'pending', reason: null } });
    expect(row(retrying.id)).toMatchObject({ outbound: { status: 'pending', reason: 'HighLevel answered 503' } });
    expect(row(synced.id)).toMatchObject({ highlevelId: 'hl-synced', outbound: null });
    expect(row(restored.id)).toMatchObject({ highlevelId: null, outbound: { status: 'pending', reason: null } });
    expect(body.sync).toEqual({ creationDirection: 'bidirectional', updateDirection: 'inbound', paused: false });

    // A save answers with the settings it was made under, for the confirmation to say what follows.
    updateSyncSettings(t.db, { locationId: A.id, patch: { updateDirection: 'bidirectional' }, user: { id: agencyA.adminId, name: 'Ada Admin' }, now });
    try {
      const saved = await api<PanelContactSaved>('PATCH', `/api/panel/contacts/${refused.id}`, token, { email: 'fixed@alpha.example', version: refused.version });
      expect(saved.status).toBe(200);
      // The edit made the refused row pending again (db/outbox.ts): it is tried once more.
      expect(saved.body.contact.outbound).toEqual({ status: 'pending', reason: null });
      expect(saved.body.sync).toEqual({ creationDirection: 'bidirectional', updateDirection: 'bidirectional', paused: false });
    } finally {
      updateSyncSettings(t.db, { locationId: A.id, patch: { updateDirection: 'inbound' }, user: { id: agencyA.adminId, name: 'Ada Admin' }, now });
    }
  });

  it('requires a session', async () => {
    const res = await fetch(`${t.url}/api/panel/contacts`);
    expect(res.status).toBe(401);
  });
});

describe('filter', () => {
  /** As the sync loop records a change HighLevel refused for good (server/sync/outbound.ts). */
  function refuse(locationId: string, contactId: string, reason: string) {
    enqueueOutbox(t.db, locationId, contactId, 'upsert', at);
    failOutbox(t.db, getOutbox(t.db, locationId, contactId)!, { error: reason, nextAttemptAt: at, permanent: true });
  }
  const list = (token: string, params: Record<string, string>) => api<PanelContactsPage>('GET', `/api/panel/contacts?${new URLSearchParams(params)}`, token);

  it('lists only the contacts HighLevel refused (with the reason), or only those waiting to go, of the session\'s location alone', async () => {
    const { agencyA: agency, A: location, agencyB: other, B: otherLocation } = await twoInstalledAgencies(t);
    const first = seed(location.id, { firstName: 'First', lastName: 'Refused', email: 'first@refused.example' });
    const plain = seed(location.id, { firstName: 'Plain', email: 'plain@refused.example' });
    const waiting = seed(location.id, { firstName: 'Waiting', email: 'waiting@refused.example' });
    const second = seed(location.id, { firstName: 'Second', lastName: 'Refused', email: 'second@refused.example' });
    const archived = seed(location.id, { firstName: 'Archived', email: 'archived@refused.example' });
    refuse(location.id, first.id, 'HighLevel refused the phone number “12”');
    refuse(location.id, second.id, 'this contact’s email is already on another contact');
    enqueueOutbox(t.db, location.id, waiting.id, 'upsert', at);
    refuse(location.id, archived.id, 'HighLevel refused it');
    archiveContact(t.db, { locationId: location.id, id: archived.id, now: at, origin: 'remote' });
    // Another location's refused contacts, and a refused row of that location naming one of this
    // location's contacts (only its own outbox counts for a location).
    const elsewhere = seed(otherLocation.id, { firstName: 'Elsewhere', lastName: 'Refused' });
    refuse(otherLocation.id, elsewhere.id, 'HighLevel refused it');
    refuse(otherLocation.id, plain.id, 'HighLevel refused it');

    const token = await signIn(agency.adminId, location.id);
    const refused = await list(token, { filter: 'refused' });
    expect(refused.status).toBe(200);
    expect(refused.body.contacts.map((c) => c.firstName)).toEqual(['Second', 'First']);
    expect(refused.body.contacts[1]).toMatchObject({ outbound: { status: 'failed', reason: 'HighLevel refused the phone number “12”' } });
    expect(refused.body).toMatchObject({ nextCursor: null, endCursor: expect.any(String), canEdit: true });
    expect((await list(token, { filter: 'waiting' })).body.contacts.map((c) => c.firstName)).toEqual(['Waiting']);
    // With the search: the refused contacts it matches.
    expect((await list(token, { filter: 'refused', query: 'second@' })).body.contacts.map((c) => c.firstName)).toEqual(['Second']);
    expect((await list(token, { filter: 'refused', query: 'plain' })).body.contacts).toEqual([]);
    // Without a filter, every contact as before.
    expect((await list(token, {})).body.contacts.map((c) => c.firstName)).toEqual(['Second', 'Waiting', 'Plain', 'First']);

    const otherToken = await signIn(other.adminId, otherLocation.id);
    expect((await list(otherToken, { filter: 'refused' })).body.contacts.map((c) => c.firstName)).toEqual(['Elsewhere']);
    expect((await list(otherToken, { filter: 'waiting' })).body.contacts).toEqual([]);
  });

  it('pages and refreshes (`until`) within the filter: a contact refused since comes in, one edited since goes', async () => {
    const { agencyA: agency, A: location } = await twoInstalledAgencies(t);
    // 150 contacts, every other one refused: 75 refused, 50 a page.
    const made = Array.from({ length: 150 }, (_, i) => seed(location.id, { firstName: `Row${i}`, email: `row${i}@paging.example` }));
    const refusedIds = made.filter((_, i) => i % 2 === 0).map((c) => c.id);
    for (const id of refusedIds) refuse(location.id, id, 'HighLevel refused it');
    const token = await signIn(agency.adminId, location.id);

    const first = (await list(token, { filter: 'refused' })).body;
    expect(first.contacts).toHaveLength(50);
    const second = (await list(token, { filter: 'refused', cursor: first.nextCursor! })).body;
    expect(second.contacts).toHaveLength(25);
    expect(second.nextCursor).toBeNull();
    expect([...first.contacts, ...second.contacts].map((c) => c.id)).toEqual([...refusedIds].reverse());

    // Meanwhile: a refused contact of the second page changes in HighLevel (still refused), a
    // contact is newly refused, and one is edited in Tandem (tried again: no longer refused).
    const changed = second.contacts[5]!;
    at += 1000;
    updateContact(t.db, { locationId: location.id, id: changed.id, patch: { lastName: 'Changed' }, now: at, origin: 'remote' });
    const newlyRefused = made[1]!;
    refuse(location.id, newlyRefused.id, 'HighLevel refused it too');
    const edited = first.contacts[3]!;
    at += 1000;
    updateContact(t.db, { locationId: location.id, id: edited.id, patch: { lastName: 'Fixed' }, now: at, origin: 'local' });

    const refreshed = (await list(token, { filter: 'refused', until: second.endCursor! })).body;
    const ids = refreshed.contacts.map((c) => c.id);
    expect(ids[0]).toBe(changed.id);
    expect(refreshed.contacts[0]).toMatchObject({ lastName: 'Changed', outbound: { status: 'failed' } });
    expect(ids).toContain(newlyRefused.id);
    expect(ids).not.toContain(edited.id);
    expect(ids.at(-1)).toBe(second.contacts.at(-1)!.id);
    expect(ids).toHaveLength(75);
    expect(refreshed.nextCursor).toBeNull();
    expect(refreshed.contacts.every((c) => c.outbound?.status === 'failed')).toBe(true);
    // The same position without the filter reads every contact down to it.
    expect((await list(token, { until: second.endCursor! })).body.contacts).toHaveLength(150);
    // Waiting: the contact edited in Tandem, alone.
    expect((await list(token, { filter: 'waiting' })).body.contacts.map((c) => c.id)).toEqual([edited.id]);
  });

  it('says how many contacts the search and filter match in all, on every page and refresh, without archived ones or another location\'s', async () => {
    // QA: with 1,512 contacts the tab showed 50 rows and Show more, and no total.
    const { agencyA: agency, A: location, B: otherLocation } = await twoInstalledAgencies(t);
    const made = Array.from({ length: 120 }, (_, i) => seed(location.id, { firstName: i % 3 === 0 ? `Totalfern${i}` : `Row${i}`, email: `row${i}@total.example` }));
    // 40 named Totalfern (every third); 30 contacts refused (every fourth), 10 of them named Totalfern.
    made.forEach((c, i) => i % 4 === 0 && refuse(location.id, c.id, 'HighLevel refused it'));
    enqueueOutbox(t.db, location.id, made[1]!.id, 'upsert', at);
    archiveContact(t.db, { locationId: location.id, id: made[2]!.id, now: at, origin: 'remote' });
    seed(otherLocation.id, { firstName: 'Totalfern elsewhere' });
    const token = await signIn(agency.adminId, location.id);

    const all = (await list(token, {})).body;
    expect(all.contacts).toHaveLength(50);
    expect(all.total).toBe(119);
    // The next page and a refresh down to it say the same total.
    const next = (await list(token, { cursor: all.nextCursor! })).body;
    expect(next.total).toBe(119);
    expect((await list(token, { until: next.endCursor! })).body.total).toBe(119);
    expect((await list(token, { query: 'totalfern' })).body).toMatchObject({ total: 40 });
    expect((await list(token, { filter: 'refused' })).body).toMatchObject({ total: 30 });
    expect((await list(token, { filter: 'refused', query: 'totalfern' })).body).toMatchObject({ total: 10 });
    expect((await list(token, { filter: 'waiting' })).body).toMatchObject({ total: 1 });
    const none = (await list(token, { query: 'nobody by this name' })).body;
    expect(none).toMatchObject({ contacts: [], total: 0 });
  });

  it('refuses a filter it does not know or a repeated one (400, saying what is allowed), and ignores a location named in the query', async () => {
    const token = await signIn(agencyA.adminId, A.id);
    for (const q of ['filter=bogus', 'filter=REFUSED', 'filter=', 'filter=refused&filter=waiting']) {
      const res = await api('GET', `/api/panel/contacts?${q}`, token);
      expect(res.status, q).toBe(400);
      expect(res.body.error, q).toEqual({ code: 'invalid_request', message: 'filter: must be refused or waiting; leave it out to list every contact' });
    }
    // The location comes from the session: naming another one changes nothing (route-inventory.test.ts
    // asks every session route for the same answer with and without it).
    const plain = await api('GET', '/api/panel/contacts?filter=refused', token);
    const other = await api('GET', `/api/panel/contacts?filter=refused&locationId=${B.id}`, token);
    expect(other.status).toBe(200);
    expect(other.body).toEqual(plain.body);
  });
});

describe('read one', () => {
  it('reads one contact for the edit dialog (Load latest): its values and version now, HighLevel\'s reason when it refused it, and the settings', async () => {
    const c = seed(A.id, { firstName: 'Reed', lastName: 'Latest', email: 'reed@alpha.example' });
    const token = await signIn(agencyA.adminId, A.id);
    // Changed after the dialog read it (a sync from HighLevel), then refused by HighLevel.
    at += 1000;
    updateContact(t.db, { locationId: A.id, id: c.id, patch: { phone: '+15550133' }, now: at, origin: 'remote' });
    enqueueOutbox(t.db, A.id, c.id, 'upsert', at);
    failOutbox(t.db, getOutbox(t.db, A.id, c.id)!, { error: 'this contact’s email is already on another HighLevel contact', nextAttemptAt: at, permanent: true });
    const { status, body } = await api<PanelContactRead>('GET', `/api/panel/contacts/${c.id}`, token);
    expect(status).toBe(200);
    expect(body.contact).toMatchObject({
      id: c.id,
      firstName: 'Reed',
      phone: '+15550133',
      version: c.version + 1,
      highlevelId: null,
      outbound: { status: 'failed', reason: 'this contact’s email is already on another HighLevel contact' },
    });
    expect(body.sync).toEqual({ creationDirection: 'bidirectional', updateDirection: 'inbound', paused: false });
    // The same view as the list's row.
    const listed = (await api<PanelContactsPage>('GET', '/api/panel/contacts?query=reed', token)).body.contacts.find((r) => r.id === c.id);
    expect(listed).toEqual(body.contact);
    // A plain user reads it too (the list shows them the same).
    expect((await api('GET', `/api/panel/contacts/${c.id}`, await signIn(plainUserA, A.id))).status).toBe(200);
  });

  it('answers 404 for another location\'s contact, an archived one or an unknown id, and 401 without a session', async () => {
    const other = seed(B.id, { firstName: 'Bea', email: 'bea@bravo.example' });
    const gone = seed(A.id, { firstName: 'Gone' });
    archiveContact(t.db, { locationId: A.id, id: gone.id, now: at + 1, origin: 'remote' });
    const token = await signIn(agencyA.adminId, A.id);
    for (const id of [other.id, gone.id, 'no-such-id']) {
      const res = await api('GET', `/api/panel/contacts/${id}`, token);
      expect(res.status, id).toBe(404);
      expect(JSON.stringify(res.body)).not.toContain('Bea');
    }
    // A location named in the query changes nothing.
    expect((await api('GET', `/api/panel/contacts/${other.id}?locationId=${B.id}`, token)).status).toBe(404);
    expect((await fetch(`${t.url}/api/panel/contacts/${gone.id}`)).status).toBe(401);
  });
});

describe('edit', () => {
  it('an admin saves through the local write path: normalised, version bumped, outbox row enqueued', async () => {
    const c = seed(A.id, { firstName: 'Eddie', lastName: 'Edit', email: 'eddie@alpha.example' });
    const token = await signIn(agencyA.adminId, A.id);
    const { status, body } = await api<{ contact: PanelContactView }>('PATCH', `/api/panel/contacts/${c.id}`, token, {
      lastName: '  Edited ',
      phone: '(415) 555-0199',
      tags: ['Gold', 'gold', ' new '],
      version: c.version,
    });
    expect(status).toBe(200);
    expect(body.contact).toMatchObject({ firstName: 'Eddie', lastName: 'Edited', phone: '+14155550199', tags: ['gold', 'new'], version: c.version + 1 });
    expect(getContact(t.db, A.id, c.id)?.fields).toMatchObject({ lastName: 'Edited', email: 'eddie@alpha.example' });
    expect(getOutbox(t.db, A.id, c.id)).toMatchObject({ status: 'pending' });
    // A stale version is refused rather than overwriting what changed meanwhile, saying nothing was
    // saved (the panel offers to load the latest version beside it).
    const late = await api('PATCH', `/api/panel/contacts/${c.id}`, token, { firstName: 'Late', version: c.version });
    expect(late.status).toBe(412);
    expect(late.body.error).toEqual({ code: 'version_mismatch', message: 'This contact changed after you opened it, so nothing was saved.' });
  });

  it('refuses an edit that empties the last of name, email, phone and company (400, nothing written), as the REST API does', async () => {
    // QA: every identifying field emptied was saved, the contact became "Unnamed contact", and
    // with Contact update Bi-directional HighLevel's copy was cleared too.
    const c = seed(A.id, { firstName: 'Ivy', lastName: 'Ident', email: 'ivy@alpha.example', phone: '+15550111', companyName: 'Ivy Co', tags: ['keep'] });
    const token = await signIn(agencyA.adminId, A.id);
    const all = { firstName: null, lastName: null, email: null, phone: null, companyName: null };
    for (const body of [
      { ...all, version: c.version },
      // Blanks as the form might send them, and the last one cleared on its own.
      { firstName: '', lastName: '  ', email: '', phone: '', companyName: '', version: c.version },
    ]) {
      const res = await api('PATCH', `/api/panel/contacts/${c.id}`, token, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error).toEqual({ code: 'contact_unidentifiable', message: IDENTITY_REQUIRED });
    }
    expect(getContact(t.db, A.id, c.id)).toMatchObject({ version: c.version, fields: { firstName: 'Ivy', companyName: 'Ivy Co' } });
    expect(getOutbox(t.db, A.id, c.id)).toBeUndefined();
    // Emptying all but one is an edit like any other.
    const kept = await api<PanelContactSaved>('PATCH', `/api/panel/contacts/${c.id}`, token, { ...all, companyName: 'Ivy Co', version: c.version });
    expect(kept.status).toBe(200);
    expect(kept.body.contact).toMatchObject({ firstName: null, email: null, companyName: 'Ivy Co' });
    const last = await api('PATCH', `/api/panel/contacts/${c.id}`, token, { companyName: ' ', version: kept.body.contact.version });
    expect(last.status).toBe(400);
    expect(getContact(t.db, A.id, c.id)?.fields.companyName).toBe('Ivy Co');
  });

  it('refuses a phone with an extension (400, nothing saved) instead of saving the number without it', async () => {
    const c = seed(A.id, { firstName: 'Xena', phone: '+14155550177', country: 'GB' });
    const token = await signIn(agencyA.adminId, A.id);
    for (const phone of ['+1 415 555 0177 ext 12', '(415) 555-0177 x12', '020 7946 0958 ext. 3']) {
      const res = await api('PATCH', `/api/panel/contacts/${c.id}`, token, { firstName: 'Xenia', phone, version: c.version });
      expect(res.status, phone).toBe(400);
      expect(res.body.error, phone).toEqual({ code: 'invalid_request', message: PHONE_EXTENSION });
    }
    expect(getContact(t.db, A.id, c.id)).toMatchObject({ version: c.version, fields: { firstName: 'Xena', phone: '+14155550177' } });
    expect(getOutbox(t.db, A.id, c.id)).toBeUndefined();
    // The form sent back with the phone as it is saves; so does the number alone.
    const same = await api<PanelContactSaved>('PATCH', `/api/panel/contacts/${c.id}`, token, { firstName: 'Xenia', phone: '+14155550177', version: c.version });
    expect(same.status).toBe(200);
    const alone = await api<PanelContactSaved>('PATCH', `/api/panel/contacts/${c.id}`, token, { phone: '020 7946 0958', version: same.body.contact.version });
    expect(alone.body.contact.phone).toBe('+442079460958');
  });

  it('still edits a contact that had none of them (HighLevel allows those), as long as the edit adds none', async () => {
    const blank = seed(A.id, { tags: ['from-highlevel'] });
    const token = await signIn(agencyA.adminId, A.id);
    const tagged = await api<PanelContactSaved>('PATCH', `/api/panel/contacts/${blank.id}`, token, {
      firstName: null, lastName: null, email: null, phone: null, companyName: null, tags: ['from-highlevel', 'reviewed'], version: blank.version,
    });
    expect(tagged.status).toBe(200);
    expect(tagged.body.contact).toMatchObject({ firstName: null, tags: ['from-highlevel', 'reviewed'], version: blank.version + 1 });
    const named = await api<PanelContactSaved>('PATCH', `/api/panel/contacts/${blank.id}`, token, { firstName: 'Found', version: tagged.body.contact.version });
    expect(named.status).toBe(200);
    expect(named.body.contact.firstName).toBe('Found');
  });

  it('refuses plain users (403), unknown properties and bad emails (400), another contact\'s email (409), other locations\' contacts (404)', async () => {
    const c = seed(A.id, { firstName: 'Rita', email: 'rita@alpha.example' });
    const other = seed(B.id, { firstName: 'Bea' });
    const plain = await signIn(plainUserA, A.id);
    const list = await api<PanelContactsPage>('GET', '/api/panel/contacts', plain);
    expect(list.status).toBe(200);
    expect(list.body.canEdit).toBe(false);
    expect((await api('PATCH', `/api/panel/contacts/${c.id}`, plain, { firstName: 'Nope' })).status).toBe(403);
    const admin = await signIn(agencyA.adminId, A.id);
    expect((await api('PATCH', `/api/panel/contacts/${c.id}`, admin, { firstName: 'X', locationId: B.id })).status).toBe(400);
    expect((await api('PATCH', `/api/panel/contacts/${c.id}`, admin, { email: 'not an email' })).status).toBe(400);
    // Another contact's email: refused, saying nothing was saved.
    seed(A.id, { firstName: 'Taken', email: 'taken@alpha.example' });
    const duplicate = await api('PATCH', `/api/panel/contacts/${c.id}`, admin, { email: 'Taken@alpha.example' });
    expect(duplicate.status).toBe(409);
    expect(duplicate.body.error).toEqual({ code: 'duplicate_contact', message: 'Another contact in this sub-account already has this email, so nothing was saved.' });
    expect((await api('PATCH', `/api/panel/contacts/${other.id}`, admin, { firstName: 'Stolen' })).status).toBe(404);
    expect(getContact(t.db, B.id, other.id)?.fields.firstName).toBe('Bea');
    expect(getContact(t.db, A.id, c.id)?.fields.firstName).toBe('Rita');
    expect(getOutbox(t.db, A.id, c.id)).toBeUndefined();
  });
});
