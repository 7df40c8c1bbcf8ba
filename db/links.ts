// The contact links and their sync ledger: which HighLevel contact each Tandem contact is, the
// values both sides last agreed on (`base`), and tombstones of contacts deleted in HighLevel.
// The only code that touches contact_links. A HighLevel contact that stops holding an email or
// phone here (deleted, its link gone or moved, its email or phone changed) has the contacts it
// kept out of HighLevel tried again (db/outbox.ts releaseRefusals), in the same transaction.
import { and, asc, eq, gt, isNull, sql, type SQL } from 'drizzle-orm';
import type { Db } from './client.ts';
import { releaseRefusals, releaseRefusalsLeaving } from './outbox.ts';
import { preparedOnce, preparedWrite } from './prepared.ts';
import { contactLinks } from './schema.ts';
import { contactFieldsSchema, type ContactFields } from '../server/sync/contact-model.ts';

export interface Link {
  contactId: string;
  locationId: string;
  highlevelId: string;
  /** What HighLevel held as of the last sync (after Tandem's own writes): the merge base. */
  base: ContactFields;
  /** HighLevel's dateUpdated (epoch ms) of the version the base reflects; null when unknown. */
  remoteUpdatedAt: number | null;
  /** Set when HighLevel deleted the contact: a later update must not bring it back. */
  remoteDeletedAt: number | null;
  linkedAt: number;
  updatedAt: number;
}

type Row = typeof contactLinks.$inferSelect;

function toLink(row: Row): Link {
  // Stored JSON is checked like any other boundary: a ledger that does not parse is a bug, not data.
  const base = contactFieldsSchema.parse(JSON.parse(row.base));
  return { ...row, base };
}

const p = sql.placeholder;

const byContact = preparedOnce((db) =>
  db.select().from(contactLinks).where(and(eq(contactLinks.locationId, p('locationId')), eq(contactLinks.contactId, p('contactId')))).prepare(),
);
const byRemote = preparedOnce((db) =>
  db.select().from(contactLinks).where(and(eq(contactLinks.locationId, p('locationId')), eq(contactLinks.highlevelId, p('highlevelId')))).prepare(),
);
// Linked, for matching: a live link. A tombstoned one (its HighLevel contact deleted) leaves the
// contact free to be matched again: archived, it is never matched anyway; live, it was restored in
// Tandem, and a HighLevel contact with its email or phone is the one to link it to.
const linkedContact = preparedOnce((db) =>
  db
    .select({ contactId: contactLinks.contactId })
    .from(contactLinks)
    .where(and(eq(contactLinks.locationId, p('locationId')), eq(contactLinks.contactId, p('contactId')), isNull(contactLinks.remoteDeletedAt)))
    .prepare(),
);

// `IN (json_each(…))`: one statement for any number of ids, each looked up on its index.
const byRemotes = preparedOnce((db) =>
  db
    .select()
    .from(contactLinks)
    .where(and(eq(contactLinks.locationId, p('locationId')), sql`${contactLinks.highlevelId} in (select value from json_each(${p('highlevelIds')}))`))
    .prepare(),
);
const linkedContacts = preparedOnce((db) =>
  db
    .select({ contactId: contactLinks.contactId, highlevelId: contactLinks.highlevelId })
    .from(contactLinks)
    // `+location_id`: looked up by primary key; with the location's index SQLite scanned all its links.
    .where(
      and(
        sql`+${contactLinks.locationId} = ${p('locationId')}`,
        sql`${contactLinks.contactId} in (select value from json_each(${p('contactIds')}))`,
        isNull(contactLinks.remoteDeletedAt),
      ),
    )
    .prepare(),
);

export function getLinkByContact(db: Db, locationId: string, contactId: string): Link | undefined {
  const row = byContact(db).get({ locationId, contactId });
  return row ? toLink(row) : undefined;
}

