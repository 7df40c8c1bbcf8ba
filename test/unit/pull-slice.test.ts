// Pull contacts' slice reads (server/sync/operations/pull-decide.ts, readSlice): what decidePull
// reads first about each record of a slice, read for the slice at once, changes no decision, in a
// preview (nothing written) or in a run (each decision written before the next is made).
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { Database } from '../../db/client.ts';
import { insertContact, updateContact } from '../../db/contacts.ts';
import { insertLink, saveLink } from '../../db/links.ts';
import type { RemoteContact } from '../../server/highlevel/contact-mapping.ts';
import { emptyContact, type ContactFields } from '../../server/sync/contact-model.ts';
import { decidePull, readSlice, type PullDecision } from '../../server/sync/operations/pull-decide.ts';
import { memoryDatabase, seedKeyedContacts, type KeyedContact } from '../helpers/database.ts';

const L = 'loc1';
const fields = (over: Partial<ContactFields> = {}): ContactFields => ({ ...emptyContact(), ...over });

let dbs: Database[] = [];
afterEach(() => {
  for (const d of dbs) d.close();
  dbs = [];
});

// Small pools, so that records collide: a HighLevel id twice in a slice, an email or phone that a
// Tandem contact (linked or not, archived or not) or another record holds, in any case.
const hlIds = ['hl1', 'hl2', 'hl3', 'hl4', 'hl5', 'hl6'];
const emails = ['a@x.com', 'A@x.com', 'b@x.com', 'c@x.com', null];
const phones = ['+14155550101', '+14155550102', 'call me', null];
const key = fc.record({ email: fc.constantFrom(...emails), phone: fc.constantFrom(...phones) });
const existing = fc.array(fc.record({ key, linkedTo: fc.option(fc.constantFrom(...hlIds), { nil: undefined }), archived: fc.boolean() }), { maxLength: 6 });
const record = fc.record({ id: fc.constantFrom(...hlIds), key, name: fc.constantFrom('Ann', 'Bo', null) });
const slice = fc.oneof(
  { weight: 3, arbitrary: fc.uniqueArray(record, { maxLength: 7, selector: (r) => r.id }) },
  { weight: 1, arbitrary: fc.array(record, { maxLength: 8 }) },
);
function setUp(contacts: KeyedContact[]): Database {
  const d = memoryDatabase();
  dbs.push(d);
  seedKeyedContacts(d, L, contacts);
  return d;
}

const remoteOf = (r: { id: string; key: { email: string | null; phone: string | null }; name: string | null }): RemoteContact => ({
  id: r.id,
  locationId: L,
  dateUpdated: 2000,
  fields: fields({ firstName: r.name, email: r.key.email, phone: r.key.phone }),
  unmatchedOwner: undefined,
  problems: [],
});

/** A decision without the ids the run makes at random. */
function shape(d: PullDecision) {
  if (d.action === 'skipped') return { action: d.action, reason: d.reason };
  if (d.action === 'created') return { action: d.action, fields: d.fields, base: d.base };
  return { action: d.action, contact: d.contact.fields, linked: d.link !== null, patch: d.patch, addTags: d.addTags, base: d.base };
}

/** What the run writes for a decision (operations/pull.ts apply), as far as later decisions can see it. */
function write(db: Database, remote: RemoteContact, d: PullDecision): void {
  if (d.action === 'skipped') return;
  if (d.action === 'created') {
    const created = insertContact(db.db, { locationId: L, fields: d.fields, now: 3000, origin: 'remote' });
    insertLink(db.db, { locationId: L, contactId: created.id, highlevelId: remote.id, base: d.base, remoteUpdatedAt: 2000, now: 3000 });
    return;
  }
  if (d.action === 'updated') updateContact(db.db, { locationId: L, id: d.contact.id, patch: d.patch, tags: { add: d.addTags, remove: [] }, now: 3000, origin: 'remote' });
  if (d.link === null || d.action === 'updated') saveLink(db.db, { locationId: L, contactId: d.contact.id, highlevelId: remote.id, base: d.base, now: 3000 });
}

/** Decides the slice in order, with its slice reads or without, writing each decision when `run`. */
function decideAll(contacts: KeyedContact[], records: RemoteContact[], opts: { sliced: boolean; run: boolean }) {
  const d = setUp(contacts);
  const claimed = new Set<string>();
  const known = opts.sliced ? readSlice(d.db, L, records) : undefined;
  return records.map((remote) => {
    const decision = decidePull(d.db, L, remote, claimed, known?.get(remote.id));
    if (opts.run) write(d, remote, decision);
    return shape(decision);
  });
}

describe('Pull contacts, slice reads', () => {
  it('decide as reading record by record does, in a preview and in a run', () => {
    fc.assert(
      fc.property(existing, slice, (contacts, recs) => {
        const records = recs.map(remoteOf);
        for (const run of [false, true]) {
          expect(decideAll(contacts, records, { sliced: true, run })).toEqual(decideAll(contacts, records, { sliced: false, run }));
        }
      }),
      { numRuns: 200 },
    );
  });

  it('read nothing per record for a slice nobody holds, and leave a slice naming a contact twice to the records', () => {
    const d = setUp([{ key: { email: 'a@x.com', phone: null }, linkedTo: 'hl1', archived: false }]);
    const known = readSlice(d.db, L, [remoteOf({ id: 'hl1', key: { email: null, phone: null }, name: 'Ann' }), remoteOf({ id: 'hl2', key: { email: 'A@X.com', phone: null }, name: null }), remoteOf({ id: 'hl3', key: { email: 'new@x.com', phone: '+14155550109' }, name: null })]);
    expect(known?.get('hl1')?.link?.highlevelId).toBe('hl1');
    // Held by a (linked) contact: findMatch decides, reading what holds it then.
    expect(known?.get('hl2')).toEqual({ link: undefined, keyHeld: true });
    expect(known?.get('hl3')).toEqual({ link: undefined, keyHeld: false });
    expect(readSlice(d.db, L, [remoteOf({ id: 'hl4', key: { email: null, phone: null }, name: null }), remoteOf({ id: 'hl4', key: { email: null, phone: null }, name: null })])).toBeUndefined();
  });
});
