// HighLevel → Tandem (server/sync/inbound.ts) for a Tandem contact holding a custom field value
// under an id the location's listed fields do not hold: such a value is not a change a push can
// send, so applying HighLevel's change (a webhook's read, a pull's page, a link by email) queues
// nothing for it alone, and a held edit overtaken by HighLevel leaves no row behind for it. While
// the fields have never been listed, it queues as every value does. Over real HTTP against the
// emulator: HighLevel's contact is changed and read through Tandem's own client, then applied.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Database, Db } from '../../db/client.ts';
import { createContact, getContact, updateContact } from '../../db/contacts.ts';
import { saveCustomFieldDefinitions } from '../../db/custom-fields.ts';
import { getLinkByContact } from '../../db/links.ts';
import { getOutbox, PARKED_AT } from '../../db/outbox.ts';
import { updateSyncSettings } from '../../db/sync-settings.ts';
import type { RunningEmulator } from '../../emulator/server.ts';
import { fromHighLevel, type UpdateContactBody } from '../../server/highlevel/contact-mapping.ts';
import { createLocationApi, type LocationApi } from '../../server/highlevel/contacts.ts';
import { RateBudget } from '../../server/highlevel/rate-budget.ts';
import { emptyContact, type ContactFields } from '../../server/sync/contact-model.ts';
import { applyRemote, applyRemotePage, type InboundDeps } from '../../server/sync/inbound.ts';
import { pushPending } from '../../server/sync/outbound.ts';
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
let score: string;

type Direction = 'bidirectional' | 'inbound';

function setUpdates(updateDirection: Direction) {
  updateSyncSettings(db, { locationId, patch: { updateDirection }, user: { id: 'admin', name: 'Admin' }, now: clock.now() });
}

function inbound(updateDirection: Direction, extra: Partial<InboundDeps> = {}): InboundDeps {
  return { db, now: clock.now(), settings: { creationDirection: 'bidirectional', updateDirection }, ...extra };
}

function fields(draft: Partial<ContactFields>): ContactFields {
  return { ...emptyContact(), ...draft };
}

function localUpdate(id: string, patch: Parameters<typeof updateContact>[1]['patch']) {
  clock.advance(1000);
  return updateContact(db, { locationId, id, patch, now: clock.now(), origin: 'local' });
}

/** Lists the location's fields as the sync loop does. */
async function listFields(): Promise<void> {
  saveCustomFieldDefinitions(db, locationId, await api.listCustomFields(), clock.now());
}

/** A contact made in Tandem and pushed, linked, in step with HighLevel. */
async function synced(draft: Partial<ContactFields>): Promise<{ id: string; highlevelId: string }> {
  clock.advance(1000);
  const c = createContact(db, { locationId, fields: fields(draft), now: clock.now(), origin: 'local' });
  await pushPending({ db, clock, api, random: () => 0.5 }, locationId);
  return { id: c.id, highlevelId: getLinkByContact(db, locationId, c.id)!.highlevelId };
}

/** Someone changes the contact in HighLevel; Tandem reads it back whole (as a webhook's GET does). */
async function changeInHighLevel(highlevelId: string, body: UpdateContactBody) {
  clock.advance(1000);
  return fromHighLevel(await api.updateContact(highlevelId, body), () => null, { complete: true });
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
  api = createLocationApi({
    endpoints: { apiUrl: emulator.url, clientId: 'test-client', clientSecret: 'secret', fetch },
    tokens: { locationToken: async () => token },
    budget: new RateBudget({ clock }),
    clock,
    locationId,
  });
  const defined = await control<{ customFields: { id: string; name: string }[] }>(emulator.url, 'POST', `/locations/${locationId}/custom-fields`, {
    customFields: [{ name: 'Lead score', dataType: 'NUMERICAL' }],
  });
  score = defined.customFields[0]!.id;
});

afterEach(async () => {
  await emulator.close();
  database.close();
});

