// Tandem → HighLevel (server/sync/outbound.ts) over real HTTP against the emulator, with a real
// SQLite database: creation and linking, updates per direction, echo suppression (T11), tag merges
// (T13), ambiguous and permanent create failures and 429 deferral (T14-lite), archives and owners.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Database, Db } from '../../db/client.ts';
import { archiveContact, createContact, getContact, restoreContact, updateContact } from '../../db/contacts.ts';
import { upsertHighLevelUsers, ownerMapFor } from '../../db/highlevel-users.ts';
import { getLinkByContact, getLinkByRemote, upsertLink } from '../../db/links.ts';
import { getOutbox, outboxCounts } from '../../db/outbox.ts';
import { updateSyncSettings } from '../../db/sync-settings.ts';
import { getSyncState } from '../../db/sync-state.ts';
import { syncStatus } from '../../db/sync-status.ts';
import { createUser } from '../../db/users.ts';
import type { RunningEmulator } from '../../emulator/server.ts';
import type { ContactDoc } from '../../emulator/state.ts';
import { fromHighLevel, highLevelContactEventSchema } from '../../server/highlevel/contact-mapping.ts';
import type { LocationApi } from '../../server/highlevel/contacts.ts';
import { emptyContact, type ContactFields } from '../../server/sync/contact-model.ts';
import { applyRemote } from '../../server/sync/inbound.ts';
import { isEcho, pendingLocal } from '../../server/sync/merge.ts';
import { PARKED_FOR_CREATION, PARKED_FOR_FILL, PARKED_FOR_UPDATES, pushPending, type OutboundDeps } from '../../server/sync/outbound.ts';
import { control, ManualClock, testEmulator, until } from '../helpers/emulator.ts';
import { testLocationApi } from '../helpers/location-api.ts';
import { addLocation, addOauthToken, installApp } from '../helpers/world.ts';
import { memoryDatabase } from '../helpers/database.ts';

const SCOPES = ['contacts.readonly', 'contacts.write', 'users.readonly'];

let emulator: RunningEmulator;
let clock: ManualClock;
let database: Database;
let db: Db;
let locationId: string;
let api: LocationApi;
let hooks: Server;
let received: string[];

function deps(extra: Partial<OutboundDeps> = {}): OutboundDeps {
  return { db, clock, api, random: () => 0.5, ...extra };
}

function fields(draft: Partial<ContactFields>): ContactFields {
  return { ...emptyContact(), ...draft };
}

function localCreate(draft: Partial<ContactFields>) {
  clock.advance(1000);
  return createContact(db, { locationId, fields: fields(draft), now: clock.now(), origin: 'local' });
}

function localUpdate(id: string, patch: Parameters<typeof updateContact>[1]['patch'], tags?: { add: string[]; remove: string[] }) {
  clock.advance(1000);
  return updateContact(db, { locationId, id, patch, ...(tags ? { tags } : {}), now: clock.now(), origin: 'local' });
}

function setDirections(patch: { creationDirection?: 'bidirectional' | 'inbound'; updateDirection?: 'bidirectional' | 'inbound' }) {
  updateSyncSettings(db, { locationId, patch, user: { id: 'admin', name: 'Admin' }, now: clock.now() });
}

function remoteDoc(highlevelId: string): ContactDoc {
  const doc = emulator.emu.contact(highlevelId);
  if (!doc) throw new Error(`no HighLevel contact ${highlevelId}`);
  return doc;
}

function linkOf(contactId: string) {
  const link = getLinkByContact(db, locationId, contactId);
  if (!link) throw new Error(`contact ${contactId} is not linked`);
  return link;
}

/** The location's live HighLevel contacts. */
function remoteIds(): string[] {
  return [...emulator.emu.contactIds(locationId)].filter((id) => emulator.emu.contact(id));
}

type Logged = { method: string; path: string; status: number };
async function requestLog(): Promise<Logged[]> {
  return (await control<{ requests: Logged[] }>(emulator.url, 'GET', '/requests')).requests;
}
async function clearLog(): Promise<void> {
  await control(emulator.url, 'DELETE', '/requests');
}

/** A contact created in HighLevel by someone else (through the same API, as a HighLevel user would). */
async function remoteCreate(body: Record<string, unknown>): Promise<string> {
  const res = await api.createContact({ locationId, ...body });
  if (!('contact' in res)) throw new Error('expected a created contact');
  return res.contact.id;
}

beforeEach(async () => {
  clock = new ManualClock();
  emulator = await testEmulator({ clock });
  const added = addLocation(emulator.emu, { name: 'Cedar Dental' });
  locationId = added.location.id;
  const token = addOauthToken(emulator.emu, { authClass: 'Location', companyId: added.companyId, locationId, scopes: SCOPES });
  received = [];
  hooks = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      received.push(body);
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => hooks.listen(0, '127.0.0.1', resolve));
  installApp(emulator.emu, added.location, `http://127.0.0.1:${(hooks.address() as AddressInfo).port}/hooks`);
  database = memoryDatabase();
  db = database.db;
  api = testLocationApi(emulator.url, { locationId, clock, tokens: token });
});

afterEach(async () => {
  await emulator.close();
  await new Promise<void>((resolve) => hooks.close(() => resolve()));
  database.close();
});

