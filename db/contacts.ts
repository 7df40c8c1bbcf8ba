// Tandem's contact book: rows ↔ ContactFields, optimistic versions, archive/restore, and the
// outbox row that every Tandem-side (origin 'local') write enqueues in the same transaction.
// The only code that touches the contacts table.
import { and, asc, desc, eq, gt, gte, isNull, lt, or, sql, type SQL } from 'drizzle-orm';
import { z } from 'zod';
import type { Db } from './client.ts';
import { listedCustomFieldIds } from './custom-fields.ts';
import { newId } from './ids.ts';
import { getLinkByContact } from './links.ts';
import { dropOutbox, enqueueOutbox, getOutbox, releaseRefusalsLeaving, withOutboxStatus, type OutboxKind, type OutboxRow } from './outbox.ts';
import { preparedOnce, preparedWrite, transaction } from './prepared.ts';
import { contactLinks, contacts, outbox } from './schema.ts';
import {
  applyPatch,
  applyTags,
  contactFieldsSchema,
  customFieldValueSchema,
  differingFields,
  fieldEquals,
  SYNC_FIELDS,
  type ContactFields,
  type ContactPatch,
} from '../server/sync/contact-model.ts';

type Row = typeof contacts.$inferSelect;

export interface Contact {
  id: string;
  locationId: string;
  fields: ContactFields;
  /** Epoch ms. */
  createdAt: number;
  /** Epoch ms; unique and increasing per location (see nextUpdatedAt). */
  updatedAt: number;
  archivedAt: number | null;
  version: number;
  /** Field key (`city`, `customFields.<id>`) → when Tandem last changed it (epoch ms); see the column. */
  fieldChangedAt: Readonly<Record<string, number>>;
}

/** 'local': written in Tandem (REST API), to be sent to HighLevel; 'remote': applied from HighLevel. */
export type WriteOrigin = 'local' | 'remote';

/** Why a write did not happen; routes turn it into 404 / 412. */
export class ContactWriteError extends Error {
  constructor(
    readonly code: 'not_found' | 'version_mismatch',
    readonly currentVersion?: number,
  ) {
    super(code === 'not_found' ? 'contact not found' : `version mismatch (current ${currentVersion})`);
    this.name = 'ContactWriteError';
  }
}

const tagsJson = z.array(z.string());
const fieldTimesJson = z.record(z.string(), z.number());
/** Most contacts were never edited in Tandem: one shared, frozen empty map for them. */
const NO_FIELD_TIMES: Readonly<Record<string, number>> = Object.freeze({});
const customFieldsJson = z.record(z.string(), customFieldValueSchema);

export function rowToContact(row: Row): Contact {
  return {
    id: row.id,
    locationId: row.locationId,
    fields: {
      firstName: row.firstName,
      lastName: row.lastName,
      email: row.email,
      phone: row.phone,
      companyName: row.companyName,
      address1: row.address1,
      city: row.city,
      state: row.state,
      postalCode: row.postalCode,
      country: row.country,
      website: row.website,
      timezone: row.timezone,
      dateOfBirth: row.dateOfBirth,
      source: row.source,
      tags: tagsJson.parse(JSON.parse(row.tags)),
      dnd: row.dnd,
      ownerUserId: row.ownerUserId,
      customFields: customFieldsJson.parse(JSON.parse(row.customFields)),
    },
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    archivedAt: row.archivedAt,
    version: row.version,
    fieldChangedAt: row.fieldChangedAt === null ? NO_FIELD_TIMES : fieldTimesJson.parse(JSON.parse(row.fieldChangedAt)),
  };
}

/**
 * Queues a Tandem-side write of a live contact for HighLevel, unless there is nothing left to send:
 * linked, it holds again what HighLevel holds (the link's ledger), e.g. an edit undone, or differs
 * only in values no push sends, so its row goes. A row kept for nothing made the panel count
 * edits held that were not.
 */
function queueLocalWrite(db: Db, locationId: string, contactId: string, fields: ContactFields, now: number): void {
  if (inStep(db, locationId, fields, getLinkByContact(db, locationId, contactId))) dropOutbox(db, locationId, contactId);
  else enqueueOutbox(db, locationId, contactId, 'upsert', now);
}

