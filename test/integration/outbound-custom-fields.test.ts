// Tandem → HighLevel (server/sync/outbound.ts) with custom field values under ids the location's
// listed fields do not hold: left out of creates and updates, kept in Tandem, out of the ledger,
// and nothing sent or read again for them; while the fields have never been listed, all are sent.
// Over real HTTP against the emulator, which stores any id it is sent (so its contact shows what
// was sent), with each request body Tandem sent kept beside the emulator's request log.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Database, Db } from '../../db/client.ts';
import { createContact, getContact, updateContact } from '../../db/contacts.ts';
import { saveCustomFieldDefinitions } from '../../db/custom-fields.ts';
import { getLinkByContact } from '../../db/links.ts';
import { enqueueOutbox, outboxCounts } from '../../db/outbox.ts';
import { updateSyncSettings } from '../../db/sync-settings.ts';
import type { RunningEmulator } from '../../emulator/server.ts';
import { fromHighLevel, highLevelContactEventSchema } from '../../server/highlevel/contact-mapping.ts';
import { createLocationApi, type LocationApi } from '../../server/highlevel/contacts.ts';
import { RateBudget } from '../../server/highlevel/rate-budget.ts';
import { emptyContact, type ContactFields } from '../../server/sync/contact-model.ts';
import { applyRemote } from '../../server/sync/inbound.ts';
import { pendingLocal } from '../../server/sync/merge.ts';
import { pushPending, type OutboundDeps } from '../../server/sync/outbound.ts';
import { control, ManualClock, testEmulator } from '../helpers/emulator.ts';
import { addLocation, addOauthToken } from '../helpers/world.ts';
import { memoryDatabase } from '../helpers/database.ts';

const SCOPES = ['contacts.readonly', 'contacts.write', 'locations/customFields.readonly'];
/** An id HighLevel has no field for: a value written before Tandem checked writes, or of a field deleted since. */
const GONE = 'cfGone00000000000001';

let emulator: RunningEmulator;
let clock: ManualClock;
let database: Database;
let db: Db;
let locationId: string;
let api: LocationApi;
/** Bodies of the contact writes Tandem sent, in order. */
let sent: { method: string; path: string; body: Record<string, unknown> }[];
let score: string;
let topics: string;

function setUpdates(updateDirection: 'bidirectional' | 'inbound') {
  updateSyncSettings(db, { locationId, patch: { updateDirection }, user: { id: 'admin', name: 'Admin' }, now: clock.now() });
}

function deps(): OutboundDeps {
  return { db, clock, api, random: () => 0.5 };
}

function fields(draft: Partial<ContactFields>): ContactFields {
  return { ...emptyContact(), ...draft };
}

function localCreate(draft: Partial<ContactFields>) {
  clock.advance(1000);
  return createContact(db, { locationId, fields: fields(draft), now: clock.now(), origin: 'local' });
}

function localUpdate(id: string, patch: Parameters<typeof updateContact>[1]['patch']) {
  clock.advance(1000);
  return updateContact(db, { locationId, id, patch, now: clock.now(), origin: 'local' });
}

function linkOf(contactId: string) {
  const link = getLinkByContact(db, locationId, contactId);
  if (!link) throw new Error(`contact ${contactId} is not linked`);
  return link;
}

/** The custom fields HighLevel holds for the contact, by id. */
function remoteCustom(highlevelId: string): Record<string, unknown> {
  const doc = emulator.emu.contact(highlevelId);
  if (!doc) throw new Error(`no HighLevel contact ${highlevelId}`);
  return Object.fromEntries(((doc.customFields ?? []) as { id: string; value: unknown }[]).map((f) => [f.id, f.value]));
}

/** The custom field ids each write sent. */
const sentIds = () => sent.map((s) => `${s.method} ${s.path} ${((s.body.customFields ?? []) as { id: string }[]).map((f) => f.id).sort().join(',')}`.trim());

async function requestLog(): Promise<string[]> {
  return (await control<{ requests: { method: string; path: string }[] }>(emulator.url, 'GET', '/requests')).requests.map((r) => `${r.method} ${r.path}`);
}

async function clearLogs(): Promise<void> {
  sent = [];
  await control(emulator.url, 'DELETE', '/requests');
}

/** Lists the location's fields as the sync loop does. */
async function listFields(): Promise<void> {
  saveCustomFieldDefinitions(db, locationId, await api.listCustomFields(), clock.now());
}