describe('creation', () => {
  it('creates a Tandem contact in HighLevel and links it to what HighLevel returned', async () => {
    const c = localCreate({ firstName: 'Ana', lastName: 'Lima', email: 'ana@example.com', phone: '+14155550100', tags: ['vip'], city: 'Porto' });
    const result = await pushPending(deps(), locationId);
    expect(result).toMatchObject({ sent: 1, failed: 0, retried: 0, parked: 0, deferred: null });

    const link = linkOf(c.id);
    expect(remoteDoc(link.highlevelId)).toMatchObject({ firstName: 'Ana', lastName: 'Lima', email: 'ana@example.com', city: 'Porto', tags: ['vip'] });
    expect(link.base).toEqual(getContact(db, locationId, c.id)!.fields);
    expect(outboxCounts(db, locationId)).toEqual({ pending: 0, failed: 0 });
    expect(getSyncState(db, locationId).lastOutboundAt).toBe(clock.now());
    // Looked up (email and phone in one question) before creating.
    const log = await requestLog();
    expect(log.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /contacts/search/duplicate', 'POST /contacts/']);

    // Nothing left: a second pass sends nothing.
    await clearLog();
    expect((await pushPending(deps(), locationId)).sent).toBe(0);
    expect(await requestLog()).toEqual([]);
  });

  it('links to the HighLevel contact with the same email: fills only its empty fields, never overwrites', async () => {
    const hlId = await remoteCreate({ firstName: 'Ana', email: 'ana@example.com', city: 'Porto', tags: ['hl-lead'] });
    await clearLog();
    const c = localCreate({ firstName: 'Anabela', email: 'ANA@example.com', phone: '+14155550100', companyName: 'Acme', tags: ['tandem'] });

    const result = await pushPending(deps(), locationId);
    expect(result.sent).toBe(1);
    expect(linkOf(c.id).highlevelId).toBe(hlId);
    expect(remoteIds()).toEqual([hlId]);
    // HighLevel keeps its values; its empty fields are filled; tags are the union.
    const hl = remoteDoc(hlId);
    expect(hl).toMatchObject({ firstName: 'Ana', email: 'ana@example.com', city: 'Porto', phone: '+14155550100', companyName: 'Acme' });
    expect([...(hl.tags as string[])].sort()).toEqual(['hl-lead', 'tandem']);
    // Tandem takes HighLevel's values where HighLevel had them (origin 'remote': nothing queued back).
    const local = getContact(db, locationId, c.id)!;
    // (The email is the same one, matched case-insensitively; HighLevel's spelling of it is kept.)
    expect(local.fields).toMatchObject({ firstName: 'Ana', email: 'ana@example.com', city: 'Porto', companyName: 'Acme' });
    expect([...local.fields.tags].sort()).toEqual(['hl-lead', 'tandem']);
    expect(outboxCounts(db, locationId)).toEqual({ pending: 0, failed: 0 });
    expect(linkOf(c.id).base).toEqual({ ...local.fields, email: 'ana@example.com', tags: [...local.fields.tags].sort() });
    expect(pendingLocal(linkOf(c.id).base, local.fields)).toEqual([]);
    const log = (await requestLog()).map((r) => `${r.method} ${r.path}`);
    expect(log).not.toContain('POST /contacts/');
    expect(log.filter((l) => l.startsWith('PUT '))).toHaveLength(1);
  });

  it('links to the contact named by the duplicate 400 when the lookup missed it', async () => {
    // The lookup misses it (as a lagging or differently configured lookup could); HighLevel's own
    // duplicate check on create names the contact.
    const hlId = await remoteCreate({ firstName: 'Bo', email: 'bo@example.com' });
    const c = localCreate({ firstName: 'Bo', email: 'bo@example.com' });
    await control(emulator.url, 'POST', '/faults', { method: 'GET', path: '/contacts/search/duplicate', status: 200, body: { contact: null }, times: 1 });
    const result = await pushPending(deps(), locationId);
    expect(result.sent).toBe(1);
    expect(linkOf(c.id).highlevelId).toBe(hlId);
    expect(remoteIds()).toEqual([hlId]);
  });

  it('with creation Inbound keeps the contact in Tandem, pending, until creation turns Bi-directional', async () => {
    setDirections({ creationDirection: 'inbound' });
    const c = localCreate({ firstName: 'Cy', email: 'cy@example.com' });
    const parked = await pushPending(deps(), locationId);
    expect(parked).toMatchObject({ sent: 0, parked: 1 });
    expect(await requestLog()).toEqual([]);
    expect(outboxCounts(db, locationId)).toEqual({ pending: 1, failed: 0 });

    setDirections({ creationDirection: 'bidirectional' });
    expect((await pushPending(deps(), locationId)).sent).toBe(1);
    expect(remoteDoc(linkOf(c.id).highlevelId)).toMatchObject({ firstName: 'Cy' });
  });
});

describe('updates', () => {
  async function linkedContact(draft: Partial<ContactFields>) {
    const c = localCreate(draft);
    expect((await pushPending(deps(), locationId)).sent).toBe(1);
    await clearLog();
    return { id: c.id, highlevelId: linkOf(c.id).highlevelId };
  }

  it('a write that queues nothing, made while the push is in flight (a one-time Pull contacts), is merged again', async () => {
    setDirections({ updateDirection: 'bidirectional' });
    const { id, highlevelId } = await linkedContact({ firstName: 'Ana', email: 'ana@example.com' });
    localUpdate(id, { firstName: 'Tandem' });
    await clearLog();
    await control(emulator.url, 'POST', '/faults', { method: 'PUT', path: '/contacts/', delayMs: 300, times: 1 });

    const pushing = pushPending(deps(), locationId);
    await until(async () => (await requestLog()).some((r) => r.method === 'GET'), 'the GET of the push');
    // Meanwhile a Pull contacts run writes HighLevel's value as it read it, and its ledger, as
    // operations/pull.ts does: origin 'remote', nothing queued.
    clock.advance(1000);
    updateContact(db, { locationId, id, patch: { firstName: 'Pulled' }, now: clock.now(), origin: 'remote' });
    upsertLink(db, { ...linkOf(id), base: { ...linkOf(id).base, firstName: 'Pulled' }, now: clock.now() });
    // HighLevel took Tandem's earlier value while Tandem came to hold the operation's. Queued again,
    // the contact is merged once more in the same pass; without that, the two sides stayed
    // different for good (HighLevel 'Tandem', Tandem 'Pulled', nothing pending).
    expect((await pushing).sent).toBe(2);
    expect(getContact(db, locationId, id)!.fields.firstName).toBe('Pulled');
    expect(remoteDoc(highlevelId).firstName).toBe('Pulled');
    expect(linkOf(id).base).toEqual(getContact(db, locationId, id)!.fields);
    expect(outboxCounts(db, locationId)).toEqual({ pending: 0, failed: 0 });
  });

  it('with Bi-directional sends only the changed fields: one GET, one PUT, no create', async () => {
    setDirections({ updateDirection: 'bidirectional' });
    const { id, highlevelId } = await linkedContact({ firstName: 'Ana', lastName: 'Lima', email: 'ana@example.com', city: 'Porto' });
    // Meanwhile a HighLevel user renames her; Tandem changes the city.
    clock.advance(1000);
    await api.updateContact(highlevelId, { firstName: 'Anna' });
    await clearLog();
    localUpdate(id, { city: 'Lisboa' });

    const result = await pushPending(deps(), locationId);
    expect(result.sent).toBe(1);
    expect((await requestLog()).map((r) => `${r.method} ${r.path}`)).toEqual([`GET /contacts/${highlevelId}`, `PUT /contacts/${highlevelId}`]);
    // The PUT carried the city only: HighLevel's new first name survived, and came into Tandem.
    expect(remoteDoc(highlevelId)).toMatchObject({ firstName: 'Anna', lastName: 'Lima', city: 'Lisboa' });
    expect(getContact(db, locationId, id)!.fields).toMatchObject({ firstName: 'Anna', city: 'Lisboa' });
    expect(linkOf(id).base).toEqual(getContact(db, locationId, id)!.fields);
    expect(outboxCounts(db, locationId)).toEqual({ pending: 0, failed: 0 });
  });

  it('QA: a phone HighLevel holds without +prefix stays the number it was when only the country changes, by Tandem or by HighLevel', async () => {
    setDirections({ updateDirection: 'bidirectional' });
    const highlevelId = await remoteCreate({ firstName: 'Pia', email: 'pia@example.com', phone: '(415) 555-0123', country: 'US' });
    clock.advance(1000);
    const settings = { creationDirection: 'bidirectional', updateDirection: 'bidirectional' } as const;
    expect(applyRemote({ db, now: clock.now(), settings }, locationId, fromHighLevel(remoteDoc(highlevelId), ownerMapFor(db, locationId), { complete: true }), { complete: true })).toBe('created');
    const id = getLinkByRemote(db, locationId, highlevelId)!.contactId;
    expect(getContact(db, locationId, id)!.fields.phone).toBe('+14155550123');
    const expectSamePhone = (country: string) => {
      expect(getContact(db, locationId, id)!.fields).toMatchObject({ country, phone: '+14155550123' });
      expect(linkOf(id).base).toMatchObject({ country, phone: '+14155550123' });
      // Nothing written over HighLevel's phone either.
      expect(remoteDoc(highlevelId)).toMatchObject({ country, phone: '(415) 555-0123' });
      expect(outboxCounts(db, locationId)).toEqual({ pending: 0, failed: 0 });
    };

    // Tandem changes the country (as its REST API does); the push after it reads HighLevel's record
    // with the new country and the phone as typed there, before merging another Tandem edit.
    localUpdate(id, { country: 'DE' });
    expect((await pushPending(deps(), locationId)).sent).toBe(1);
    expectSamePhone('DE');
    localUpdate(id, { firstName: 'Pía' });
    expect((await pushPending(deps(), locationId)).sent).toBe(1);
    expect(remoteDoc(highlevelId).firstName).toBe('Pía');
    expectSamePhone('DE');

    // HighLevel changes the country (its webhook not applied yet) and Tandem edits another field.
    clock.advance(1000);
    await api.updateContact(highlevelId, { country: 'GB' });
    localUpdate(id, { city: 'Porto' });
    expect((await pushPending(deps(), locationId)).sent).toBe(1);
    expectSamePhone('GB');

    // Other digits in HighLevel are a change, read in the contact's country.
    clock.advance(1000);
    await api.updateContact(highlevelId, { phone: '020 7946 0958' });
    localUpdate(id, { city: 'Lisboa' });
    expect((await pushPending(deps(), locationId)).sent).toBe(1);
    expect(getContact(db, locationId, id)!.fields.phone).toBe('+442079460958');
    expect(linkOf(id).base.phone).toBe('+442079460958');
  });

  it('a field both sides changed follows the more recent change of that field, not of the contact', async () => {
    setDirections({ updateDirection: 'bidirectional' });
    const { id, highlevelId } = await linkedContact({ firstName: 'Ana', email: 'ana@example.com', source: 'web' });
    // Tandem renames her, then HighLevel does, then Tandem edits another field (the push held meanwhile).
    localUpdate(id, { firstName: 'Tandem older' });
    clock.advance(2000);
    await api.updateContact(highlevelId, { firstName: 'HighLevel newer' });
    clock.advance(2000);
    localUpdate(id, { source: 'dialer' });

    expect((await pushPending(deps(), locationId)).sent).toBe(1);
    // HighLevel's rename was the later one; Tandem's later edit was of another field, and went out.
    expect(remoteDoc(highlevelId)).toMatchObject({ firstName: 'HighLevel newer', source: 'dialer' });
    expect(getContact(db, locationId, id)!.fields).toMatchObject({ firstName: 'HighLevel newer', source: 'dialer' });
    expect(linkOf(id).base).toEqual(getContact(db, locationId, id)!.fields);

    // And the other way round: Tandem's rename the later one wins over HighLevel's earlier one.
    await api.updateContact(highlevelId, { firstName: 'HighLevel earlier' });
    clock.advance(2000);
    localUpdate(id, { firstName: 'Tandem later' });
    expect((await pushPending(deps(), locationId)).sent).toBe(1);
    expect(remoteDoc(highlevelId).firstName).toBe('Tandem later');
    expect(getContact(db, locationId, id)!.fields.firstName).toBe('Tandem later');
  });

  it('an email corrected in case only goes out, and one corrected in HighLevel comes in (matching ignores case, values keep it)', async () => {
    setDirections({ updateDirection: 'bidirectional' });
    const { id, highlevelId } = await linkedContact({ firstName: 'Ana', email: 'ANA.LIMA@example.com' });
    localUpdate(id, { email: 'Ana.Lima@example.com' });
    expect((await pushPending(deps(), locationId)).sent).toBe(1);
    expect(remoteDoc(highlevelId).email).toBe('Ana.Lima@example.com');
    expect(linkOf(id).base.email).toBe('Ana.Lima@example.com');

    clock.advance(1000);
    await api.updateContact(highlevelId, { email: 'ana.lima@example.com' });
    applyRemote({ db, now: clock.now(), settings: { creationDirection: 'bidirectional', updateDirection: 'bidirectional' } }, locationId, fromHighLevel(remoteDoc(highlevelId), ownerMapFor(db, locationId)), { complete: true });
    expect(getContact(db, locationId, id)!.fields.email).toBe('ana.lima@example.com');
    expect(linkOf(id).base.email).toBe('ana.lima@example.com');
    expect(outboxCounts(db, locationId)).toEqual({ pending: 0, failed: 0 });
  });

  it('takes the value HighLevel stored when a field it was sent did not stick, and reports the field', async () => {
    setDirections({ updateDirection: 'bidirectional' });
    const { id, highlevelId } = await linkedContact({ firstName: 'Ana', email: 'ana@example.com', website: 'ana.example' });
    localUpdate(id, { website: 'https://ana.example/new' });
    // HighLevel answers the PUT with the website it kept, as a silently dropped field looks.
    const kept = remoteDoc(highlevelId);
    await control(emulator.url, 'POST', '/faults', { method: 'PUT', path: `/contacts/${highlevelId}`, status: 200, body: { succeded: true, contact: kept } });

    const result = await pushPending(deps(), locationId);
    expect(result.notStuck).toEqual([{ contactId: id, fields: ['website'] }]);
    expect(getContact(db, locationId, id)!.fields.website).toBe('ana.example');
    expect(linkOf(id).base).toEqual(getContact(db, locationId, id)!.fields);
    expect(outboxCounts(db, locationId)).toEqual({ pending: 0, failed: 0 });
    // Nothing is sent again: both sides hold HighLevel's value.
    await clearLog();
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 0 });
    expect(await requestLog()).toEqual([]);
  });

  it('with Inbound, holds only edits that still differ from HighLevel: an edit undone, overtaken by HighLevel or archived and restored holds nothing', async () => {
    const a = await linkedContact({ firstName: 'Ann', email: 'ann@example.com' });
    const b = await linkedContact({ firstName: 'Bo', email: 'bo@example.com' });
    const c = await linkedContact({ firstName: 'Cy', email: 'cy@example.com' });
    const d = await linkedContact({ firstName: 'Di', email: 'di@example.com' });
    localUpdate(a.id, { city: 'Porto' });
    localUpdate(a.id, { city: null });
    localUpdate(b.id, { city: 'Lisboa' });
    localUpdate(c.id, { firstName: 'Cyrus' });
    clock.advance(1000);
    await api.updateContact(c.highlevelId, { firstName: 'Cyril' });
    const settings = { creationDirection: 'bidirectional', updateDirection: 'inbound' } as const;
    expect(applyRemote({ db, now: clock.now(), settings }, locationId, fromHighLevel(remoteDoc(c.highlevelId), ownerMapFor(db, locationId)), { complete: true })).toBe('updated');
    clock.advance(1000);
    archiveContact(db, { locationId, id: d.id, now: clock.now(), origin: 'local' });
    restoreContact(db, { locationId, id: d.id, now: clock.now(), origin: 'local' });

    expect([a, b, c, d].map((x) => getOutbox(db, locationId, x.id)?.contactId ?? null)).toEqual([null, b.id, null, null]);
    expect(syncStatus(db, locationId)).toMatchObject({ pendingOutbound: 1, pendingOutboundEdits: 1, pendingOutboundNew: 0 });
    // Turning Bi-directional on sends exactly the one that was held.
    setDirections({ updateDirection: 'bidirectional' });
    await clearLog();
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 1 });
    expect((await requestLog()).filter((r) => r.method === 'PUT').map((r) => r.path)).toEqual([`/contacts/${b.highlevelId}`]);
  });

  it('with Inbound sends nothing and keeps the change pending; turning Bi-directional on sends it', async () => {
    const { id, highlevelId } = await linkedContact({ firstName: 'Ana', email: 'ana@example.com', city: 'Porto' });
    localUpdate(id, { city: 'Lisboa' });

    const held = await pushPending(deps(), locationId);
    expect(held).toMatchObject({ sent: 0, parked: 1, failed: 0 });
    expect(await requestLog()).toEqual([]);
    expect(remoteDoc(highlevelId).city).toBe('Porto');
    expect(outboxCounts(db, locationId)).toEqual({ pending: 1, failed: 0 });
    expect(getOutbox(db, locationId, id)?.lastError).toBe(PARKED_FOR_UPDATES);
    // Parked, not due: later passes send nothing either.
    clock.advance(60 * 60_000);
    expect((await pushPending(deps(), locationId)).parked).toBe(0);
    expect(await requestLog()).toEqual([]);

    setDirections({ updateDirection: 'bidirectional' });
    const sent = await pushPending(deps(), locationId);
    expect(sent.sent).toBe(1);
    expect(remoteDoc(highlevelId).city).toBe('Lisboa');
    expect(outboxCounts(db, locationId)).toEqual({ pending: 0, failed: 0 });
  });

  it('a Tandem edit made while the push is in flight is not overwritten, and goes out next', async () => {
    setDirections({ updateDirection: 'bidirectional' });
    const { id, highlevelId } = await linkedContact({ firstName: 'Ana', email: 'ana@example.com', city: 'Porto' });
    clock.advance(1000);
    await api.updateContact(highlevelId, { firstName: 'Anna' });
    localUpdate(id, { city: 'Lisboa' });
    await clearLog();
    await control(emulator.url, 'POST', '/faults', { method: 'PUT', path: '/contacts/', delayMs: 300, times: 1 });

    const pushing = pushPending(deps(), locationId);
    // The contact was read and HighLevel's version fetched; the PUT is on its way.
    await until(async () => (await requestLog()).some((r) => r.method === 'GET'), 'the GET of the push');
    localUpdate(id, { firstName: 'Zed' });
    // The edit re-queued the contact, so the same pass sends it after the first push settled. Had
    // settling written HighLevel's rename over it, there would be nothing left to send.
    expect((await pushing).sent).toBe(2);
    expect(getContact(db, locationId, id)!.fields).toMatchObject({ firstName: 'Zed', city: 'Lisboa' });
    expect(remoteDoc(highlevelId)).toMatchObject({ firstName: 'Zed', city: 'Lisboa' });
    expect(linkOf(id).base).toEqual(getContact(db, locationId, id)!.fields);
    expect(outboxCounts(db, locationId)).toEqual({ pending: 0, failed: 0 });
  });

  it('stops at its row limit and says there is more', async () => {
    localCreate({ firstName: 'A', email: 'a@example.com' });
    localCreate({ firstName: 'B', email: 'b@example.com' });
    const first = await pushPending(deps({ limit: 1 }), locationId);
    expect(first).toMatchObject({ sent: 1, more: true });
    expect(await pushPending(deps({ limit: 1 }), locationId)).toMatchObject({ sent: 1, more: true });
    expect(await pushPending(deps({ limit: 1 }), locationId)).toMatchObject({ sent: 0, more: false });
    expect(remoteIds()).toHaveLength(2);
  });

  it('T11: the webhook echoing our own write is recognised by the ledger; without the ledger update it would not be', async () => {
    setDirections({ updateDirection: 'bidirectional' });
    const { id, highlevelId } = await linkedContact({ firstName: 'Ana', email: 'ana@example.com', city: 'Porto' });
    const staleBase = linkOf(id).base;
    await emulator.emu.webhooks.idle();
    received.length = 0;

    localUpdate(id, { city: 'Lisboa', lastName: 'Lima' });
    await pushPending(deps(), locationId);
    const body = await until(() => received.find((b) => JSON.parse(b).type === 'ContactUpdate' && JSON.parse(b).id === highlevelId), 'the ContactUpdate webhook');
    const event = highLevelContactEventSchema.parse(JSON.parse(body));
    const remote = fromHighLevel(event, ownerMapFor(db, locationId));
    expect(remote.fields).toMatchObject({ city: 'Lisboa', lastName: 'Lima' });

    const settings = { creationDirection: 'bidirectional', updateDirection: 'bidirectional' } as const;
    expect(isEcho(remote.fields, linkOf(id).base)).toBe(true);
    expect(applyRemote({ db, now: clock.now(), settings }, locationId, remote, { complete: false })).toBe('echo');

    // Had the push not advanced the ledger, the same webhook would be a change from HighLevel to
    // merge and act upon: the start of the loop.
    expect(isEcho(remote.fields, staleBase)).toBe(false);
    upsertLink(db, { ...linkOf(id), base: staleBase, now: clock.now() });
    expect(applyRemote({ db, now: clock.now(), settings }, locationId, remote, { complete: false })).not.toBe('echo');
  });

  it('T13: a tag added in HighLevel and another added in Tandem both survive (tag endpoints, never PUT)', async () => {
    setDirections({ updateDirection: 'bidirectional' });
    const { id, highlevelId } = await linkedContact({ firstName: 'Ana', email: 'ana@example.com', tags: ['a'] });
    clock.advance(1000);
    await api.addTags(highlevelId, ['x']);
    await clearLog();
    localUpdate(id, {}, { add: ['y'], remove: [] });

    expect((await pushPending(deps(), locationId)).sent).toBe(1);
    const log = (await requestLog()).map((r) => `${r.method} ${r.path}`);
    expect(log).toEqual([`GET /contacts/${highlevelId}`, `POST /contacts/${highlevelId}/tags`]);
    expect([...(remoteDoc(highlevelId).tags as string[])].sort()).toEqual(['a', 'x', 'y']);
    expect([...getContact(db, locationId, id)!.fields.tags].sort()).toEqual(['a', 'x', 'y']);
    expect(linkOf(id).base.tags).toEqual(['a', 'x', 'y']);
  });

  it('removes a tag Tandem removed through the remove endpoint', async () => {
    setDirections({ updateDirection: 'bidirectional' });
    const { id, highlevelId } = await linkedContact({ firstName: 'Ana', email: 'ana@example.com', tags: ['a', 'b'] });
    localUpdate(id, {}, { add: [], remove: ['a'] });
    await pushPending(deps(), locationId);
    expect((await requestLog()).map((r) => `${r.method} ${r.path}`)).toEqual([`GET /contacts/${highlevelId}`, `DELETE /contacts/${highlevelId}/tags`]);
    expect(remoteDoc(highlevelId).tags).toEqual(['b']);
  });

  it('a contact deleted in HighLevel is archived in Tandem instead of being pushed', async () => {
    setDirections({ updateDirection: 'bidirectional' });
    const { id, highlevelId } = await linkedContact({ firstName: 'Ana', email: 'ana@example.com' });
    await api.deleteContact(highlevelId);
    localUpdate(id, { city: 'Lisboa' });
    const result = await pushPending(deps(), locationId);
    expect(result).toMatchObject({ sent: 0, failed: 0 });
    expect(getContact(db, locationId, id)!.archivedAt).not.toBeNull();
    expect(linkOf(id).remoteDeletedAt).not.toBeNull();
    expect(remoteIds()).toEqual([]);
  });
});

