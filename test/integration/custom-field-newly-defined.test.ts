// A custom field HighLevel defines at a later listing (made there after Tandem stored values under
// its id, or deleted and made again with the same id): the live linked contacts holding a value
// for it that HighLevel never got are queued by that listing (db/custom-fields.ts), and the
// location's loop sends them as Contact update allows; no other contact costs a request. The real
// Tandem's loop, driven pass by pass, against the emulator over HTTP.
import { afterEach, describe, expect, it } from 'vitest';
import { archiveContact, createContact, updateContact } from '../../db/contacts.ts';
import { customFieldList, saveCustomFieldDefinitions, type CustomFieldDefinition } from '../../db/custom-fields.ts';
import { getLinkByContact, saveLink, tombstone } from '../../db/links.ts';
import { enqueueOutbox, failOutbox, getOutbox, outboxCounts } from '../../db/outbox.ts';
import { updateSyncSettings } from '../../db/sync-settings.ts';
import { emptyContact, type ContactPatch } from '../../server/sync/contact-model.ts';
import { control } from '../helpers/emulator.ts';
import { editTandem, lastSeq, requestsSince, seedSynced } from '../helpers/push-world.ts';
import { installedTandem } from '../helpers/tandem.ts';

type T = Awaited<ReturnType<typeof installedTandem>>;
let t: T | undefined;
afterEach(async () => {
  await t?.emulator.emu.webhooks.idle();
  await t?.close();
  t = undefined;
});

/** A Tandem without its loop running, updates as `updates`, whose location defines "Lead score" in HighLevel. */
async function world(updates: 'bidirectional' | 'inbound'): Promise<{ w: T; loc: string; score: string }> {
  const w = await installedTandem({ sync: { start: false }, operations: { start: false, sweepMs: 0 } });
  t = w;
  const loc = w.location.id;
  const score = (await define(w, 'Lead score'))[0]!.id;
  setUpdates(w, updates);
  return { w, loc, score };
}

function setUpdates(w: T, updateDirection: 'bidirectional' | 'inbound') {
  updateSyncSettings(w.db, { locationId: w.location.id, patch: { updateDirection }, user: { id: w.agency.adminId, name: 'Ada Admin' }, now: w.clock.now() });
}

/** Custom fields made in the emulated HighLevel (its control API). */
async function define(w: T, name: string): Promise<Array<{ id: string; name: string }>> {
  const res = await control<{ customFields: Array<{ id: string; name: string }> }>(w.highlevelUrl, 'POST', `/locations/${w.location.id}/custom-fields`, {
    customFields: [{ name, dataType: 'TEXT' }],
  });
  return res.customFields;
}

async function pass(w: T) {
  const r = await w.services.sync.runOnce(w.location.id);
  expect(r.error, r.error).toBeUndefined();
  return r;
}

/** A Tandem edit (REST API, panel): queued as such edits are. */
function localEdit(w: T, id: string, patch: ContactPatch) {
  return updateContact(w.db, { locationId: w.location.id, id, patch, now: w.clock.now(), origin: 'local' });
}

/** The custom fields HighLevel holds for the contact, by id. */
function remoteCustom(w: T, highlevelId: string): Record<string, unknown> {
  const doc = w.emulator.emu.contact(highlevelId);
  if (!doc) throw new Error(`no HighLevel contact ${highlevelId}`);
  return Object.fromEntries(((doc.customFields ?? []) as { id: string; value: unknown }[]).map((f) => [f.id, f.value]));
}

/** Tandem's contact reads and writes (not searches, not listings) since `seq`. */
function contactRequests(w: T, seq: number): string[] {
  return requestsSince(w, seq)
    .filter((r) => r.path.startsWith('/contacts/') && !r.path.startsWith('/contacts/search'))
    .map((r) => `${r.method} ${r.path}`);
}

/** The location's listing as stored, without `id` (a field deleted in HighLevel). */
function listingWithout(w: T, id: string): CustomFieldDefinition[] {
  return customFieldList(w.db, w.location.id).definitions.filter((d) => d.id !== id);
}