const CUSTOM = 'customFields.';

/**
 * Linked, and nothing to send: Tandem holds what the ledger says HighLevel holds, but for values
 * under custom fields HighLevel does not define, which no push sends (server/sync/merge.ts
 * `Sendable`). The location's listing is read only when such values are all that differ: most
 * writes differ in other fields too, or in none. Never listed, every value counts, as a push then
 * sends them all.
 */
function inStep(db: Db, locationId: string, fields: ContactFields, link: { base: ContactFields; remoteDeletedAt: number | null } | undefined): boolean {
  if (link === undefined || link.remoteDeletedAt !== null) return false;
  const differing = differingFields(fields, link.base);
  if (differing.length === 0) return true;
  if (!differing.every((f) => f.startsWith(CUSTOM))) return false;
  const listed = listedCustomFieldIds(db, locationId);
  return listed !== null && differing.every((f) => !listed.has(f.slice(CUSTOM.length)));
}

/**
 * After a write of both a contact and its ledger (a one-time Push or Pull contacts): its outbox row
 * goes when the two sides now agree, as a Tandem write that ends in step does (queueLocalWrite).
 * Returns the kind of the row it dropped, if any (a Pull records it, for its undo).
 */
export function dropOutboxIfInStep(db: Db, locationId: string, contactId: string): OutboxKind | undefined {
  const contact = getContact(db, locationId, contactId);
  if (!contact || contact.archivedAt !== null || !inStep(db, locationId, contact.fields, getLinkByContact(db, locationId, contactId))) return undefined;
  const row = getOutbox(db, locationId, contactId);
  if (row) dropOutbox(db, locationId, contactId);
  return row?.kind;
}

/**
 * After a write that puts back both a contact and its ledger as they were (the undo of a Pull
 * contacts run that had dropped the contact's row): a live contact that again differs from its
 * ledger (a Tandem edit the pull had replaced with HighLevel's value), or has no HighLevel contact
 * again, waits to go to HighLevel as `kind`, as it did before. True when it was queued.
 */
export function queueIfOutOfStep(db: Db, locationId: string, contactId: string, kind: 'upsert' | 'fill', now: number): boolean {
  const contact = getContact(db, locationId, contactId);
  if (!contact || contact.archivedAt !== null || inStep(db, locationId, contact.fields, getLinkByContact(db, locationId, contactId))) return false;
  enqueueOutbox(db, locationId, contactId, kind, now);
  return true;
}

/** The stored columns of `fields` (validated: the table only ever holds the normalised form). */
export function fieldsToColumns(fields: ContactFields) {
  return columnsOf(contactFieldsSchema.parse(fields));
}

type ColumnValues = ReturnType<typeof columnsOf>;

/** The stored columns of fields already validated by contactFieldsSchema. */
function columnsOf(f: ContactFields) {
  return {
    firstName: f.firstName,
    lastName: f.lastName,
    email: f.email,
    emailLower: f.email?.toLowerCase() ?? null,
    phone: f.phone,
    companyName: f.companyName,
    address1: f.address1,
    city: f.city,
    state: f.state,
    postalCode: f.postalCode,
    country: f.country,
    website: f.website,
    timezone: f.timezone,
    dateOfBirth: f.dateOfBirth,
    source: f.source,
    tags: JSON.stringify(f.tags),
    dnd: f.dnd,
    ownerUserId: f.ownerUserId,
    customFields: JSON.stringify(f.customFields),
  };
}

/**
 * The updatedAt of a write: `now`, or one past the location's latest when that is not earlier.
 * Keeping it unique and increasing per location is what lets a paging client (cursor on
 * (updatedAt, id), ascending) never miss a contact written while it pages: the write always lands
 * after any cursor already handed out. Under more than one write per millisecond it runs slightly
 * ahead of the clock.
 */
function nextUpdatedAt(db: Db, locationId: string, now: number): number {
  const latest = statements.maxUpdatedAt(db).get({ locationId })?.max;
  return latest === null || latest === undefined || latest < now ? now : latest + 1;
}