describe('archives', () => {
  it('deletes in HighLevel only when creation and updates are both Bi-directional', async () => {
    const kept = localCreate({ firstName: 'Kept', email: 'kept@example.com' });
    const gone = localCreate({ firstName: 'Gone', email: 'gone@example.com' });
    await pushPending(deps(), locationId);
    const keptId = linkOf(kept.id).highlevelId;
    const goneId = linkOf(gone.id).highlevelId;

    // Defaults (updates Inbound): archived in Tandem only.
    clock.advance(1000);
    archiveContact(db, { locationId, id: kept.id, now: clock.now(), origin: 'local' });
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 0, parked: 0 });
    expect(remoteDoc(keptId).firstName).toBe('Kept');
    expect(outboxCounts(db, locationId)).toEqual({ pending: 0, failed: 0 });

    setDirections({ updateDirection: 'bidirectional' });
    clock.advance(1000);
    archiveContact(db, { locationId, id: gone.id, now: clock.now(), origin: 'local' });
    expect((await pushPending(deps(), locationId)).sent).toBe(1);
    expect(emulator.emu.contact(goneId)).toBeFalsy();
    expect(linkOf(gone.id).remoteDeletedAt).not.toBeNull();
    // A switch afterwards does not replay the older archive.
    expect(emulator.emu.contact(keptId)).toMatchObject({ id: keptId });
  });

  it('a contact made again in Tandem after its archive takes over the HighLevel contact the archive left there', async () => {
    const old = localCreate({ firstName: 'Arch', email: 'arch@example.com' });
    await pushPending(deps(), locationId);
    const hlId = linkOf(old.id).highlevelId;
    // Defaults (updates Inbound): archived in Tandem only; HighLevel keeps its contact.
    clock.advance(1000);
    archiveContact(db, { locationId, id: old.id, now: clock.now(), origin: 'local' });
    await pushPending(deps(), locationId);

    const again = localCreate({ firstName: 'Arch', lastName: 'Again', email: 'ARCH@example.com' });
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 1, failed: 0 });
    expect(remoteIds()).toEqual([hlId]);
    expect(linkOf(again.id).highlevelId).toBe(hlId);
    expect(getLinkByContact(db, locationId, old.id)).toBeUndefined();
    // HighLevel's empty last name was filled; its later edits reach the live contact.
    expect(remoteDoc(hlId).lastName).toBe('Again');
    clock.advance(1000);
    await api.updateContact(hlId, { firstName: 'Archie' });
    const settings = { creationDirection: 'bidirectional', updateDirection: 'inbound' } as const;
    expect(applyRemote({ db, now: clock.now(), settings }, locationId, fromHighLevel(remoteDoc(hlId), ownerMapFor(db, locationId)), { complete: true })).toBe('updated');
    expect(getContact(db, locationId, again.id)!.fields.firstName).toBe('Archie');
    expect(getContact(db, locationId, old.id)!.fields.firstName).toBe('Arch');
    expect(outboxCounts(db, locationId)).toEqual({ pending: 0, failed: 0 });
  });

  it('with creation Inbound, the HighLevel contact an archive left goes to a live contact with its email at its next change', async () => {
    const old = localCreate({ firstName: 'Arch', email: 'arch@example.com' });
    await pushPending(deps(), locationId);
    const hlId = linkOf(old.id).highlevelId;
    setDirections({ creationDirection: 'inbound' });
    clock.advance(1000);
    archiveContact(db, { locationId, id: old.id, now: clock.now(), origin: 'local' });
    const again = localCreate({ firstName: 'Arch', email: 'arch@example.com', city: 'Porto' });
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 0, parked: 1 });

    clock.advance(1000);
    await api.updateContact(hlId, { firstName: 'Archie' });
    const settings = { creationDirection: 'inbound', updateDirection: 'inbound' } as const;
    expect(applyRemote({ db, now: clock.now(), settings }, locationId, fromHighLevel(remoteDoc(hlId), ownerMapFor(db, locationId)), { complete: true })).toBe('linked');
    expect(linkOf(again.id).highlevelId).toBe(hlId);
    expect(getLinkByContact(db, locationId, old.id)).toBeUndefined();
    expect(getContact(db, locationId, again.id)!.fields).toMatchObject({ firstName: 'Archie', city: 'Porto' });
    expect(getContact(db, locationId, old.id)!.fields.firstName).toBe('Arch');
  });
});

