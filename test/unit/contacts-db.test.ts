// The contact book's repository against a real (in-memory) SQLite: row ↔ ContactFields, version
// and emailLower upkeep, no-op writes, the per-location updatedAt order that paging relies on,
// and the outbox rules (same transaction, coalescing, complete/fail only the version read).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Database } from '../../db/client.ts';
import { archiveContact, createContact, decodeCursor, encodeCursor, findContactsByEmail, findContactsByPhone, getContact, listContacts, restoreContact, updateContact, ContactWriteError } from '../../db/contacts.ts';
import { completeOutbox, dueOutbox, enqueueOutbox, failOutbox, getOutbox, outboxCounts } from '../../db/outbox.ts';
import { authenticateApiKey, createApiKey, hashApiKey, listApiKeys, revokeApiKey } from '../../db/api-keys.ts';
import { emptyContact, type ContactFields } from '../../server/sync/contact-model.ts';
import { memoryDatabase } from '../helpers/database.ts';

let database: Database;
beforeEach(() => {
  database = memoryDatabase();
});
afterEach(() => database.close());

const L = 'loc1';
const fields = (over: Partial<ContactFields> = {}): ContactFields => ({ ...emptyContact(), ...over });

describe('contacts repository', () => {
  it('round-trips every field, JSON columns included, and keeps emailLower', () => {
    const f = fields({
      firstName: 'Ada',
      email: 'Ada@Example.COM',
      phone: '+14155550123',
      country: 'US',
      dateOfBirth: '1815-12-10',
      tags: ['vip', 'lead'],
      dnd: true,
      customFields: { a: 'x', b: 3, c: ['p', 'q'] },
    });
    const c = createContact(database.db, { locationId: L, fields: f, now: 1000, origin: 'remote' });
    expect(c).toMatchObject({ id: expect.stringMatching(/^c_[0-9A-Za-z]{20}$/), locationId: L, fields: f, createdAt: 1000, updatedAt: 1000, archivedAt: null, version: 1 });
    expect(getContact(database.db, L, c.id)).toEqual(c);
    expect(getContact(database.db, 'other', c.id)).toBeUndefined();
    const row = database.sqlite.prepare('select email_lower, tags, custom_fields from contacts where id = ?').get(c.id);
    expect(row).toEqual({ email_lower: 'ada@example.com', tags: '["vip","lead"]', custom_fields: '{"a":"x","b":3,"c":["p","q"]}' });
  });

  it('refuses fields that are not normalised, and JSON that is not what it should be on read', () => {
    expect(() => createContact(database.db, { locationId: L, fields: fields({ tags: ['VIP'] }), now: 1, origin: 'remote' })).toThrow();
    const c = createContact(database.db, { locationId: L, fields: fields(), now: 1, origin: 'remote' });
    database.sqlite.prepare(`update contacts set tags = '{"not":"an array"}' where id = ?`).run(c.id);
    expect(() => getContact(database.db, L, c.id)).toThrow();
  });

  it('bumps the version on a change only; a no-op patch leaves contact and outbox alone', () => {
    const c = createContact(database.db, { locationId: L, fields: fields({ firstName: 'A', tags: ['x'] }), now: 1000, origin: 'remote' });
    const same = updateContact(database.db, { locationId: L, id: c.id, patch: { firstName: 'A' }, tags: { add: ['X'], remove: [] }, now: 2000, origin: 'local' });
    expect(same).toEqual(c);
    expect(getOutbox(database.db, L, c.id)).toBeUndefined();
    const changed = updateContact(database.db, { locationId: L, id: c.id, patch: { lastName: 'B', customFields: { k: 'v' } }, tags: { add: ['y'], remove: ['x'] }, now: 3000, origin: 'local' });
    expect(changed).toMatchObject({ version: 2, updatedAt: 3000, fields: { firstName: 'A', lastName: 'B', tags: ['y'], customFields: { k: 'v' } } });
    expect(() => updateContact(database.db, { locationId: L, id: c.id, patch: { lastName: 'C' }, now: 4000, origin: 'local', expectedVersion: 1 })).toThrow(ContactWriteError);
    expect(() => updateContact(database.db, { locationId: 'other', id: c.id, patch: { lastName: 'C' }, now: 4000, origin: 'local' })).toThrow(ContactWriteError);
    // An email's case is a change worth storing (shown as entered), matched case-insensitively.
    const recased = updateContact(database.db, { locationId: L, id: c.id, patch: { email: 'a@x.com' }, now: 5000, origin: 'remote' });
    expect(updateContact(database.db, { locationId: L, id: c.id, patch: { email: 'A@X.com' }, now: 6000, origin: 'remote' }).version).toBe(recased.version + 1);
  });

  it('updates from the contact the caller just read exactly as from its own read, and refuses another contact', () => {
    const c = createContact(database.db, { locationId: L, fields: fields({ firstName: 'A', email: 'a@x.com', tags: ['x'] }), now: 1000, origin: 'remote' });
    const other = createContact(database.db, { locationId: L, fields: fields({ firstName: 'O' }), now: 1001, origin: 'remote' });
    const change = { locationId: L, id: c.id, patch: { lastName: 'B', email: 'b@x.com' }, tags: { add: ['y'], remove: ['x'] }, now: 3000, origin: 'local' as const };
    const given = updateContact(database.db, change, getContact(database.db, L, c.id)!);
    expect(given).toMatchObject({ version: 2, updatedAt: 3000, fields: { firstName: 'A', lastName: 'B', email: 'b@x.com', tags: ['y'] } });
    expect(getContact(database.db, L, c.id)).toEqual(given);
    expect(findContactsByEmail(database.db, L, 'B@x.com').map((x) => x.id)).toEqual([c.id]);
    expect(getOutbox(database.db, L, c.id)?.kind).toBe('upsert');
    // Unchanged: returned as given, nothing written.
    expect(updateContact(database.db, { ...change, now: 4000 }, given)).toBe(given);
    expect(() => updateContact(database.db, { ...change, now: 4000, expectedVersion: 1 }, given)).toThrow(ContactWriteError);
    expect(() => updateContact(database.db, { ...change, patch: { lastName: 'C' }, now: 4000 }, other)).toThrow(/not the one to update/);
    expect(getContact(database.db, L, other.id)).toEqual(other);
  });

  it('records when Tandem (not HighLevel) last changed each field, custom fields one by one, and keeps it across reads', () => {
    const db = database.db;
    const c = createContact(db, { locationId: L, fields: fields({ firstName: 'Ada', city: 'Paris' }), now: 1000, origin: 'local' });
    expect(c.fieldChangedAt).toEqual({});
    updateContact(db, { locationId: L, id: c.id, patch: { firstName: 'Ana', customFields: { k: 'x' } }, now: 2000, origin: 'local' });
    // HighLevel's writes change values, not Tandem's times.
    updateContact(db, { locationId: L, id: c.id, patch: { firstName: 'Remote', city: 'Nice' }, now: 3000, origin: 'remote' });
    // Tags carry no time (they merge as sets); an unchanged value keeps its time.
    const last = updateContact(db, { locationId: L, id: c.id, patch: { city: 'Lyon', firstName: 'Remote' }, tags: { add: ['t'], remove: [] }, now: 4000, origin: 'local' });
    expect(last.fieldChangedAt).toEqual({ firstName: 2000, 'customFields.k': 2000, city: 4000 });
    expect(getContact(db, L, c.id)!.fieldChangedAt).toEqual(last.fieldChangedAt);
  });

  it('keeps the email and phone lookups right whether an update changes them or leaves them alone', () => {
    const c = createContact(database.db, { locationId: L, fields: fields({ firstName: 'Ada', email: 'ada@example.com', phone: '+14155550123' }), now: 1000, origin: 'remote' });
    const byEmail = (email: string) => findContactsByEmail(database.db, L, email).map((x) => x.id);
    const byPhone = (phone: string) => findContactsByPhone(database.db, L, phone).map((x) => x.id);
    // Email and phone untouched (the columns are not rewritten): both still find it.
    const renamed = updateContact(database.db, { locationId: L, id: c.id, patch: { firstName: 'Ada L.' }, now: 2000, origin: 'remote' });
    expect(renamed.fields).toMatchObject({ firstName: 'Ada L.', email: 'ada@example.com', phone: '+14155550123' });
    expect(byEmail('ADA@example.com')).toEqual([c.id]);
    expect(byPhone('+14155550123')).toEqual([c.id]);
    // Changed: the old values find nothing, the new ones find it, case-insensitively for email.
    updateContact(database.db, { locationId: L, id: c.id, patch: { email: 'Ada@Lovelace.example', phone: '+14155550999' }, now: 3000, origin: 'remote' });
    expect(byEmail('ada@example.com')).toEqual([]);
    expect(byPhone('+14155550123')).toEqual([]);
    expect(byEmail('ada@lovelace.example')).toEqual([c.id]);
    expect(byPhone('+14155550999')).toEqual([c.id]);
    expect(getContact(database.db, L, c.id)?.fields).toMatchObject({ firstName: 'Ada L.', email: 'Ada@Lovelace.example', phone: '+14155550999' });
  });

  it('archives and restores idempotently, enqueuing archive then upsert for local writes', () => {
    const c = createContact(database.db, { locationId: L, fields: fields(), now: 1000, origin: 'remote' });
    const a = archiveContact(database.db, { locationId: L, id: c.id, now: 2000, origin: 'local' });
    expect(a).toMatchObject({ archivedAt: 2000, version: 2 });
    expect(getOutbox(database.db, L, c.id)?.kind).toBe('archive');
    expect(archiveContact(database.db, { locationId: L, id: c.id, now: 3000, origin: 'local' }).version).toBe(2);
    const r = restoreContact(database.db, { locationId: L, id: c.id, now: 4000, origin: 'local' });
    expect(r).toMatchObject({ archivedAt: null, version: 3 });
    expect(getOutbox(database.db, L, c.id)?.kind).toBe('upsert');
  });

  it('keeps updatedAt unique and increasing per location, so a change during paging is never behind the cursor', () => {
    const ids = Array.from({ length: 6 }, () => createContact(database.db, { locationId: L, fields: fields(), now: 1000, origin: 'remote' }).id);
    const stamps = ids.map((id) => getContact(database.db, L, id)!.updatedAt);
    expect(new Set(stamps).size).toBe(6);
    const first = listContacts(database.db, L, { limit: 3 });
    expect(first.nextCursor).not.toBeNull();
    // The clock has not moved (or went back): the change still lands after the cursor.
    const seen = first.contacts[0]!;
    updateContact(database.db, { locationId: L, id: seen.id, patch: { firstName: 'changed' }, now: 999, origin: 'remote' });
    const rest = listContacts(database.db, L, { limit: 10, cursor: decodeCursor(first.nextCursor!)! });
    expect(rest.contacts.map((c) => c.id)).toContain(seen.id);
    expect(rest.contacts.find((c) => c.id === seen.id)?.fields.firstName).toBe('changed');
    expect(rest.nextCursor).toBeNull();
    // Another location's clock is its own.
    expect(createContact(database.db, { locationId: 'loc2', fields: fields(), now: 1000, origin: 'remote' }).updatedAt).toBe(1000);
  });

  it('cursors round-trip and foreign strings are not cursors', () => {
    expect(decodeCursor(encodeCursor({ updatedAt: 5, id: 'c_x' }))).toEqual({ updatedAt: 5, id: 'c_x' });
    expect(decodeCursor('nope')).toBeUndefined();
    expect(decodeCursor(Buffer.from('{"a":1}').toString('base64url'))).toBeUndefined();
  });
});