function readRow(db: Db, locationId: string, id: string): Row | undefined {
  return statements.row(db).get({ locationId, id });
}

export function getContact(db: Db, locationId: string, id: string): Contact | undefined {
  const row = readRow(db, locationId, id);
  return row ? rowToContact(row) : undefined;
}

export type NewContact = { locationId: string; fields: ContactFields; now: number; origin: WriteOrigin; id?: string };

export function createContact(db: Db, input: NewContact): Contact {
  // Statements of the handle `db` run inside its transaction (better-sqlite3 transactions are the
  // connection's), so the prepared ones are shared.
  return transaction(db, () => insertContact(db, input));
}

/**
 * createContact for a caller that already holds a transaction (a pull applying a page): the same
 * writes without opening a transaction (or savepoint) of its own. The contact returned is what
 * was written; it is not read back. `latestUpdatedAt`: the updatedAt this caller wrote last in the
 * location, in this transaction, with nothing written there since (it is then the location's latest).
 */
export function insertContact(db: Db, input: NewContact, opts: { latestUpdatedAt?: number } = {}): Contact {
  const fields = contactFieldsSchema.parse(input.fields);
  const id = input.id ?? newId('c');
  // A caller inserting many contacts in one transaction (a pull's page) saves reading it for each.
  const latest = opts.latestUpdatedAt;
  const updatedAt = latest === undefined ? nextUpdatedAt(db, input.locationId, input.now) : Math.max(latest + 1, input.now);
  statements.insert(db).run({ id, locationId: input.locationId, ...columnsOf(fields), createdAt: input.now, updatedAt });
  if (input.origin === 'local') enqueueOutbox(db, input.locationId, id, 'upsert', input.now);
  return { id, locationId: input.locationId, fields, createdAt: input.now, updatedAt, archivedAt: null, version: 1, fieldChangedAt: NO_FIELD_TIMES };
}

/** A change to a contact: a patch, tag adds and removes. */
export interface ContactUpdate {
  locationId: string;
  id: string;
  patch: ContactPatch;
  tags?: { add: readonly string[]; remove: readonly string[] };
  now: number;
  origin: WriteOrigin;
  expectedVersion?: number;
}

/**
 * Applies a patch (and tag adds/removes) to a contact. A write that changes nothing leaves the
 * contact, its version and the outbox alone, so re-applying the same change is harmless.
 * Throws ContactWriteError when the contact is not in the location or `expectedVersion` is stale.
 * `current`: the contact as the caller read it in the transaction it holds, with nothing written
 * to it since (the sync engine's apply, which reads it to merge): it is not read again.
 */
export function updateContact(db: Db, input: ContactUpdate, current?: Contact): Contact {
  return transaction(db, () => {
    if (current === undefined) {
      const row = readRow(db, input.locationId, input.id);
      if (!row) throw new ContactWriteError('not_found');
      current = rowToContact(row);
    } else if (current.id !== input.id || current.locationId !== input.locationId) {
      throw new Error('updateContact: the contact given is not the one to update');
    }
    if (input.expectedVersion !== undefined && current.version !== input.expectedVersion) {
      throw new ContactWriteError('version_mismatch', current.version);
    }
    const next = applyPatch(current.fields, input.patch);
    if (input.tags) next.tags = applyTags(next.tags, input.tags.add, input.tags.remove);
    const before = current.fields;
    const changed = SYNC_FIELDS.some((f) => !fieldEquals(f, before[f] as never, next[f] as never));
    if (!changed) return current;
    const fields = contactFieldsSchema.parse(next);
    const updatedAt = nextUpdatedAt(db, input.locationId, input.now);
    // Most writes (a HighLevel edit of a name, a tag) leave email and phone alone; SQLite rewrites
    // an index whose columns an UPDATE sets even to the same value, so those columns are set only
    // when they change (about 40 µs against 6 per update, with a location's contacts and indexes).
    const keysChanged = fields.email !== before.email || fields.phone !== before.phone;
    let fieldChangedAt = current.fieldChangedAt;
    if (input.origin === 'local') {
      // Tags carry no time: they merge as sets.
      const changes = differingFields(before, fields).filter((k) => k !== 'tags');
      if (changes.length) fieldChangedAt = { ...fieldChangedAt, ...Object.fromEntries(changes.map((k) => [k, updatedAt])) };
    }
    const times = fieldChangedAt === NO_FIELD_TIMES ? null : JSON.stringify(fieldChangedAt);
    (keysChanged ? statements.update : statements.updateKeepingKeys)(db).run({ ...columnsOf(fields), fieldChangedAt: times, updatedAt, version: current.version + 1, id: current.id });
    if (input.origin === 'local') queueLocalWrite(db, input.locationId, current.id, fields, input.now);
    // What was written, as a read-back would return it.
    return { ...current, fields, updatedAt, version: current.version + 1, fieldChangedAt };
  });
}