describe('restores', () => {
  it('a contact restored in Tandem after its HighLevel contact was deleted is created there again as creation allows', async () => {
    setDirections({ updateDirection: 'bidirectional' });
    const c = localCreate({ firstName: 'Rita', email: 'rita@example.com', city: 'Faro' });
    await pushPending(deps(), locationId);
    const first = linkOf(c.id).highlevelId;
    // Archived in Tandem by mistake: with both settings Bi-directional, deleted in HighLevel too.
    clock.advance(1000);
    archiveContact(db, { locationId, id: c.id, now: clock.now(), origin: 'local' });
    expect((await pushPending(deps(), locationId)).sent).toBe(1);
    expect(emulator.emu.contact(first)).toBeFalsy();

    // Restored while creation is Inbound: held for creation, not lost.
    setDirections({ creationDirection: 'inbound' });
    clock.advance(1000);
    restoreContact(db, { locationId, id: c.id, now: clock.now(), origin: 'local' });
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 0, parked: 1 });
    expect(getOutbox(db, locationId, c.id)).toMatchObject({ status: 'pending', lastError: PARKED_FOR_CREATION });
    expect(remoteIds()).toEqual([]);

    // Creation Bi-directional: a new HighLevel contact, linked, and later edits follow it.
    setDirections({ creationDirection: 'bidirectional' });
    expect((await pushPending(deps(), locationId)).sent).toBe(1);
    const again = linkOf(c.id);
    expect(again.highlevelId).not.toBe(first);
    expect(again.remoteDeletedAt).toBeNull();
    expect(remoteDoc(again.highlevelId)).toMatchObject({ firstName: 'Rita', email: 'rita@example.com', city: 'Faro' });
    localUpdate(c.id, { city: 'Lagos' });
    expect((await pushPending(deps(), locationId)).sent).toBe(1);
    expect(remoteDoc(again.highlevelId).city).toBe('Lagos');
    expect(outboxCounts(db, locationId)).toEqual({ pending: 0, failed: 0 });
  });

  it('a HighLevel contact with a restored contact\'s email is linked to it, not copied into a second Tandem contact', async () => {
    const { id } = localCreate({ firstName: 'Ines', email: 'ines@example.com' });
    expect((await pushPending(deps(), locationId)).sent).toBe(1);
    const highlevelId = linkOf(id).highlevelId;
    setDirections({ creationDirection: 'inbound' });
    await api.deleteContact(highlevelId);
    clock.advance(1000);
    applyRemote({ db, now: clock.now(), settings: { creationDirection: 'inbound', updateDirection: 'inbound' } }, locationId, { deleted: highlevelId }, { complete: true });
    expect(getContact(db, locationId, id)!.archivedAt).not.toBeNull();
    clock.advance(1000);
    restoreContact(db, { locationId, id, now: clock.now(), origin: 'local' });
    // Someone adds her again in HighLevel.
    const newId = await remoteCreate({ firstName: 'Ines', lastName: 'Sousa', email: 'ines@example.com' });
    const remote = fromHighLevel(remoteDoc(newId) as never, () => null, { complete: true });
    clock.advance(1000);
    expect(applyRemote({ db, now: clock.now(), settings: { creationDirection: 'inbound', updateDirection: 'inbound' } }, locationId, remote, { complete: true })).toBe('linked');
    expect(linkOf(id)).toMatchObject({ highlevelId: newId, remoteDeletedAt: null });
    expect(getContact(db, locationId, id)!.fields.lastName).toBe('Sousa');
  });
});