describe('outbox', () => {
  it('coalesces per contact and completes only the version that was read', () => {
    enqueueOutbox(database.db, L, 'c1', 'upsert', 1000);
    const read = dueOutbox(database.db, L, 1000)[0]!;
    enqueueOutbox(database.db, L, 'c1', 'upsert', 1000);
    expect(dueOutbox(database.db, L, 1000)).toHaveLength(1);
    expect(completeOutbox(database.db, read)).toBe(false);
    const again = dueOutbox(database.db, L, 1000)[0]!;
    expect(again.updatedAt).toBeGreaterThan(read.updatedAt);
    expect(completeOutbox(database.db, again)).toBe(true);
    expect(getOutbox(database.db, L, 'c1')).toBeUndefined();
  });

  it('retries later, fails for good with a reason, and a new change makes it pending again', () => {
    enqueueOutbox(database.db, L, 'c2', 'upsert', 1000);
    const row = dueOutbox(database.db, L, 1000)[0]!;
    expect(failOutbox(database.db, row, { error: 'HighLevel answered 503', nextAttemptAt: 5000, permanent: false })).toBe(true);
    expect(dueOutbox(database.db, L, 4999)).toEqual([]);
    const retry = dueOutbox(database.db, L, 5000)[0]!;
    expect(retry).toMatchObject({ attempts: 1, lastError: 'HighLevel answered 503' });
    failOutbox(database.db, retry, { error: 'email is invalid', nextAttemptAt: 6000, permanent: true });
    expect(dueOutbox(database.db, L, 99_999)).toEqual([]);
    expect(outboxCounts(database.db, L)).toEqual({ pending: 0, failed: 1 });
    enqueueOutbox(database.db, L, 'c2', 'upsert', 7000);
    expect(outboxCounts(database.db, L)).toEqual({ pending: 1, failed: 0 });
    expect(getOutbox(database.db, L, 'c2')).toMatchObject({ attempts: 0, lastError: null, status: 'pending' });
  });

  it('is written in the same transaction as a local contact write: one fails, neither is kept', () => {
    database.sqlite.exec(`create trigger outbox_refuses before insert on outbox begin select raise(abort, 'outbox refuses'); end`);
    expect(() => createContact(database.db, { locationId: L, fields: fields({ firstName: 'Lost' }), now: 1, origin: 'local' })).toThrow(/outbox refuses/);
    expect(listContacts(database.db, L, { limit: 10, filters: { includeArchived: true } }).contacts).toEqual([]);
    const remote = createContact(database.db, { locationId: L, fields: fields(), now: 1, origin: 'remote' });
    expect(() => updateContact(database.db, { locationId: L, id: remote.id, patch: { firstName: 'Lost' }, now: 2, origin: 'local' })).toThrow(/outbox refuses/);
    expect(getContact(database.db, L, remote.id)).toEqual(remote);
    database.sqlite.exec('drop trigger outbox_refuses');
    const c = createContact(database.db, { locationId: L, fields: fields(), now: 1, origin: 'local' });
    expect(getOutbox(database.db, L, c.id)).toMatchObject({ kind: 'upsert', status: 'pending', nextAttemptAt: 1 });
  });
});