function setArchived(
  db: Db,
  input: { locationId: string; id: string; now: number; origin: WriteOrigin; expectedVersion?: number },
  archived: boolean,
): Contact {
  return transaction(db, () => {
    const row = readRow(db, input.locationId, input.id);
    if (!row) throw new ContactWriteError('not_found');
    if (input.expectedVersion !== undefined && row.version !== input.expectedVersion) {
      throw new ContactWriteError('version_mismatch', row.version);
    }
    if ((row.archivedAt !== null) === archived) return rowToContact(row);
    db.update(contacts)
      .set({ archivedAt: archived ? input.now : null, updatedAt: nextUpdatedAt(db, input.locationId, input.now), version: row.version + 1 })
      .where(eq(contacts.id, row.id))
      .run();
    if (input.origin === 'local' && archived) enqueueOutbox(db, input.locationId, row.id, 'archive', input.now);
    // An archived contact lets go of its HighLevel contact, at once or once its deletion has gone
    // out (server/sync/held-elsewhere.ts liveHolder): a contact refused because of it is tried
    // again, whichever side archived it.
    if (archived) releaseRefusalsLeaving(db, input.locationId, row.id);
    if (input.origin === 'local' && !archived) queueLocalWrite(db, input.locationId, row.id, rowToContact(row).fields, input.now);
    return rowToContact(readRow(db, input.locationId, row.id)!);
  });
}

/** Archives (Tandem never deletes a contact); archiving an archived contact changes nothing. */
export function archiveContact(db: Db, input: { locationId: string; id: string; now: number; origin: WriteOrigin; expectedVersion?: number }): Contact {
  return setArchived(db, input, true);
}

export function restoreContact(db: Db, input: { locationId: string; id: string; now: number; origin: WriteOrigin; expectedVersion?: number }): Contact {
  return setArchived(db, input, false);
}

/** Contacts with this email, case-insensitively; archived ones only when asked. Oldest first. */
export function findContactsByEmail(db: Db, locationId: string, email: string, opts: { includeArchived?: boolean } = {}): Contact[] {
  if (!opts.includeArchived) return statements.liveByEmail(db).all({ locationId, email: email.trim().toLowerCase() }).map(rowToContact);
  return db
    .select()
    .from(contacts)
    .where(and(eq(contacts.locationId, locationId), eq(contacts.emailLower, email.trim().toLowerCase()), opts.includeArchived ? undefined : isNull(contacts.archivedAt)))
    .orderBy(asc(contacts.createdAt), asc(contacts.id))
    .all()
    .map(rowToContact);
}

/** Contacts with exactly this (normalised) phone; archived ones only when asked. Oldest first. */
export function findContactsByPhone(db: Db, locationId: string, phone: string, opts: { includeArchived?: boolean } = {}): Contact[] {
  if (!opts.includeArchived) return statements.liveByPhone(db).all({ locationId, phone }).map(rowToContact);
  return db
    .select()
    .from(contacts)
    .where(and(eq(contacts.locationId, locationId), eq(contacts.phone, phone), opts.includeArchived ? undefined : isNull(contacts.archivedAt)))
    .orderBy(asc(contacts.createdAt), asc(contacts.id))
    .all()
    .map(rowToContact);
}