describe('linked by the inbound side (a HighLevel contact with the same email or phone came in first)', () => {
  const inbound = (settings: { creationDirection: 'bidirectional' | 'inbound'; updateDirection: 'bidirectional' | 'inbound' }, highlevelId: string) => {
    clock.advance(1000);
    const remote = fromHighLevel(remoteDoc(highlevelId) as never, () => null, { complete: true });
    return applyRemote({ db, now: clock.now(), settings }, locationId, remote, { complete: true });
  };

  it('with creation Bi-directional and updates Inbound (the defaults), HighLevel\'s empty fields are filled, as when the push finds the match', async () => {
    const c = localCreate({ firstName: 'Tara', lastName: 'Quinn', email: 'tara@example.com', phone: '+19715559981' });
    const highlevelId = await remoteCreate({ firstName: 'T', phone: '+19715559981' });
    expect(inbound({ creationDirection: 'bidirectional', updateDirection: 'inbound' }, highlevelId)).toBe('linked');
    expect(getOutbox(db, locationId, c.id)).toMatchObject({ kind: 'fill', status: 'pending' });

    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 1, parked: 0 });
    // Filled, never overwritten: HighLevel keeps its first name, Tandem takes it.
    expect(remoteDoc(highlevelId)).toMatchObject({ firstName: 'T', lastName: 'Quinn', email: 'tara@example.com' });
    expect(getContact(db, locationId, c.id)!.fields).toMatchObject({ firstName: 'T', lastName: 'Quinn' });
    expect(outboxCounts(db, locationId)).toEqual({ pending: 0, failed: 0 });
    expect(remoteIds()).toEqual([highlevelId]);

    // A later Tandem edit is an update: held while updates are Inbound.
    localUpdate(c.id, { lastName: 'Quinn-Ross' });
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 0, parked: 1 });
    expect(remoteDoc(highlevelId).lastName).toBe('Quinn');
  });

  it('with creation Inbound, the contact\'s held create no longer waits: its values go out once updates are Bi-directional, or nothing waits', async () => {
    setDirections({ creationDirection: 'inbound', updateDirection: 'bidirectional' });
    const c = localCreate({ firstName: 'Ola', email: 'ola@example.com', companyName: 'Ola Co', tags: ['vip'] });
    expect(await pushPending(deps(), locationId)).toMatchObject({ parked: 1 });
    const highlevelId = await remoteCreate({ firstName: 'Ola', email: 'OLA@example.com', city: 'Boston', tags: ['lead'] });
    expect(inbound({ creationDirection: 'inbound', updateDirection: 'bidirectional' }, highlevelId)).toBe('linked');
    expect(getContact(db, locationId, c.id)!.fields.city).toBe('Boston');
    expect([...getContact(db, locationId, c.id)!.fields.tags].sort()).toEqual(['lead', 'vip']);
    expect(getOutbox(db, locationId, c.id)).toMatchObject({ kind: 'upsert', status: 'pending', lastError: null });

    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 1, parked: 0 });
    expect(remoteDoc(highlevelId)).toMatchObject({ companyName: 'Ola Co', city: 'Boston' });
    expect([...(remoteDoc(highlevelId).tags as string[])].sort()).toEqual(['lead', 'vip']);
    expect(outboxCounts(db, locationId)).toEqual({ pending: 0, failed: 0 });

    // Linked with nothing to send: the held create is dropped instead of waiting for good.
    const d = localCreate({ firstName: 'Pia', email: 'pia@example.com' });
    expect(await pushPending(deps(), locationId)).toMatchObject({ parked: 1 });
    const piaId = await remoteCreate({ firstName: 'Pia', email: 'pia@example.com', city: 'Oslo' });
    expect(inbound({ creationDirection: 'inbound', updateDirection: 'inbound' }, piaId)).toBe('linked');
    expect(getOutbox(db, locationId, d.id)).toBeUndefined();
    expect(outboxCounts(db, locationId)).toEqual({ pending: 0, failed: 0 });
  });

  it('with both Inbound, the fill waits, and goes out when creation turns Bi-directional again', async () => {
    setDirections({ creationDirection: 'inbound', updateDirection: 'inbound' });
    const c = localCreate({ firstName: 'Uma', email: 'uma@example.com', city: 'Porto' });
    const highlevelId = await remoteCreate({ firstName: 'Uma', email: 'uma@example.com' });
    // Linked while creation was still Bi-directional (the webhook came before the switch was seen).
    expect(inbound({ creationDirection: 'bidirectional', updateDirection: 'inbound' }, highlevelId)).toBe('linked');
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 0, parked: 1 });
    expect(getOutbox(db, locationId, c.id)).toMatchObject({ kind: 'fill', lastError: PARKED_FOR_FILL });
    expect(remoteDoc(highlevelId).city ?? null).toBeNull();
    setDirections({ creationDirection: 'bidirectional' });
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 1 });
    expect(remoteDoc(highlevelId).city).toBe('Porto');
  });
});