describe('a Tandem value under an id HighLevel does not define', () => {
  it('alone queues nothing when HighLevel’s change is applied, from a webhook’s read or a pull’s page', async () => {
    await listFields();
    const c = await synced({ firstName: 'Ana', email: 'ana@example.com' });
    localUpdate(c.id, { customFields: { [GONE]: 'old' } });
    // The loop finds nothing it can send: the row is done, the value stays Tandem's.
    await pushPending({ db, clock, api, random: () => 0.5 }, locationId);
    expect(getOutbox(db, locationId, c.id)).toBeUndefined();

    const read = await changeInHighLevel(c.highlevelId, { city: 'Porto' });
    expect(applyRemote(inbound('bidirectional'), locationId, read, { complete: true })).toBe('updated');
    expect(getContact(db, locationId, c.id)!.fields).toMatchObject({ city: 'Porto', customFields: { [GONE]: 'old' } });
    expect(getOutbox(db, locationId, c.id)).toBeUndefined();

    const page = await changeInHighLevel(c.highlevelId, { companyName: 'Cedar' });
    expect(applyRemotePage(inbound('bidirectional'), locationId, [page], { complete: true })).toEqual(['updated']);
    expect(getContact(db, locationId, c.id)!.fields.companyName).toBe('Cedar');
    expect(getOutbox(db, locationId, c.id)).toBeUndefined();
    expect(getLinkByContact(db, locationId, c.id)!.base.customFields).toEqual({});
  });

  it('beside a change of a field HighLevel defines, the contact is queued for that change', async () => {
    await listFields();
    const c = await synced({ firstName: 'Ana', email: 'ana@example.com' });
    clock.advance(1000);
    updateContact(db, { locationId, id: c.id, patch: { customFields: { [score]: 5, [GONE]: 'old' } }, now: clock.now(), origin: 'remote' });
    expect(getOutbox(db, locationId, c.id)).toBeUndefined();
    applyRemote(inbound('bidirectional'), locationId, await changeInHighLevel(c.highlevelId, { city: 'Porto' }), { complete: true });
    expect(getOutbox(db, locationId, c.id)).toMatchObject({ kind: 'upsert', status: 'pending' });
  });

  it('is not a fill when HighLevel’s contact with the same email links to the Tandem one', async () => {
    await listFields();
    clock.advance(1000);
    const c = createContact(db, { locationId, fields: fields({ firstName: 'Ana', email: 'ana@example.com', customFields: { [GONE]: 'old' } }), now: clock.now(), origin: 'local' });
    expect(getOutbox(db, locationId, c.id)).toMatchObject({ kind: 'upsert' });
    const created = await api.createContact({ locationId, firstName: 'Ana', email: 'ana@example.com' });
    if (!('contact' in created)) throw new Error('expected a created contact');
    expect(applyRemote(inbound('bidirectional'), locationId, fromHighLevel(created.contact, () => null, { complete: true }), { complete: true })).toBe('linked');
    expect(getLinkByContact(db, locationId, c.id)!.highlevelId).toBe(created.contact.id);
    // Its create is done (HighLevel has the contact), and nothing else can go.
    expect(getOutbox(db, locationId, c.id)).toBeUndefined();
    expect(getContact(db, locationId, c.id)!.fields.customFields).toEqual({ [GONE]: 'old' });
  });

  it('leaves no row behind once HighLevel overtakes the held edit beside it (updates Inbound)', async () => {
    await listFields();
    const c = await synced({ firstName: 'Ana', email: 'ana@example.com' });
    setUpdates('inbound');
    localUpdate(c.id, { companyName: 'Held', customFields: { [GONE]: 'old' } });
    await pushPending({ db, clock, api, random: () => 0.5 }, locationId);
    expect(getOutbox(db, locationId, c.id)).toMatchObject({ nextAttemptAt: PARKED_AT });

    applyRemote(inbound('inbound'), locationId, await changeInHighLevel(c.highlevelId, { companyName: 'Kept In HighLevel' }), { complete: true });
    expect(getContact(db, locationId, c.id)!.fields).toMatchObject({ companyName: 'Kept In HighLevel', customFields: { [GONE]: 'old' } });
    expect(getOutbox(db, locationId, c.id)).toBeUndefined();
  });

  it('follows the ids the caller read for its pass', async () => {
    // Not listed in the database: the caller's ids decide.
    const c = await synced({ firstName: 'Ana', email: 'ana@example.com' });
    clock.advance(1000);
    updateContact(db, { locationId, id: c.id, patch: { customFields: { [GONE]: 'old' } }, now: clock.now(), origin: 'remote' });
    applyRemote(inbound('bidirectional', { customFieldIds: new Set([score]) }), locationId, await changeInHighLevel(c.highlevelId, { city: 'Porto' }), { complete: true });
    expect(getOutbox(db, locationId, c.id)).toBeUndefined();
  });

  it('queues the contact, as every value does, while the location’s fields have never been listed', async () => {
    const c = await synced({ firstName: 'Ana', email: 'ana@example.com' });
    clock.advance(1000);
    updateContact(db, { locationId, id: c.id, patch: { customFields: { [GONE]: 'old' } }, now: clock.now(), origin: 'remote' });
    applyRemote(inbound('bidirectional'), locationId, await changeInHighLevel(c.highlevelId, { city: 'Porto' }), { complete: true });
    expect(getOutbox(db, locationId, c.id)).toMatchObject({ kind: 'upsert', status: 'pending' });
  });
});
