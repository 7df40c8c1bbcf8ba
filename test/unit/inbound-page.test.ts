// The pull's batch apply against a real (in-memory) SQLite: a page applied in one transaction
// ends exactly where applying its records one by one ends, a failing record rolls the page back,
// and the link ledger written without a read-back keeps its rules (HighLevel's time only moves
// forward, an unknown time keeps the stored one, a tombstone stays). Also the rule the repositories'
// prepared statements rely on: one statement serves the database handle and its transaction
// handles, and runs inside whatever transaction the connection has open.
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Database, Db } from '../../db/client.ts';
import { archiveContact, contactIds, createContact, getContact, insertContact, listContacts, updateContact } from '../../db/contacts.ts';
import { getLinkByContact, getLinkByRemote, insertLink, isContactLinked, liveRemoteIds, saveLink, tombstone, upsertLink } from '../../db/links.ts';
import { getOutbox } from '../../db/outbox.ts';
import type { RemoteContact } from '../../server/highlevel/contact-mapping.ts';
import type { Direction } from '../../db/schema.ts';
import { emptyContact, type ContactFields } from '../../server/sync/contact-model.ts';
import { applyRemote, applyRemotePage, type InboundDeps, type RemoteInput } from '../../server/sync/inbound.ts';
import { memoryDatabase, seedKeyedContacts, type KeyedContact } from '../helpers/database.ts';

const L = 'loc1';
const settings: InboundDeps['settings'] = { creationDirection: 'bidirectional', updateDirection: 'inbound' };
const fields = (over: Partial<ContactFields> = {}): ContactFields => ({ ...emptyContact(), ...over });

function remote(id: string, dateUpdated: number, over: Partial<ContactFields>): RemoteContact {
  return { id, locationId: L, dateUpdated, fields: fields(over), unmatchedOwner: undefined, problems: [] };
}

let dbs: Database[] = [];
function fresh(): Database {
  const d = memoryDatabase();
  dbs.push(d);
  return d;
}
beforeEach(() => {
  dbs = [];
});
afterEach(() => {
  for (const d of dbs) d.close();
});

/** Everything the apply may touch, ids left out (they are random): contacts with their links and outbox rows. */
function state(d: Database) {
  return listContacts(d.db, L, { filters: { includeArchived: true }, limit: 1000 }).contacts.map((c) => {
    const link = getLinkByContact(d.db, L, c.id);
    return {
      fields: c.fields,
      archived: c.archivedAt !== null,
      version: c.version,
      link: link && { highlevelId: link.highlevelId, base: link.base, remoteUpdatedAt: link.remoteUpdatedAt, remoteDeletedAt: link.remoteDeletedAt },
      outbox: getOutbox(d.db, L, c.id)?.kind ?? null,
    };
  });
}

/** A Tandem contact already there (same email as one HighLevel record), then a page that creates, links, updates, echoes, repeats, goes stale and deletes. */
function scenario(d: Database): RemoteInput[][] {
  createContact(d.db, { locationId: L, fields: fields({ firstName: 'Local', email: 'Match@Example.com', city: 'Austin' }), now: 500, origin: 'remote' });
  const first: RemoteInput[] = [
    remote('hlA', 1000, { firstName: 'Ann', email: 'ann@example.com', phone: '+14155550101', tags: ['vip'] }),
    remote('hlB', 1001, { firstName: 'Bo', email: 'match@example.com' }),
    remote('hlC', 1002, { firstName: 'Cy' }),
  ];
  const second: RemoteInput[] = [
    remote('hlA', 2000, { firstName: 'Annie', email: 'ann@example.com', phone: '+14155550101', tags: ['vip'] }),
    remote('hlA', 2000, { firstName: 'Annie', email: 'ann@example.com', phone: '+14155550101', tags: ['vip'] }),
    remote('hlB', 900, { firstName: 'Old' }),
    { deleted: 'hlC' },
    remote('hlC', 3000, { firstName: 'Late' }),
    { deleted: 'hlNever' },
  ];
  return [first, second];
}