export function getLinkByRemote(db: Db, locationId: string, highlevelId: string): Link | undefined {
  const row = byRemote(db).get({ locationId, highlevelId });
  return row ? toLink(row) : undefined;
}

/** The links of these HighLevel contacts (tombstoned ones included), by HighLevel id, in one query. */
export function linksByRemote(db: Db, locationId: string, highlevelIds: readonly string[]): Map<string, Link> {
  const links = new Map<string, Link>();
  if (highlevelIds.length === 0) return links;
  for (const row of byRemotes(db).all({ locationId, highlevelIds: JSON.stringify(highlevelIds) })) links.set(row.highlevelId, toLink(row));
  return links;
}

/** Which of these Tandem contacts have a live link (see linkedContact), in one query. */
export function linkedContactIds(db: Db, locationId: string, contactIds: readonly string[]): Set<string> {
  return new Set(liveHighLevelIds(db, locationId, contactIds).keys());
}

/** The HighLevel id of each of these Tandem contacts that has a live link, by contact id, in one query (no ledger read). */
export function liveHighLevelIds(db: Db, locationId: string, contactIds: readonly string[]): Map<string, string> {
  if (contactIds.length === 0) return new Map();
  return new Map(linkedContacts(db).all({ locationId, contactIds: JSON.stringify(contactIds) }).map((r) => [r.contactId, r.highlevelId]));
}

/** Whether the Tandem contact has a live link (see linkedContact), without reading its ledger. */
export function isContactLinked(db: Db, locationId: string, contactId: string): boolean {
  return linkedContact(db).get({ locationId, contactId }) !== undefined;
}

export interface LinkInput {
  locationId: string;
  contactId: string;
  highlevelId: string;
  base: ContactFields;
  /** Undefined keeps the stored value; a link never moves back in HighLevel's time. */
  remoteUpdatedAt?: number | null;
  now: number;
}

/** Creates the link or updates its ledger. A tombstoned link stays tombstoned unless it moves to another HighLevel contact. */
export function upsertLink(db: Db, input: LinkInput): Link {
  saveLink(db, input);
  return getLinkByContact(db, input.locationId, input.contactId)!;
}

/**
 * upsertLink without reading the link back: one statement (the hot path of a pull). The ledger's
 * remoteUpdatedAt only moves forward, and an absent one keeps the stored value, both decided in SQL.
 */
export function saveLink(db: Db, input: LinkInput): void {
  const base = contactFieldsSchema.parse(input.base);
  // A HighLevel contact this link leaves, or whose email or phone changes, no longer keeps out of
  // HighLevel a contact it was refused for: that one is tried again (read before the link moves).
  releaseRefusalsLeaving(db, input.locationId, input.contactId, { highlevelId: input.highlevelId, email: base.email, phone: base.phone });
  const params = paramsOf(input, base);
  // The link as it is (the usual case: a sync of a linked contact) takes only its ledger: the
  // upsert sets highlevel_id too, and SQLite rewrites the unique index of a column an UPDATE sets,
  // even to the same value. A new link, or one moving to another HighLevel contact, is upserted.
  if (updateLedger(db).run(params).changes === 0) upsert(db).run(params);
}

/**
 * saveLink for a link known to be new: a contact just created, or one just matched by email or
 * phone, for a HighLevel contact no link holds. One INSERT (saveLink would try the UPDATE first);
 * it throws if either side is linked already.
 */
export function insertLink(db: Db, input: LinkInput): void {
  insert(db).run(paramsOf(input));
}

/** `base`: the input's ledger as checked, when the caller checked it already. */
function paramsOf(input: LinkInput, base = contactFieldsSchema.parse(input.base)): LinkParams {
  return {
    contactId: input.contactId,
    locationId: input.locationId,
    highlevelId: input.highlevelId,
    base: JSON.stringify(base),
    remoteUpdatedAt: input.remoteUpdatedAt ?? null,
    now: input.now,
  };
}