describe('a custom field HighLevel defines after Tandem holds values for it', () => {
  it('queues, at the listing, only the linked live contacts holding a value HighLevel never got; the same pass sends them', async () => {
    const { w, loc } = await world('bidirectional');
    const [held, agreed, none, archived, gone] = seedSynced(w, 5);
    await pass(w);
    const ref = (await define(w, 'Referral code'))[0]!.id;
    expect(customFieldList(w.db, loc).definitions.map((d) => d.id)).not.toContain(ref);

    // Held back: HighLevel does not define the field for Tandem yet, so the write queues nothing.
    localEdit(w, held!.contact.id, { customFields: { [ref]: 'R-1' } });
    // The ledger already holds this one (agreed on before the field was deleted): nothing to send.
    const agreedContact = editTandem(w, agreed!.contact.id, { customFields: { [ref]: 'R-2' } });
    saveLink(w.db, { locationId: loc, contactId: agreed!.contact.id, highlevelId: agreed!.doc.id, base: agreedContact.fields, now: w.clock.now() });
    // Archived, its HighLevel contact deleted, or never linked: not for this listing to send.
    editTandem(w, archived!.contact.id, { customFields: { [ref]: 'R-3' } });
    archiveContact(w.db, { locationId: loc, id: archived!.contact.id, now: w.clock.now(), origin: 'remote' });
    editTandem(w, gone!.contact.id, { customFields: { [ref]: 'R-4' } });
    tombstone(w.db, loc, gone!.doc.id, w.clock.now());
    const unlinked = createContact(w.db, { locationId: loc, fields: { ...emptyContact(), firstName: 'Una', customFields: { [ref]: 'R-5' } }, now: w.clock.now(), origin: 'remote' });
    expect(outboxCounts(w.db, loc)).toEqual({ pending: 0, failed: 0 });

    // The next listing defines it (as when HighLevel tells Tandem its fields changed).
    const seq = lastSeq(w);
    w.services.sync.customFieldsChanged(loc);
    await pass(w);

    expect(customFieldList(w.db, loc).definitions.map((d) => d.id)).toContain(ref);
    expect(contactRequests(w, seq)).toEqual([`GET /contacts/${held!.doc.id}`, `PUT /contacts/${held!.doc.id}`]);
    expect(remoteCustom(w, held!.doc.id)).toEqual({ [ref]: 'R-1' });
    expect(getLinkByContact(w.db, loc, held!.contact.id)!.base.customFields).toEqual({ [ref]: 'R-1' });
    expect(outboxCounts(w.db, loc)).toEqual({ pending: 0, failed: 0 });
    for (const c of [agreed, none, archived, gone]) expect(remoteCustom(w, c!.doc.id)).toEqual({});
    expect(getLinkByContact(w.db, loc, unlinked.id)).toBeUndefined();

    // Listed again, unchanged: nothing queued, nothing sent.
    const again = lastSeq(w);
    w.services.sync.customFieldsChanged(loc);
    await pass(w);
    expect(contactRequests(w, again)).toEqual([]);
    expect(outboxCounts(w.db, loc)).toEqual({ pending: 0, failed: 0 });
  });

  it('a field deleted and made again with the same id: the values written meanwhile go out', async () => {
    const { w, loc } = await world('bidirectional');
    const ref = (await define(w, 'Referral code'))[0]!.id;
    const [s] = seedSynced(w, 1);
    await pass(w);
    // Deleted in HighLevel: listed without it, Tandem's edit of it is held back.
    const defined = customFieldList(w.db, loc).definitions;
    expect(saveCustomFieldDefinitions(w.db, loc, listingWithout(w, ref), w.clock.now())).toBe(0);
    localEdit(w, s!.contact.id, { customFields: { [ref]: 'R-1' } });
    expect(getOutbox(w.db, loc, s!.contact.id)).toBeUndefined();

    // Made again with the same id: listed with it, the contact is queued and the next pass sends it.
    expect(saveCustomFieldDefinitions(w.db, loc, defined, w.clock.now())).toBe(1);
    expect(getOutbox(w.db, loc, s!.contact.id)).toMatchObject({ kind: 'upsert', status: 'pending' });
    const seq = lastSeq(w);
    await pass(w);
    expect(contactRequests(w, seq)).toEqual([`GET /contacts/${s!.doc.id}`, `PUT /contacts/${s!.doc.id}`]);
    expect(remoteCustom(w, s!.doc.id)).toEqual({ [ref]: 'R-1' });
    expect(outboxCounts(w.db, loc)).toEqual({ pending: 0, failed: 0 });
  });

  it('with Contact update Inbound the queued contacts wait, and go when it turns Bi-directional', async () => {
    const { w, loc } = await world('inbound');
    const [s] = seedSynced(w, 1);
    await pass(w);
    const ref = (await define(w, 'Referral code'))[0]!.id;
    localEdit(w, s!.contact.id, { customFields: { [ref]: 'R-1' } });
    expect(outboxCounts(w.db, loc)).toEqual({ pending: 0, failed: 0 });

    const seq = lastSeq(w);
    w.services.sync.customFieldsChanged(loc);
    await pass(w);
    expect(contactRequests(w, seq)).toEqual([]);
    expect(remoteCustom(w, s!.doc.id)).toEqual({});
    // Held as any Tandem edit is while updates are Inbound.
    expect(outboxCounts(w.db, loc)).toEqual({ pending: 1, failed: 0 });

    setUpdates(w, 'bidirectional');
    await pass(w);
    expect(remoteCustom(w, s!.doc.id)).toEqual({ [ref]: 'R-1' });
    expect(outboxCounts(w.db, loc)).toEqual({ pending: 0, failed: 0 });
  });

  it('a first listing queues nothing (everything was sent before it), and a row already there keeps its state', async () => {
    const { w, loc, score } = await world('bidirectional');
    const [first, refused] = seedSynced(w, 2);
    // Values HighLevel never got, before any listing: the first listing holds nothing back.
    editTandem(w, first!.contact.id, { customFields: { [score]: '7' } });
    const listed = (await w.services.sync.locationApi(loc).listCustomFields());
    expect(listed.map((d) => d.id)).toEqual([score]);
    expect(saveCustomFieldDefinitions(w.db, loc, listed, w.clock.now())).toBe(0);
    expect(outboxCounts(w.db, loc)).toEqual({ pending: 0, failed: 0 });

    // A change HighLevel refused for good stays so: it waits for the contact's next change.
    const ref = (await define(w, 'Referral code'))[0]!.id;
    editTandem(w, refused!.contact.id, { customFields: { [ref]: 'R-1' } });
    enqueueOutbox(w.db, loc, refused!.contact.id, 'upsert', w.clock.now());
    const row = getOutbox(w.db, loc, refused!.contact.id)!;
    failOutbox(w.db, row, { error: 'HighLevel refused it', nextAttemptAt: w.clock.now(), permanent: true });
    expect(saveCustomFieldDefinitions(w.db, loc, await w.services.sync.locationApi(loc).listCustomFields(), w.clock.now())).toBe(0);
    expect(getOutbox(w.db, loc, refused!.contact.id)).toMatchObject({ status: 'failed', lastError: 'HighLevel refused it' });
  });
});