describe('a fill made by the inbound side and sent after Tandem edited the contact (updates Inbound)', () => {
  // The defaults: Contact creation Bi-directional, Contact update Inbound.
  const defaults = { creationDirection: 'bidirectional', updateDirection: 'inbound' } as const;
  const inbound = (highlevelId: string) => {
    clock.advance(1000);
    const remote = fromHighLevel(remoteDoc(highlevelId) as never, () => null, { complete: true });
    return applyRemote({ db, now: clock.now(), settings: defaults }, locationId, remote, { complete: true });
  };
  /**
   * Contacts queued before the one to link: their rows are due first, so a pass that stops at its
   * limit (or at the gate) pushes them and leaves the fill waiting behind them.
   */
  async function backlog(n: number) {
    for (let i = 0; i < n; i++) localCreate({ firstName: `Queued ${i}`, email: `queued${i}@example.com` });
  }

  it("QA: an edit that lands before the fill is sent does not hold it back: HighLevel's empty fields are filled, the edited one too", async () => {
    await backlog(3);
    const c = localCreate({ firstName: 'Tara', email: 'Tara.Quinn@Example.com', city: 'Bend', companyName: 'Tandem Co' });
    const highlevelId = await remoteCreate({ firstName: 'Tara', email: 'tara.quinn@example.com' });
    expect(inbound(highlevelId)).toBe('linked');
    expect(getOutbox(db, locationId, c.id)).toMatchObject({ kind: 'fill', status: 'pending' });
    // The backlog goes out first; the pass stops at its limit before the fill.
    expect(await pushPending(deps({ limit: 3 }), locationId)).toMatchObject({ sent: 3, more: true });
    expect(remoteDoc(highlevelId).city ?? null).toBeNull();

    localUpdate(c.id, { lastName: 'Edited' });
    // Still the fill: "the latest kind wins" does not turn it into an update held by the setting.
    expect(getOutbox(db, locationId, c.id)).toMatchObject({ kind: 'fill', status: 'pending' });

    await clearLog();
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 1, parked: 0, failed: 0 });
    expect(remoteDoc(highlevelId)).toMatchObject({ firstName: 'Tara', lastName: 'Edited', email: 'tara.quinn@example.com', city: 'Bend', companyName: 'Tandem Co' });
    const local = getContact(db, locationId, c.id)!;
    expect(local.fields).toMatchObject({ firstName: 'Tara', lastName: 'Edited', email: 'tara.quinn@example.com', city: 'Bend', companyName: 'Tandem Co' });
    expect(pendingLocal(linkOf(c.id).base, local.fields)).toEqual([]);
    expect(outboxCounts(db, locationId)).toEqual({ pending: 0, failed: 0 });
    expect(syncStatus(db, locationId)).toMatchObject({ pendingOutbound: 0, pendingOutboundEdits: 0 });
    expect((await requestLog()).map((r) => `${r.method} ${r.path}`)).toEqual([`GET /contacts/${highlevelId}`, `PUT /contacts/${highlevelId}`]);
  });

  it('a Tandem edit after the link of a field HighLevel holds is neither sent nor overwritten: held as an edit, sent once updates are Bi-directional', async () => {
    await backlog(2);
    const c = localCreate({ firstName: 'Tara', email: 'tara@example.com', city: 'Bend', tags: ['tandem'] });
    const highlevelId = await remoteCreate({ firstName: 'T', email: 'tara@example.com', tags: ['lead'] });
    expect(inbound(highlevelId)).toBe('linked');
    // Linking gave Tandem HighLevel's first name.
    expect(getContact(db, locationId, c.id)!.fields.firstName).toBe('T');
    expect(await pushPending(deps({ limit: 2 }), locationId)).toMatchObject({ sent: 2, more: true });

    localUpdate(c.id, { firstName: 'Tandra' });
    expect(getOutbox(db, locationId, c.id)).toMatchObject({ kind: 'fill', status: 'pending' });
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 1, parked: 1, failed: 0 });
    // The fill went (city, tags); the first name HighLevel holds was neither sent nor taken back.
    expect(remoteDoc(highlevelId)).toMatchObject({ firstName: 'T', city: 'Bend' });
    expect([...(remoteDoc(highlevelId).tags as string[])].sort()).toEqual(['lead', 'tandem']);
    const local = getContact(db, locationId, c.id)!;
    expect(local.fields).toMatchObject({ firstName: 'Tandra', city: 'Bend' });
    expect([...local.fields.tags].sort()).toEqual(['lead', 'tandem']);
    expect(pendingLocal(linkOf(c.id).base, local.fields)).toEqual(['firstName']);
    // Held as any edit is while updates are Inbound, and counted so.
    expect(getOutbox(db, locationId, c.id)).toMatchObject({ kind: 'upsert', status: 'pending', lastError: PARKED_FOR_UPDATES });
    expect(syncStatus(db, locationId)).toMatchObject({ pendingOutbound: 1, pendingOutboundEdits: 1, pendingOutboundNew: 0 });
    // Parked: later passes send nothing, and a later edit is held the same way.
    clock.advance(60 * 60_000);
    await clearLog();
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 0, parked: 0 });
    localUpdate(c.id, { website: 'https://tandra.example.com' });
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 0, parked: 1 });
    expect(await requestLog()).toEqual([]);
    expect(getOutbox(db, locationId, c.id)).toMatchObject({ kind: 'upsert', lastError: PARKED_FOR_UPDATES });

    setDirections({ updateDirection: 'bidirectional' });
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 1, parked: 0 });
    expect(remoteDoc(highlevelId)).toMatchObject({ firstName: 'Tandra', city: 'Bend', website: 'https://tandra.example.com' });
    expect(pendingLocal(linkOf(c.id).base, getContact(db, locationId, c.id)!.fields)).toEqual([]);
    expect(outboxCounts(db, locationId)).toEqual({ pending: 0, failed: 0 });
  });

  it('a field HighLevel changed after the link, and Tandem did not, comes into Tandem with the fill', async () => {
    const c = localCreate({ firstName: 'Tara', email: 'tara@example.com', city: 'Bend' });
    const highlevelId = await remoteCreate({ firstName: 'T', email: 'tara@example.com' });
    expect(inbound(highlevelId)).toBe('linked');
    // HighLevel's edit, not applied in Tandem yet (its webhook is still on its way).
    clock.advance(1000);
    await api.updateContact(highlevelId, { firstName: 'Tee' });

    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 1, parked: 0 });
    expect(remoteDoc(highlevelId)).toMatchObject({ firstName: 'Tee', city: 'Bend' });
    const local = getContact(db, locationId, c.id)!;
    expect(local.fields).toMatchObject({ firstName: 'Tee', city: 'Bend' });
    expect(linkOf(c.id).base).toEqual({ ...local.fields, tags: [...local.fields.tags].sort() });
    expect(outboxCounts(db, locationId)).toEqual({ pending: 0, failed: 0 });
  });

  it('a fill parked while both settings are Inbound stays a fill through a Tandem edit; an archive replaces it', async () => {
    setDirections({ creationDirection: 'inbound', updateDirection: 'inbound' });
    const c = localCreate({ firstName: 'Uma', email: 'uma@example.com', city: 'Porto' });
    const highlevelId = await remoteCreate({ firstName: 'Uma', email: 'uma@example.com' });
    expect(inbound(highlevelId)).toBe('linked');
    expect(await pushPending(deps(), locationId)).toMatchObject({ parked: 1 });
    localUpdate(c.id, { lastName: 'Edited' });
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 0, parked: 1 });
    expect(getOutbox(db, locationId, c.id)).toMatchObject({ kind: 'fill', lastError: PARKED_FOR_FILL });
    // Creation Bi-directional again releases it, edit included.
    setDirections({ creationDirection: 'bidirectional' });
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 1, parked: 0 });
    expect(remoteDoc(highlevelId)).toMatchObject({ city: 'Porto', lastName: 'Edited' });

    const d = localCreate({ firstName: 'Vic', email: 'vic@example.com', city: 'Faro' });
    const vicId = await remoteCreate({ firstName: 'Vic', email: 'vic@example.com' });
    expect(inbound(vicId)).toBe('linked');
    expect(getOutbox(db, locationId, d.id)?.kind).toBe('fill');
    clock.advance(1000);
    archiveContact(db, { locationId, id: d.id, now: clock.now(), origin: 'local' });
    expect(getOutbox(db, locationId, d.id)?.kind).toBe('archive');
  });
});