/** Which of these Tandem users own a live contact of the location (one query; a scan of its contacts). */
export function ownersOfLiveContacts(db: Db, locationId: string, userIds: readonly string[]): Set<string> {
  if (userIds.length === 0) return new Set();
  const rows = db
    .selectDistinct({ owner: contacts.ownerUserId })
    .from(contacts)
    .where(and(eq(contacts.locationId, locationId), isNull(contacts.archivedAt), sql`${contacts.ownerUserId} in (select value from json_each(${JSON.stringify(userIds)}))`))
    .all();
  return new Set(rows.flatMap((r) => (r.owner === null ? [] : [r.owner])));
}

/** A live contact's matching keys, as liveContactsByKeys returns them. */
export interface ContactKeys {
  id: string;
  /** The email lowercased, as contacts are matched by it. */
  emailLower: string | null;
  phone: string | null;
}

/**
 * The live contacts holding any of these emails (compared case-insensitively) or exact phones: the
 * candidates a batch of HighLevel contacts could be matched to, in two queries however large the
 * batch. A contact holding both kinds of key may come back twice.
 */
export function liveContactsByKeys(db: Db, locationId: string, keys: { emails: readonly string[]; phones: readonly string[] }): ContactKeys[] {
  const emails = keys.emails.map((e) => e.trim().toLowerCase());
  return [
    ...(emails.length ? statements.liveKeysByEmails(db).all({ locationId, emails: JSON.stringify(emails) }) : []),
    ...(keys.phones.length ? statements.liveKeysByPhones(db).all({ locationId, phones: JSON.stringify(keys.phones) }) : []),
  ];
}

/**
 * Live contacts without an email, not linked to a live HighLevel contact, whose create was tried
 * and failed (outbox: pending, attempts made): such a create may have reached HighLevel anyway,
 * and with no email (and the caller checks the phone) only their names can tell its copy.
 */
export function unlinkedAfterFailedCreate(db: Db, locationId: string): Contact[] {
  return db
    .select({ contact: contacts })
    .from(outbox)
    .innerJoin(contacts, and(eq(contacts.id, outbox.contactId), eq(contacts.locationId, outbox.locationId)))
    .where(
      and(
        eq(outbox.locationId, locationId),
        eq(outbox.status, 'pending'),
        eq(outbox.kind, 'upsert'),
        sql`${outbox.attempts} > 0`,
        isNull(contacts.archivedAt),
        isNull(contacts.emailLower),
        sql`not exists (select 1 from ${contactLinks} where ${contactLinks.contactId} = ${contacts.id} and ${contactLinks.remoteDeletedAt} is null)`,
      ),
    )
    .all()
    .map((r) => rowToContact(r.contact));
}

export interface ContactFilters {
  email?: string;
  /** Already normalised by the caller (E.164 when readable). */
  phone?: string;
  tag?: string;
  ownerUserId?: string;
  /** Epoch ms, inclusive. */
  updatedSince?: number;
  includeArchived?: boolean;
}

/** A position in the (updatedAt, id) order: the last contact of the previous page. */
export interface ContactCursor {
  updatedAt: number;
  id: string;
}

export function encodeCursor(c: ContactCursor): string {
  return Buffer.from(JSON.stringify([c.updatedAt, c.id])).toString('base64url');
}

const cursorJson = z.tuple([z.number().int(), z.string().min(1).max(64)]);

/** The cursor, or undefined when it is not one of ours. */
export function decodeCursor(s: string): ContactCursor | undefined {
  try {
    const [updatedAt, id] = cursorJson.parse(JSON.parse(Buffer.from(s, 'base64url').toString('utf8')));
    return { updatedAt, id };
  } catch {
    return undefined;
  }
}

/**
 * One page of contacts in ascending (updatedAt, id) order. A contact written while a client pages
 * moves behind every cursor handed out so far, so it shows up on a later page: nothing is missed
 * (a contact may be seen twice, once per version).
 */