describe('applyRemotePage', () => {
  it('ends where applying the records one by one ends, with the same outcomes', () => {
    const one = fresh();
    const page = fresh();
    const deps = (d: Database): InboundDeps => ({ db: d.db, now: 5000, settings });
    const singly = scenario(one).map((records) => records.map((r) => applyRemote(deps(one), L, r, { complete: true })));
    const paged = scenario(page).map((records) => applyRemotePage(deps(page), L, records, { complete: true }));
    expect(paged).toEqual([
      ['created', 'linked', 'created'],
      ['updated', 'echo', 'stale', 'archived', 'tombstoned', 'ignored'],
    ]);
    expect(paged).toEqual(singly);
    expect(state(page)).toEqual(state(one));
    // The linked contact kept its own city and took HighLevel's name and its spelling of the email
    // they share; creation is Bi-directional, so the city it adds to HighLevel's empty field goes
    // out as a fill.
    const linkedB = getContact(page.db, L, getLinkByRemote(page.db, L, 'hlB')!.contactId)!;
    expect(linkedB.fields).toMatchObject({ firstName: 'Bo', city: 'Austin', email: 'match@example.com' });
    expect(getOutbox(page.db, L, linkedB.id)?.kind).toBe('fill');
  });

  it('rolls the whole page back when one record cannot be applied', () => {
    const d = fresh();
    const bad = remote('hlBad', 1001, { tags: ['NOT normalised'] });
    expect(() =>
      applyRemotePage({ db: d.db, now: 5000, settings }, L, [remote('hlOk', 1000, { firstName: 'Ok' }), bad], { complete: true }),
    ).toThrow();
    expect(contactIds(d.db, L)).toEqual([]);
    expect(getLinkByRemote(d.db, L, 'hlOk')).toBeUndefined();
    // Nothing is left half-open: the next page applies normally.
    expect(applyRemotePage({ db: d.db, now: 6000, settings }, L, [remote('hlOk', 1000, { firstName: 'Ok' })], { complete: true })).toEqual(['created']);
  });
});