beforeEach(async () => {
  clock = new ManualClock();
  emulator = await testEmulator({ clock });
  const added = addLocation(emulator.emu, { name: 'Cedar Dental' });
  locationId = added.location.id;
  const token = addOauthToken(emulator.emu, { authClass: 'Location', companyId: added.companyId, locationId, scopes: SCOPES });
  database = memoryDatabase();
  db = database.db;
  setUpdates('bidirectional');
  sent = [];
  // Tandem's own client, over real HTTP; each contact write's body is kept on the way.
  const recording: typeof fetch = async (input, init) => {
    const path = new URL(String(input)).pathname;
    if ((init?.method === 'POST' || init?.method === 'PUT') && path.startsWith('/contacts/') && !path.includes('/search') && !path.endsWith('/tags')) {
      sent.push({ method: init.method, path, body: JSON.parse(String(init.body)) });
    }
    return fetch(input, init);
  };
  api = createLocationApi({
    endpoints: { apiUrl: emulator.url, clientId: 'test-client', clientSecret: 'secret', fetch: recording },
    tokens: { locationToken: async () => token },
    budget: new RateBudget({ clock }),
    clock,
    locationId,
  });
  const defined = await control<{ customFields: { id: string; name: string }[] }>(emulator.url, 'POST', `/locations/${locationId}/custom-fields`, {
    customFields: [
      { name: 'Lead score', dataType: 'NUMERICAL' },
      { name: 'Interests', dataType: 'MULTIPLE_OPTIONS', picklistOptions: ['Implants', 'Braces'] },
    ],
  });
  score = defined.customFields.find((f) => f.name === 'Lead score')!.id;
  topics = defined.customFields.find((f) => f.name === 'Interests')!.id;
});

afterEach(async () => {
  await emulator.close();
  database.close();
});