export function listContacts(
  db: Db,
  locationId: string,
  opts: { filters?: ContactFilters; cursor?: ContactCursor; limit: number },
): { contacts: Contact[]; nextCursor: string | null } {
  const f = opts.filters ?? {};
  const where: (SQL | undefined)[] = [eq(contacts.locationId, locationId)];
  if (!f.includeArchived) where.push(isNull(contacts.archivedAt));
  if (f.email !== undefined) where.push(eq(contacts.emailLower, f.email.trim().normalize('NFC').toLowerCase()));
  if (f.phone !== undefined) where.push(eq(contacts.phone, f.phone));
  if (f.ownerUserId !== undefined) where.push(eq(contacts.ownerUserId, f.ownerUserId));
  if (f.tag !== undefined) where.push(sql`exists (select 1 from json_each(${contacts.tags}) where json_each.value = ${f.tag.trim().toLowerCase()})`);
  if (f.updatedSince !== undefined) where.push(gte(contacts.updatedAt, f.updatedSince));
  return keysetPage(db, where, 'asc', opts.cursor, opts.limit);
}

/** Every contact id of a location (archived included), for reconciliation and tests. */
export function contactIds(db: Db, locationId: string): string[] {
  return db.select({ id: contacts.id }).from(contacts).where(eq(contacts.locationId, locationId)).all().map((r) => r.id);
}

/**
 * A page of a location's active contacts, most recently updated first, for people to browse (the
 * panel). `query` matches name, email or phone as a case-insensitive substring; `outbound` keeps
 * only the contacts whose change to HighLevel stands so ('failed': refused for good, 'pending':
 * waiting to go). The cursor is the last contact of the previous page; paging continues strictly
 * older than it.
 */
export function listRecentContacts(
  db: Db,
  locationId: string,
  opts: RecentContactsFilters & { cursor?: ContactCursor; limit: number },
): { contacts: Contact[]; nextCursor: string | null } {
  return keysetPage(db, recentWhere(locationId, opts), 'desc', opts.cursor, opts.limit);
}

/** What narrows listRecentContacts and countRecentContacts alike (recentWhere). */
type RecentContactsFilters = { query?: string; outbound?: OutboxRow['status'] };

/**
 * How many active contacts listRecentContacts would list with these filters, over every page: one
 * COUNT on the same conditions (the same WHERE, built once below), no contact built.
 */
export function countRecentContacts(db: Db, locationId: string, opts: RecentContactsFilters): number {
  return db.select({ n: sql<number>`count(*)` }).from(contacts).where(and(...recentWhere(locationId, opts))).get()?.n ?? 0;
}