describe('api keys repository', () => {
  it('stores only the hash, finds the key by it, and records use at most once a minute', () => {
    const { apiKey, key } = createApiKey(database.db, { locationId: L, name: ' CRM ', createdBy: 'Ada', now: 1000 });
    expect(key).toMatch(/^tk_[0-9A-Za-z]{32}$/);
    expect(apiKey).toMatchObject({ id: expect.stringMatching(/^k_/), name: 'CRM', prefix: key.slice(0, 10), lastUsedAt: null });
    expect(apiKey).not.toHaveProperty('hash');
    const stored = database.sqlite.prepare('select * from api_keys').all();
    expect(JSON.stringify(stored)).not.toContain(key);
    expect(stored).toEqual([expect.objectContaining({ hash: hashApiKey(key) })]);
    expect(authenticateApiKey(database.db, key, 10_000)?.lastUsedAt).toBe(10_000);
    authenticateApiKey(database.db, key, 69_999);
    expect(listApiKeys(database.db, L)[0]?.lastUsedAt).toBe(10_000);
    authenticateApiKey(database.db, key, 70_000);
    expect(listApiKeys(database.db, L)[0]?.lastUsedAt).toBe(70_000);
    expect(revokeApiKey(database.db, { locationId: 'other', id: apiKey.id, now: 80_000 })).toBeUndefined();
    expect(revokeApiKey(database.db, { locationId: L, id: apiKey.id, now: 80_000 })?.revokedAt).toBe(80_000);
    expect(authenticateApiKey(database.db, key, 90_000)).toBeUndefined();
  });
});