/** Newer of the stored remoteUpdatedAt and `incoming`; an absent one keeps the other. */
const newerRemoteUpdatedAt = (incoming: SQL) => {
  const stored = contactLinks.remoteUpdatedAt;
  return sql`case when ${incoming} is null then ${stored} when ${stored} is null then ${incoming} else max(${stored}, ${incoming}) end`;
};

type LinkParams = { contactId: string; locationId: string; highlevelId: string; base: string; remoteUpdatedAt: number | null; now: number };

const updateLedger = preparedWrite<LinkParams>((db) =>
  db
    .update(contactLinks)
    .set({ base: sql`${p('base')}`, remoteUpdatedAt: newerRemoteUpdatedAt(sql`${p('remoteUpdatedAt')}`), updatedAt: sql`${p('now')}` })
    .where(and(eq(contactLinks.contactId, p('contactId')), eq(contactLinks.locationId, p('locationId')), eq(contactLinks.highlevelId, p('highlevelId')))),
);

const newLink = (db: Db) =>
  db.insert(contactLinks).values({
    contactId: p('contactId'),
    locationId: p('locationId'),
    highlevelId: p('highlevelId'),
    base: p('base'),
    remoteUpdatedAt: p('remoteUpdatedAt'),
    linkedAt: p('now'),
    updatedAt: p('now'),
  });

const insert = preparedWrite<LinkParams>(newLink);

// Moving to another HighLevel contact (a contact restored in Tandem, created again in HighLevel or
// matched to another one) starts that contact's own history: no tombstone, its own remoteUpdatedAt.
const sameRemote = sql`${contactLinks.highlevelId} = excluded.highlevel_id`;
const upsert = preparedWrite<LinkParams>((db) =>
  newLink(db).onConflictDoUpdate({
    target: contactLinks.contactId,
    set: {
      highlevelId: sql`excluded.highlevel_id`,
      base: sql`excluded.base`,
      remoteUpdatedAt: sql`case when ${sameRemote} then ${newerRemoteUpdatedAt(sql`excluded.remote_updated_at`)} else excluded.remote_updated_at end`,
      remoteDeletedAt: sql`case when ${sameRemote} then ${contactLinks.remoteDeletedAt} else null end`,
      updatedAt: sql`excluded.updated_at`,
    },
  }),
);

/** Marks HighLevel's contact deleted (idempotent: the first deletion time is kept). */
export function tombstone(db: Db, locationId: string, highlevelId: string, now: number): void {
  releaseRefusals(db, locationId, highlevelId);
  db.update(contactLinks)
    .set({ remoteDeletedAt: now, updatedAt: now })
    .where(and(eq(contactLinks.locationId, locationId), eq(contactLinks.highlevelId, highlevelId), isNull(contactLinks.remoteDeletedAt)))
    .run();
}

/** Removes a link and its ledger (the undo of a pull that linked or created the contact; a link taken over). */
export function deleteLink(db: Db, locationId: string, contactId: string): void {
  releaseRefusalsLeaving(db, locationId, contactId);
  db.delete(contactLinks).where(and(eq(contactLinks.locationId, locationId), eq(contactLinks.contactId, contactId))).run();
}

/**
 * HighLevel ids of the location's live (not tombstoned) links, what a full sweep expects to see, in
 * id order: those after `after`, at most `limit` (keyset on contact_links_location_remote; all by
 * default). The sweep reads them a page at a time: 20,000 at once held the event loop for about 50 ms.
 */
export function liveRemoteIds(db: Db, locationId: string, page: { after?: string; limit?: number } = {}): string[] {
  return db
    .select({ id: contactLinks.highlevelId })
    .from(contactLinks)
    .where(
      and(
        eq(contactLinks.locationId, locationId),
        isNull(contactLinks.remoteDeletedAt),
        page.after === undefined ? undefined : gt(contactLinks.highlevelId, page.after),
      ),
    )
    .orderBy(asc(contactLinks.highlevelId))
    .limit(page.limit ?? -1)
    .all()
    .map((r) => r.id);
}