describe('owners', () => {
  it('sends the paired HighLevel user as assignedTo, and reports an owner with no pairing', async () => {
    const companyId = emulator.emu.world.locations[locationId]!.companyId;
    const hlUser = await control<{ id: string }>(emulator.url, 'POST', '/users', {
      companyId, firstName: 'Olga', lastName: 'Owner', email: 'olga@clinic.example', type: 'account', role: 'user', locationIds: [locationId],
    });
    const olga = createUser(db, { locationId, name: 'Olga Owner', email: 'OLGA@clinic.example', now: clock.now() });
    const nobody = createUser(db, { locationId, name: 'Nobody', email: 'nobody@clinic.example', now: clock.now() });
    upsertHighLevelUsers(db, locationId, await api.listUsers(), clock.now(), { complete: true });

    const owned = localCreate({ firstName: 'Owned', email: 'owned@example.com', ownerUserId: olga.id });
    const orphan = localCreate({ firstName: 'Orphan', email: 'orphan@example.com', ownerUserId: nobody.id });
    const result = await pushPending(deps(), locationId);
    expect(result.sent).toBe(2);
    expect(result.unmatchedOwners).toEqual([nobody.id]);
    expect(remoteDoc(linkOf(owned.id).highlevelId).assignedTo).toBe(hlUser.id);
    expect(remoteDoc(linkOf(orphan.id).highlevelId).assignedTo).toBeUndefined();
    // The orphan keeps its owner in Tandem; the owner stays pending against the ledger.
    expect(getContact(db, locationId, orphan.id)!.fields.ownerUserId).toBe(nobody.id);
    expect(linkOf(orphan.id).base.ownerUserId).toBeNull();
    expect(linkOf(owned.id).base.ownerUserId).toBe(olga.id);
  });
});