describe('values under ids HighLevel does not define', () => {
  it('are left out of a create and kept in Tandem, unsent and out of the ledger', async () => {
    await listFields();
    const c = localCreate({ firstName: 'Ana', email: 'ana@example.com', customFields: { [score]: 7, [GONE]: 'old' } });
    await clearLogs();
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 1, failed: 0, retried: 0, notStuck: [] });

    expect(sentIds()).toEqual([`POST /contacts/ ${score}`]);
    const link = linkOf(c.id);
    expect(remoteCustom(link.highlevelId)).toEqual({ [score]: 7 });
    // Tandem keeps it; the ledger says HighLevel does not have it.
    expect(getContact(db, locationId, c.id)!.fields.customFields).toEqual({ [score]: 7, [GONE]: 'old' });
    expect(link.base.customFields).toEqual({ [score]: 7 });
    expect(outboxCounts(db, locationId)).toEqual({ pending: 0, failed: 0 });

    // Nothing loops: the next pass asks HighLevel nothing.
    await clearLogs();
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 0, failed: 0 });
    expect(await requestLog()).toEqual([]);
  });

  it('are left out of an update whose other changes go through; the ledger does not record them', async () => {
    await listFields();
    const c = localCreate({ firstName: 'Ana', email: 'ana@example.com', customFields: { [score]: 7 } });
    await pushPending(deps(), locationId);
    const highlevelId = linkOf(c.id).highlevelId;

    localUpdate(c.id, { firstName: 'Ana Maria', customFields: { [score]: 8, [topics]: ['Braces'], [GONE]: 'old' } });
    await clearLogs();
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 1, failed: 0, retried: 0, notStuck: [] });

    expect(await requestLog()).toEqual([`GET /contacts/${highlevelId}`, `PUT /contacts/${highlevelId}`]);
    expect(sentIds()).toEqual([`PUT /contacts/${highlevelId} ${[score, topics].sort().join(',')}`]);
    expect(emulator.emu.contact(highlevelId)!.firstName).toBe('Ana Maria');
    expect(remoteCustom(highlevelId)).toEqual({ [score]: 8, [topics]: ['Braces'] });
    const local = getContact(db, locationId, c.id)!;
    expect(local.fields.customFields).toEqual({ [score]: 8, [topics]: ['Braces'], [GONE]: 'old' });
    const base = linkOf(c.id).base;
    expect(base.customFields).toEqual({ [score]: 8, [topics]: ['Braces'] });
    expect(base.firstName).toBe('Ana Maria');
    // Not synced, so still Tandem's own; but nothing a push can send.
    expect(pendingLocal(base, local.fields)).toEqual([`customFields.${GONE}`]);
    expect(outboxCounts(db, locationId)).toEqual({ pending: 0, failed: 0 });

    await clearLogs();
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 0, failed: 0 });
    expect(await requestLog()).toEqual([]);
  });

  it('a contact whose only change is one sends nothing, and its row is done', async () => {
    await listFields();
    const c = localCreate({ firstName: 'Ana', email: 'ana@example.com' });
    await pushPending(deps(), locationId);

    localUpdate(c.id, { customFields: { [GONE]: 'old' } });
    // The write path queues nothing for it (local-write-custom-fields.test.ts); a row queued before
    // the fields were listed is what the push meets.
    expect(outboxCounts(db, locationId)).toEqual({ pending: 0, failed: 0 });
    enqueueOutbox(db, locationId, c.id, 'upsert', clock.now());
    expect(outboxCounts(db, locationId)).toEqual({ pending: 1, failed: 0 });
    await clearLogs();
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 0, failed: 0, retried: 0, parked: 0 });
    expect(await requestLog()).toEqual([]);
    expect(outboxCounts(db, locationId)).toEqual({ pending: 0, failed: 0 });
    expect(getContact(db, locationId, c.id)!.fields.customFields).toEqual({ [GONE]: 'old' });
    expect(linkOf(c.id).base.customFields).toEqual({});

    // Nor is it held while updates are Inbound, as a change waiting for them would be.
    setUpdates('inbound');
    localUpdate(c.id, { customFields: { [GONE]: 'older' } });
    enqueueOutbox(db, locationId, c.id, 'upsert', clock.now());
    await clearLogs();
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 0, failed: 0, retried: 0, parked: 0 });
    expect(await requestLog()).toEqual([]);
    expect(outboxCounts(db, locationId)).toEqual({ pending: 0, failed: 0 });
  });

  it('a HighLevel change of the contact that queues it again costs no read or write for them', async () => {
    await listFields();
    const c = localCreate({ firstName: 'Ana', email: 'ana@example.com' });
    await pushPending(deps(), locationId);
    const highlevelId = linkOf(c.id).highlevelId;
    localUpdate(c.id, { customFields: { [GONE]: 'old' } });
    await pushPending(deps(), locationId);

    // HighLevel's city changes; its webhook is applied (Bi-directional queues Tandem's pending value).
    clock.advance(1000);
    const after = await api.updateContact(highlevelId, { city: 'Porto' });
    const event = highLevelContactEventSchema.parse({ ...after, type: 'ContactUpdate', locationId });
    applyRemote({ db, now: clock.now(), settings: { creationDirection: 'bidirectional', updateDirection: 'bidirectional' } }, locationId, fromHighLevel(event, () => null, { complete: true }), { complete: true });
    expect(getContact(db, locationId, c.id)!.fields.city).toBe('Porto');

    await clearLogs();
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 0, failed: 0 });
    expect(await requestLog()).toEqual([]);
    expect(outboxCounts(db, locationId)).toEqual({ pending: 0, failed: 0 });
    expect(getContact(db, locationId, c.id)!.fields.customFields).toEqual({ [GONE]: 'old' });
  });

  it('are not filled into a HighLevel contact the push links to by email', async () => {
    await listFields();
    const existing = await api.createContact({ locationId, firstName: 'Ana', email: 'ana@example.com' });
    if (!('contact' in existing)) throw new Error('expected a created contact');
    const c = localCreate({ firstName: 'Ana', email: 'ana@example.com', customFields: { [score]: 7, [GONE]: 'old' } });
    await clearLogs();
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 1, failed: 0 });

    expect(linkOf(c.id).highlevelId).toBe(existing.contact.id);
    expect(sentIds()).toEqual([`PUT /contacts/${existing.contact.id} ${score}`]);
    expect(remoteCustom(existing.contact.id)).toEqual({ [score]: 7 });
    expect(getContact(db, locationId, c.id)!.fields.customFields).toEqual({ [score]: 7, [GONE]: 'old' });
    expect(linkOf(c.id).base.customFields).toEqual({ [score]: 7 });
  });

  it('are not filled by a link Tandem’s inbound side made, sent while updates are Inbound; the row is not held for them', async () => {
    await listFields();
    setUpdates('inbound');
    const c = localCreate({ firstName: 'Ana', email: 'ana@example.com', customFields: { [score]: 7, [GONE]: 'old' } });
    // HighLevel's contact with the same email comes in first: linked, its row a fill.
    clock.advance(1000);
    const created = await api.createContact({ locationId, firstName: 'Ana', email: 'ana@example.com' });
    if (!('contact' in created)) throw new Error('expected a created contact');
    applyRemote({ db, now: clock.now(), settings: { creationDirection: 'bidirectional', updateDirection: 'inbound' } }, locationId, fromHighLevel(created.contact, () => null, { complete: true }), { complete: true });
    expect(linkOf(c.id).highlevelId).toBe(created.contact.id);

    await clearLogs();
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 1, failed: 0, parked: 0 });
    expect(sentIds()).toEqual([`PUT /contacts/${created.contact.id} ${score}`]);
    expect(remoteCustom(created.contact.id)).toEqual({ [score]: 7 });
    expect(getContact(db, locationId, c.id)!.fields.customFields).toEqual({ [score]: 7, [GONE]: 'old' });
    expect(outboxCounts(db, locationId)).toEqual({ pending: 0, failed: 0 });
  });

  it('are sent, as every value is, while the location’s fields have never been listed', async () => {
    const c = localCreate({ firstName: 'Ana', email: 'ana@example.com', customFields: { [score]: 7, [GONE]: 'old' } });
    await clearLogs();
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 1, failed: 0 });
    expect(sentIds()).toEqual([`POST /contacts/ ${[GONE, score].sort().join(',')}`]);
    const link = linkOf(c.id);
    expect(remoteCustom(link.highlevelId)).toEqual({ [score]: 7, [GONE]: 'old' });
    expect(link.base.customFields).toEqual({ [score]: 7, [GONE]: 'old' });
  });
});