describe('applyRemotePage, batches at random', () => {
  // Small pools, so that records collide: a HighLevel id twice in a batch, an email or phone that a
  // Tandem contact (linked or not, archived or not) holds, in any case.
  const hlIds = ['hl1', 'hl2', 'hl3', 'hl4', 'hl5', 'hl6'];
  const emails = ['a@x.com', 'B@x.com', 'b@x.com', 'c@x.com', null];
  const phones = ['+14155550101', '+14155550102', '+14155550103', 'call me', null];
  const key = fc.record({ email: fc.constantFrom(...emails), phone: fc.constantFrom(...phones) });
  const existing = fc.array(fc.record({ key, linkedTo: fc.option(fc.constantFrom(...hlIds), { nil: undefined }), archived: fc.boolean() }), { maxLength: 5 });
  const record = fc.oneof(
    { weight: 5, arbitrary: fc.record({ id: fc.constantFrom(...hlIds), key, name: fc.constantFrom('Ann', 'Bo'), at: fc.integer({ min: 900, max: 1100 }) }) },
    { weight: 1, arbitrary: fc.record({ deleted: fc.constantFrom(...hlIds, 'hlNever') }) },
  );
  // Mostly distinct HighLevel ids (the batched path), sometimes not (the one-by-one path).
  const batch = fc.oneof(
    { weight: 3, arbitrary: fc.uniqueArray(record, { maxLength: 7, selector: (r) => ('deleted' in r ? r.deleted : r.id) }) },
    { weight: 1, arbitrary: fc.array(record, { maxLength: 8 }) },
  );

  const setUp = (d: Database, contacts: KeyedContact[]) => seedKeyedContacts(d, L, contacts);

  it('ends where applying the records one by one ends, with the same outcomes', () => {
    fc.assert(
      fc.property(existing, batch, fc.constantFrom<Direction>('bidirectional', 'inbound'), (contacts, records, direction) => {
        const inputs: RemoteInput[] = records.map((r) =>
          'deleted' in r ? r : remote(r.id, r.at, { firstName: r.name, email: r.key.email, phone: r.key.phone }),
        );
        const deps = (d: Database): InboundDeps => ({ db: d.db, now: 5000, settings: { creationDirection: direction, updateDirection: 'inbound' } });
        const one = fresh();
        const page = fresh();
        setUp(one, contacts);
        setUp(page, contacts);
        const singly = inputs.map((r) => applyRemote(deps(one), L, r, { complete: true }));
        expect(applyRemotePage(deps(page), L, inputs, { complete: true })).toEqual(singly);
        expect(state(page)).toEqual(state(one));
        one.close();
        page.close();
        dbs = [];
      }),
      { numRuns: 200 },
    );
  });

  it('reads a batch\'s links and the contacts it could match through their indexes, not a scan', () => {
    const d = fresh();
    const prepared: string[] = [];
    const prepare = d.sqlite.prepare.bind(d.sqlite);
    d.sqlite.prepare = ((source: string) => (prepared.push(source), prepare(source))) as typeof d.sqlite.prepare;
    createContact(d.db, { locationId: L, fields: fields({ email: 'a@x.com', phone: '+14155550101' }), now: 1, origin: 'remote' });
    applyRemotePage({ db: d.db, now: 5000, settings }, L, [remote('hl1', 1000, { email: 'A@x.com' }), remote('hl2', 1000, { phone: '+14155550101' })], { complete: true });
    const plan = (pattern: RegExp) => {
      const source = prepared.find((q) => /^select/i.test(q) && pattern.test(q));
      expect(source, String(pattern)).toBeDefined();
      const params = (source!.match(/\?/g) ?? []).map(() => '[]');
      return d.sqlite.prepare(`explain query plan ${source}`).all(...params).map((r) => (r as { detail: string }).detail).join('; ');
    };
    expect(plan(/"highlevel_id" in \(select value from json_each/)).toContain('USING INDEX contact_links_location_remote (location_id=? AND highlevel_id=?)');
    expect(plan(/"contact_id" in \(select value from json_each/)).toContain('USING INDEX sqlite_autoindex_contact_links_1 (contact_id=?)');
    expect(plan(/"email_lower" in \(select value from json_each/)).toContain('USING INDEX contacts_location_email (location_id=? AND email_lower=?)');
    expect(plan(/"phone" in \(select value from json_each/)).toContain('USING INDEX contacts_location_phone (location_id=? AND phone=?)');
  });
});

describe('saveLink', () => {
  it('moves HighLevel time forward only, keeps it when unknown, and lifts a tombstone only when the link moves', () => {
    const d = fresh();
    const c = createContact(d.db, { locationId: L, fields: fields({ firstName: 'A' }), now: 1, origin: 'remote' });
    const input = { locationId: L, contactId: c.id, highlevelId: 'hl1', base: fields({ firstName: 'A' }) };
    expect(isContactLinked(d.db, L, c.id)).toBe(false);
    saveLink(d.db, { ...input, remoteUpdatedAt: null, now: 10 });
    expect(getLinkByContact(d.db, L, c.id)).toMatchObject({ remoteUpdatedAt: null, linkedAt: 10, updatedAt: 10 });
    expect(isContactLinked(d.db, L, c.id)).toBe(true);
    saveLink(d.db, { ...input, remoteUpdatedAt: 500, now: 20 });
    saveLink(d.db, { ...input, remoteUpdatedAt: 300, base: fields({ firstName: 'B' }), now: 30 });
    expect(getLinkByContact(d.db, L, c.id)).toMatchObject({ remoteUpdatedAt: 500, base: { firstName: 'B' }, linkedAt: 10, updatedAt: 30 });
    saveLink(d.db, { ...input, now: 40 });
    expect(getLinkByContact(d.db, L, c.id)?.remoteUpdatedAt).toBe(500);
    tombstone(d.db, L, 'hl1', 50);
    const after = upsertLink(d.db, { ...input, remoteUpdatedAt: 900, now: 60 });
    expect(after).toMatchObject({ remoteUpdatedAt: 900, remoteDeletedAt: 50, updatedAt: 60 });
    // Tombstoned, the contact is free to be matched again (restored in Tandem, it is a new contact for HighLevel).
    expect(isContactLinked(d.db, L, c.id)).toBe(false);
    expect(() => saveLink(d.db, { ...input, base: fields({ tags: ['NOT normalised'] }), now: 70 })).toThrow();
    // The contact linked to another HighLevel contact (created again there, or a merge there): the
    // link moves, ledger and all, and takes that contact's history: no tombstone, its own time.
    saveLink(d.db, { ...input, highlevelId: 'hl2', base: fields({ firstName: 'C' }), remoteUpdatedAt: 100, now: 80 });
    expect(getLinkByRemote(d.db, L, 'hl1')).toBeUndefined();
    expect(getLinkByRemote(d.db, L, 'hl2')).toMatchObject({ contactId: c.id, base: { firstName: 'C' }, remoteUpdatedAt: 100, remoteDeletedAt: null, linkedAt: 10, updatedAt: 80 });
    expect(isContactLinked(d.db, L, c.id)).toBe(true);
  });

  it('inserts a new link as saveLink would, and refuses one for a contact or HighLevel contact already linked', () => {
    const d = fresh();
    const [a, b] = ['A', 'B'].map((firstName, i) => createContact(d.db, { locationId: L, fields: fields({ firstName }), now: 1 + i, origin: 'remote' }));
    insertLink(d.db, { locationId: L, contactId: a!.id, highlevelId: 'hl1', base: fields({ firstName: 'A' }), remoteUpdatedAt: 500, now: 10 });
    expect(getLinkByRemote(d.db, L, 'hl1')).toMatchObject({ contactId: a!.id, base: { firstName: 'A' }, remoteUpdatedAt: 500, remoteDeletedAt: null, linkedAt: 10, updatedAt: 10 });
    expect(() => insertLink(d.db, { locationId: L, contactId: a!.id, highlevelId: 'hl2', base: fields(), now: 20 })).toThrow(/UNIQUE/);
    expect(() => insertLink(d.db, { locationId: L, contactId: b!.id, highlevelId: 'hl1', base: fields(), now: 20 })).toThrow(/UNIQUE/);
    expect(() => insertLink(d.db, { locationId: L, contactId: b!.id, highlevelId: 'hl3', base: fields({ tags: ['NOT normalised'] }), now: 20 })).toThrow();
    expect(isContactLinked(d.db, L, b!.id)).toBe(false);
    expect(getLinkByContact(d.db, L, a!.id)).toMatchObject({ highlevelId: 'hl1', updatedAt: 10 });
  });

  it('lists the live links a page at a time, each once, in id order, without tombstones or other locations', () => {
    const d = fresh();
    const ids = ['hl07', 'hl03', 'hl11', 'hl01', 'hl09', 'hl05', 'hl02'];
    for (const [i, id] of ids.entries()) {
      const c = createContact(d.db, { locationId: L, fields: fields({ firstName: `C${i}` }), now: 1, origin: 'remote' });
      saveLink(d.db, { locationId: L, contactId: c.id, highlevelId: id, base: fields(), remoteUpdatedAt: 1, now: 1 });
    }
    const elsewhere = createContact(d.db, { locationId: 'loc2', fields: fields(), now: 1, origin: 'remote' });
    saveLink(d.db, { locationId: 'loc2', contactId: elsewhere.id, highlevelId: 'hl04', base: fields(), remoteUpdatedAt: 1, now: 1 });
    tombstone(d.db, L, 'hl09', 2);
    const pages: string[][] = [];
    for (let page = liveRemoteIds(d.db, L, { limit: 2 }); page.length > 0; page = liveRemoteIds(d.db, L, { after: page.at(-1)!, limit: 2 })) pages.push(page);
    expect(pages).toEqual([['hl01', 'hl02'], ['hl03', 'hl05'], ['hl07', 'hl11']]);
    expect(liveRemoteIds(d.db, L)).toEqual(pages.flat());
  });
});

describe('prepared statements', () => {
  it('serve a transaction handle and the database alike, inside the open transaction', () => {
    const d = fresh();
    // First use through a transaction handle (the statement is prepared then), later uses through the database.
    const id = d.db.transaction((tx) => insertContact(tx as unknown as Db, { locationId: L, fields: fields({ firstName: 'A' }), now: 1, origin: 'remote' }).id);
    expect(getContact(d.db, L, id)?.fields.firstName).toBe('A');
    expect(() =>
      d.db.transaction(() => {
        insertContact(d.db, { locationId: L, fields: fields({ firstName: 'B' }), now: 2, origin: 'local' });
        throw new Error('abort');
      }),
    ).toThrow('abort');
    // The database's statement ran inside the transaction: rolled back with it, outbox row included.
    expect(contactIds(d.db, L)).toEqual([id]);
    expect(getOutbox(d.db, L, id)).toBeUndefined();
  });

  it('return what was written, as a read-back would (writes are not read back)', () => {
    const d = fresh();
    const c = createContact(d.db, { locationId: L, fields: fields({ firstName: 'A', tags: ['x'] }), now: 1, origin: 'remote' });
    expect(getContact(d.db, L, c.id)).toEqual(c);
    const u = updateContact(d.db, { locationId: L, id: c.id, patch: { dnd: true, customFields: { k: ['a', 'b'] } }, tags: { add: ['y'], remove: ['x'] }, now: 5, origin: 'local' });
    expect(u).toMatchObject({ version: 2, updatedAt: 5, fields: { dnd: true, tags: ['y'], customFields: { k: ['a', 'b'] } } });
    expect(getContact(d.db, L, c.id)).toEqual(u);
    expect(getOutbox(d.db, L, c.id)?.kind).toBe('upsert');
  });
});

describe('a contact archived in Tandem', () => {
  it('keeps HighLevel\'s later edits while archived, without reviving it or queuing anything, so a restore brings them back', () => {
    const d = fresh();
    const deps = (now: number): InboundDeps => ({ db: d.db, now, settings });
    expect(applyRemote(deps(1000), L, remote('hlZ', 1000, { firstName: 'Zoe', lastName: 'Old' }), { complete: true })).toBe('created');
    const id = getLinkByRemote(d.db, L, 'hlZ')!.contactId;
    archiveContact(d.db, { locationId: L, id, now: 1500, origin: 'local' });
    const archiveRow = getOutbox(d.db, L, id);
    expect(applyRemote(deps(2000), L, remote('hlZ', 2000, { firstName: 'Zoe', lastName: 'New' }), { complete: true })).toBe('updated');
    const after = getContact(d.db, L, id)!;
    expect(after.fields.lastName).toBe('New');
    expect(after.archivedAt).not.toBeNull();
    expect(getOutbox(d.db, L, id)).toEqual(archiveRow);
    expect(getLinkByRemote(d.db, L, 'hlZ')!.base.lastName).toBe('New');
  });
});