describe('failures (T14-lite)', () => {
  const CREATE = '^/contacts/?$';

  it('a create that HighLevel performed but whose answer was lost is found by lookup, not created twice', async () => {
    const c = localCreate({ firstName: 'Ana', email: 'ana@example.com' });
    await control(emulator.url, 'POST', '/faults', { method: 'POST', path: CREATE, dropAfterHandling: true, times: 1 });
    const result = await pushPending(deps(), locationId);
    expect(result).toMatchObject({ sent: 1, failed: 0, retried: 0 });
    const ids = remoteIds();
    expect(ids).toHaveLength(1);
    expect(linkOf(c.id).highlevelId).toBe(ids[0]);
    const log = (await requestLog()).map((r) => `${r.method} ${r.path} ${r.status}`);
    expect(log.filter((l) => l.startsWith('POST /contacts/'))).toEqual(['POST /contacts/ 0']);
  });

  it('a contact with no email or phone whose create answer was lost is found by its name among the contacts added since', async () => {
    // A namesake added in HighLevel long before is not it.
    const older = await remoteCreate({ firstName: 'Drop', lastName: 'Name' });
    clock.advance(60 * 60_000);
    const c = localCreate({ firstName: 'Drop', lastName: 'Name' });
    await control(emulator.url, 'POST', '/faults', { method: 'POST', path: CREATE, dropAfterHandling: true, times: 1 });
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 1, failed: 0, retried: 0 });
    const ids = remoteIds();
    expect(ids).toHaveLength(2);
    expect(linkOf(c.id).highlevelId).toBe(ids.find((id) => id !== older));
    expect(outboxCounts(db, locationId)).toEqual({ pending: 0, failed: 0 });
  });

  it('when its webhook comes before the retry (search lagging), that copy is linked to the contact, not made a second one, and nothing is created again', async () => {
    const c = localCreate({ firstName: 'Drop', lastName: 'Later', companyName: 'Acme' });
    emulator.emu.config.searchLagMs = 60_000;
    await control(emulator.url, 'POST', '/faults', { method: 'POST', path: CREATE, dropAfterHandling: true, times: 1 });
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 0, retried: 1 });
    const [copy] = remoteIds();
    expect(copy).toBeDefined();
    // The copy's ContactCreate webhook, applied as the loop applies it.
    clock.advance(1000);
    const remote = fromHighLevel(remoteDoc(copy!) as never, () => null, { complete: true });
    expect(applyRemote({ db, now: clock.now(), settings: { creationDirection: 'bidirectional', updateDirection: 'inbound' } }, locationId, remote, { complete: true })).toBe('linked');
    expect(linkOf(c.id).highlevelId).toBe(copy);
    // Nothing is left to retry: no second HighLevel contact.
    expect(getOutbox(db, locationId, c.id)).toBeUndefined();
    clock.advance(120_000);
    await pushPending(deps(), locationId);
    expect(remoteIds()).toEqual([copy]);
  });

  it('a namesake with no email or phone is linked only to a contact whose create is in doubt, and only when it is the one', async () => {
    // Not in doubt (never tried): a HighLevel namesake is a contact of its own.
    setDirections({ creationDirection: 'inbound' });
    const quiet = localCreate({ firstName: 'Sam' });
    const namesake = await remoteCreate({ firstName: 'Sam' });
    clock.advance(1000);
    const settings = { creationDirection: 'inbound' as const, updateDirection: 'inbound' as const };
    const read = (id: string) => fromHighLevel(remoteDoc(id) as never, () => null, { complete: true });
    expect(applyRemote({ db, now: clock.now(), settings }, locationId, read(namesake), { complete: true })).toBe('created');
    expect(getLinkByContact(db, locationId, quiet.id)).toBeUndefined();
  });

  it('a 422 "yet created" is looked up before any retry, and linked', async () => {
    const c = localCreate({ firstName: 'Ana', email: 'ana@example.com' });
    // Seen from Tandem: the lookup finds nothing, the create answers 422, yet HighLevel holds the contact.
    const hlId = await remoteCreate({ firstName: 'Ana', email: 'ana@example.com' });
    await clearLog();
    await control(emulator.url, 'POST', '/faults', { method: 'GET', path: '/contacts/search/duplicate', status: 200, body: { contact: null }, times: 1 });
    await control(emulator.url, 'POST', '/faults', {
      method: 'POST', path: CREATE, status: 422, times: 1,
      body: { statusCode: 422, message: ['phone must be a valid phone number'], error: 'Unprocessable Entity' },
    });
    const result = await pushPending(deps(), locationId);
    expect(result).toMatchObject({ sent: 1, failed: 0, retried: 0 });
    expect(linkOf(c.id).highlevelId).toBe(hlId);
    expect(remoteIds()).toEqual([hlId]);
    expect(getOutbox(db, locationId, c.id)).toBeUndefined();
    const log = (await requestLog()).map((r) => `${r.method} ${r.path} ${r.status}`);
    expect(log.slice(0, 3)).toEqual(['GET /contacts/search/duplicate 200', 'POST /contacts/ 422', 'GET /contacts/search/duplicate 200']);
  });

  it('a create refused as a duplicate of a contact HighLevel then does not have is tried again after a wait', async () => {
    // The contact HighLevel named went between its answer and Tandem's read: nothing holds the email now.
    const c = localCreate({ firstName: 'Ana', email: 'ana@example.com' });
    await control(emulator.url, 'POST', '/faults', {
      method: 'POST', path: CREATE, status: 400, times: 1,
      body: { statusCode: 400, message: 'This location does not allow duplicated contacts.', meta: { contactId: 'Xq3gone0000000000000', contactName: 'Ana', matchingField: 'email' } },
    });
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 0, failed: 0, retried: 1 });
    const row = getOutbox(db, locationId, c.id)!;
    expect(row).toMatchObject({ status: 'pending', attempts: 1, lastError: 'another contact held this contact’s email a moment ago, and no longer does' });
    expect(row.nextAttemptAt).toBeGreaterThan(clock.now());
    clock.set(row.nextAttemptAt);
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 1 });
    expect(remoteDoc(linkOf(c.id).highlevelId)).toMatchObject({ firstName: 'Ana', email: 'ana@example.com' });
  });

  it('an edit HighLevel refuses as a duplicate is recorded naming the other contact as Tandem knows it', async () => {
    setDirections({ updateDirection: 'bidirectional' });
    localCreate({ firstName: 'Ada', lastName: 'Byron', phone: '+14155550170' });
    const b = localCreate({ firstName: 'Bea', email: 'bea@example.com' });
    expect((await pushPending(deps(), locationId)).sent).toBe(2);
    localUpdate(b.id, { phone: '+14155550170' });
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 0, failed: 1 });
    expect(getOutbox(db, locationId, b.id)).toMatchObject({
      status: 'failed',
      lastError: 'this contact’s phone is already on a HighLevel contact linked to Ada Byron in Tandem, and the location does not allow duplicates; change the phone of one of the two, or delete the other contact in HighLevel',
    });
  });

  it('records a permanent 422 with its reason', async () => {
    const c = localCreate({ firstName: 'Ana', email: 'ana@example.com' });
    await control(emulator.url, 'POST', '/faults', {
      method: 'POST', path: CREATE, status: 422, times: 1,
      body: { statusCode: 422, message: ['country must be a valid country code'], error: 'Unprocessable Entity' },
    });
    const result = await pushPending(deps(), locationId);
    expect(result).toMatchObject({ sent: 0, failed: 1, retried: 0 });
    const row = getOutbox(db, locationId, c.id)!;
    expect(row.status).toBe('failed');
    // HighLevel's reason, in the admin's words: no status code.
    expect(row.lastError).toBe('country must be a valid country code.');
    expect(outboxCounts(db, locationId)).toEqual({ pending: 0, failed: 1 });
    expect(remoteIds()).toEqual([]);
    // A new local change makes it pending again, and it goes through.
    localUpdate(c.id, { lastName: 'Lima' });
    expect((await pushPending(deps(), locationId)).sent).toBe(1);
  });

  it('retries a 5xx with backoff, after checking it was not created', async () => {
    const c = localCreate({ firstName: 'Ana', email: 'ana@example.com' });
    await control(emulator.url, 'POST', '/faults', { method: 'POST', path: CREATE, status: 503, body: { statusCode: 503, message: 'Service Unavailable' }, times: 1 });
    const result = await pushPending(deps(), locationId);
    expect(result).toMatchObject({ sent: 0, failed: 0, retried: 1 });
    const row = getOutbox(db, locationId, c.id)!;
    expect(row).toMatchObject({ status: 'pending', attempts: 1 });
    expect(row.nextAttemptAt).toBeGreaterThan(clock.now());
    // Not due yet: the next pass leaves it.
    expect((await pushPending(deps(), locationId)).sent).toBe(0);
    clock.set(row.nextAttemptAt);
    expect((await pushPending(deps(), locationId)).sent).toBe(1);
    expect(remoteIds()).toHaveLength(1);
  });

  it('retries an edit HighLevel refused with a 401 even after a fresh token, instead of giving it up', async () => {
    setDirections({ updateDirection: 'bidirectional' });
    const c = localCreate({ firstName: 'Ana', email: 'ana@example.com' });
    await pushPending(deps(), locationId);
    const highlevelId = linkOf(c.id).highlevelId;
    localUpdate(c.id, { city: 'Porto' });
    await control(emulator.url, 'POST', '/faults', { path: '/contacts/', status: 401, body: { statusCode: 401, message: 'Invalid JWT' }, times: 4 });
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 0, failed: 0, retried: 1 });
    const row = getOutbox(db, locationId, c.id)!;
    expect(row).toMatchObject({ status: 'pending', attempts: 1, lastError: expect.stringMatching(/did not accept Tandem’s access/) });
    await control(emulator.url, 'DELETE', '/faults');
    clock.set(row.nextAttemptAt);
    expect((await pushPending(deps(), locationId)).sent).toBe(1);
    expect(remoteDoc(highlevelId).city).toBe('Porto');
  });

  it('defers the pass on a 429 with retryAt, leaving the row pending', async () => {
    const c = localCreate({ firstName: 'Ana', email: 'ana@example.com' });
    localCreate({ firstName: 'Bo', email: 'bo@example.com' });
    await control(emulator.url, 'POST', '/faults', { method: 'GET', path: '/contacts/search/duplicate', status: 429, headers: { 'retry-after': '20' }, times: 1 });
    const result = await pushPending(deps(), locationId);
    expect(result).toMatchObject({ sent: 0, failed: 0, retried: 0, deferred: clock.now() + 20_000, deferredReason: 'rate_limited', more: false });
    expect(getOutbox(db, locationId, c.id)).toMatchObject({ status: 'pending', attempts: 0 });
    expect(outboxCounts(db, locationId)).toEqual({ pending: 2, failed: 0 });
    // The pass stopped at the first row: nothing more was asked.
    expect(await requestLog()).toHaveLength(1);

    clock.advance(20_000);
    expect((await pushPending(deps(), locationId)).sent).toBe(2);
    expect(remoteIds()).toHaveLength(2);
  });
});