function recentWhere(locationId: string, opts: RecentContactsFilters): (SQL | undefined)[] {
  const where: (SQL | undefined)[] = [eq(contacts.locationId, locationId), isNull(contacts.archivedAt)];
  if (opts.outbound) where.push(withOutboxStatus(locationId, opts.outbound));
  const q = opts.query?.trim().toLowerCase();
  if (q) {
    const like = `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    where.push(
      sql`(lower(coalesce(${contacts.firstName}, '') || ' ' || coalesce(${contacts.lastName}, '')) like ${like} escape '\\'
        or ${contacts.emailLower} like ${like} escape '\\' or ${contacts.phone} like ${like} escape '\\')`,
    );
  }
  return where;
}

/** One page ordered by (updatedAt, id) in `dir`, strictly beyond `cursor`; the next cursor when more follow. */
function keysetPage(db: Db, where: (SQL | undefined)[], dir: 'asc' | 'desc', cursor: ContactCursor | undefined, limit: number) {
  const beyond = dir === 'asc' ? gt : lt;
  const order = dir === 'asc' ? asc : desc;
  const conds = cursor
    ? [...where, or(beyond(contacts.updatedAt, cursor.updatedAt), and(eq(contacts.updatedAt, cursor.updatedAt), beyond(contacts.id, cursor.id)))]
    : where;
  const rows = db.select().from(contacts).where(and(...conds)).orderBy(order(contacts.updatedAt), order(contacts.id)).limit(limit + 1).all();
  const page = rows.slice(0, limit).map(rowToContact);
  const last = page.at(-1);
  return { contacts: page, nextCursor: rows.length > limit && last ? encodeCursor(last) : null };
}

const p = sql.placeholder;
/** A placeholder per field column, named after it: `fieldsToColumns` binds them by name. */
const FIELD_COLUMNS = [
  'firstName', 'lastName', 'email', 'emailLower', 'phone', 'companyName', 'address1', 'city', 'state', 'postalCode',
  'country', 'website', 'timezone', 'dateOfBirth', 'source', 'tags', 'dnd', 'ownerUserId', 'customFields',
] as const satisfies readonly (keyof Row)[];
const placeholdersOf = (columns: readonly (typeof FIELD_COLUMNS)[number][]) =>
  Object.fromEntries(columns.map((c) => [c, p(c)])) as unknown as Pick<Row, (typeof FIELD_COLUMNS)[number]>;
const fieldPlaceholders = placeholdersOf(FIELD_COLUMNS);

/** An UPDATE of a contact's `set` columns, its field times, updatedAt and version (placeholders named as the columns). */
function updateOf(db: Db, set: Partial<Row>) {
  return db
    .update(contacts)
    .set({
      ...set,
      fieldChangedAt: p('fieldChangedAt'),
      updatedAt: p('updatedAt'),
      version: p('version'),
      // Drizzle binds placeholders in `set` through each column's encoder (dnd stays 0/1), as in
      // `values`; its types only list plain values there.
    } as unknown as Partial<Row>)
    .where(eq(contacts.id, p('id')));
}
const oldestFirst = [asc(contacts.createdAt), asc(contacts.id)] as const;

/** The hot statements (a pull applies thousands of contacts), prepared once per database handle. */
const statements = {
  maxUpdatedAt: preparedOnce((db) =>
    db.select({ max: sql<number | null>`max(${contacts.updatedAt})` }).from(contacts).where(eq(contacts.locationId, p('locationId'))).prepare(),
  ),
  row: preparedOnce((db) =>
    db.select().from(contacts).where(and(eq(contacts.locationId, p('locationId')), eq(contacts.id, p('id')))).prepare(),
  ),
  liveByEmail: preparedOnce((db) =>
    db
      .select()
      .from(contacts)
      .where(and(eq(contacts.locationId, p('locationId')), eq(contacts.emailLower, p('email')), isNull(contacts.archivedAt)))
      .orderBy(...oldestFirst)
      .prepare(),
  ),
  liveByPhone: preparedOnce((db) =>
    db
      .select()
      .from(contacts)
      .where(and(eq(contacts.locationId, p('locationId')), eq(contacts.phone, p('phone')), isNull(contacts.archivedAt)))
      .orderBy(...oldestFirst)
      .prepare(),
  ),
  // `IN (json_each(…))`: one statement for any number of keys, each looked up on its index.
  liveKeysByEmails: preparedOnce((db) =>
    db
      .select({ id: contacts.id, emailLower: contacts.emailLower, phone: contacts.phone })
      .from(contacts)
      .where(and(eq(contacts.locationId, p('locationId')), sql`${contacts.emailLower} in (select value from json_each(${p('emails')}))`, isNull(contacts.archivedAt)))
      .prepare(),
  ),
  liveKeysByPhones: preparedOnce((db) =>
    db
      .select({ id: contacts.id, emailLower: contacts.emailLower, phone: contacts.phone })
      .from(contacts)
      .where(and(eq(contacts.locationId, p('locationId')), sql`${contacts.phone} in (select value from json_each(${p('phones')}))`, isNull(contacts.archivedAt)))
      .prepare(),
  ),
  update: preparedWrite<ColumnValues & { fieldChangedAt: string | null; updatedAt: number; version: number; id: string }>((db) => updateOf(db, fieldPlaceholders)),
  /** Without the indexed email and phone columns: for the writes that do not change them. */
  updateKeepingKeys: preparedWrite<ColumnValues & { fieldChangedAt: string | null; updatedAt: number; version: number; id: string }>((db) => updateOf(db, placeholdersOf(FIELD_COLUMNS.filter((c) => c !== 'email' && c !== 'emailLower' && c !== 'phone')))),
  insert: preparedWrite<ColumnValues & { id: string; locationId: string; createdAt: number; updatedAt: number }>((db) =>
    db.insert(contacts).values({
      id: p('id'),
      locationId: p('locationId'),
      ...fieldPlaceholders,
      createdAt: p('createdAt'),
      updatedAt: p('updatedAt'),
      archivedAt: null,
      version: 1,
    }),
  ),
};
