// The outbox of Tandem-side contact changes waiting to go to HighLevel, one row per contact
// (coalesced). Written in the same transaction as the contact write; drained by the location's
// sync loop. The only code that touches the table.
import { and, asc, count, eq, inArray, isNull, lte, sql, type SQL } from 'drizzle-orm';
import type { Db } from './client.ts';
import { preparedOnce } from './prepared.ts';
import { contactLinks, contacts, outbox } from './schema.ts';

export type OutboxRow = typeof outbox.$inferSelect;
export type OutboxKind = OutboxRow['kind'];

/** A transaction or the database itself: drizzle's better-sqlite3 transaction has the same API. */
export type DbOrTx = Pick<Db, 'select' | 'insert' | 'update' | 'delete'>;

/**
 * Records "this contact changed locally". An existing row for the contact is reused: the latest
 * kind wins, it becomes pending and due now, and its attempts, error and refusal start over (a new
 * change deserves a fresh try). `updated_at` strictly increases on every enqueue, even within one
 * millisecond, so a sender that finishes an older version can tell (completeOutbox).
 * One exception to "the latest kind wins": a 'fill' is not turned into an 'upsert'. The
 * fill completes a link's creation and goes out with Contact creation Bi-directional even while
 * updates are Inbound; as an 'upsert' it would be parked, and HighLevel's empty fields left empty,
 * merely because Tandem edited the contact before the fill was sent. The fill's push sends what it
 * may and leaves the rest of the edit held (server/sync/outbound.ts). An 'archive' still replaces it.
 */
export function enqueueOutbox(tx: DbOrTx, locationId: string, contactId: string, kind: OutboxKind, now: number): void {
  // Every Tandem write enqueues: prepared once per connection (a transaction handle shares it).
  enqueue(tx as Db).run({ locationId, contactId, kind, now });
}

const enqueue = preparedOnce((db) => {
  const p = sql.placeholder;
  return db
    .insert(outbox)
    .values({ locationId: p('locationId'), contactId: p('contactId'), kind: p('kind'), status: 'pending', attempts: 0, nextAttemptAt: p('now'), createdAt: p('now'), updatedAt: p('now') })
    .onConflictDoUpdate({
      target: [outbox.locationId, outbox.contactId],
      set: {
        kind: sql`case when ${outbox.kind} = 'fill' and excluded.kind = 'upsert' then 'fill' else excluded.kind end`,
        status: 'pending',
        attempts: 0,
        lastError: null,
        refusedBy: null,
        nextAttemptAt: sql`excluded.next_attempt_at`,
        updatedAt: sql`max(excluded.updated_at, ${outbox.updatedAt} + 1)`,
      },
    })
    .prepare();
});

/**
 * Queues the live contacts these Tandem users own that have no row yet: their owner could not be
 * sent while the user had no HighLevel user, and can be now. A row already there keeps its kind.
 */
export function enqueueOwnedBy(db: Db, locationId: string, userIds: readonly string[], now: number): number {
  if (userIds.length === 0) return 0;
  return db.run(sql`
    insert into ${outbox} (location_id, contact_id, kind, status, attempts, next_attempt_at, created_at, updated_at)
    select ${contacts.locationId}, ${contacts.id}, 'upsert', 'pending', 0, ${now}, ${now}, ${now}
    from ${contacts}
    where ${contacts.locationId} = ${locationId} and ${contacts.archivedAt} is null
      and ${contacts.ownerUserId} in (select value from json_each(${JSON.stringify(userIds)}))
    on conflict (location_id, contact_id) do nothing`).changes;
}

/**
 * Queues the live linked contacts holding a value under one of the custom field ids `fieldIds`
 * that their ledger does not (HighLevel was never sent it). A value the ledger holds as it is has nothing to send, and a
 * contact not linked is not created for it (its creation has its own row, or is not Tandem's to
 * make, e.g. after an undo deleted it). A row already there keeps its state: a pending change goes
 * out with the value, a failed one waits for the contact's next change. Values compare as stored
 * JSON; two spellings of one value (a list in another order) cost a read, and send nothing.
 * Called in the transaction of the listing that newly defines them (db/custom-fields.ts).
 */
export function enqueueHoldingValues(db: Db, locationId: string, fieldIds: readonly string[], now: number): number {
  if (fieldIds.length === 0) return 0;
  return db.run(sql`
    insert into ${outbox} (location_id, contact_id, kind, status, attempts, next_attempt_at, created_at, updated_at)
    select ${contacts.locationId}, ${contacts.id}, 'upsert', 'pending', 0, ${now}, ${now}, ${now}
    from ${contacts} join ${contactLinks} on ${contactLinks.contactId} = ${contacts.id} and ${contactLinks.locationId} = ${contacts.locationId}
    where ${contacts.locationId} = ${locationId} and ${contacts.archivedAt} is null and ${contactLinks.remoteDeletedAt} is null
      and exists (
        select 1 from json_each(${contacts.customFields}) held
        where held.key in (select value from json_each(${JSON.stringify(fieldIds)}))
          and held.value is not (select agreed.value from json_each(${contactLinks.base}, '$.customFields') agreed where agreed.key = held.key)
      )
    on conflict (location_id, contact_id) do nothing`).changes;
}

/** Deletes the contact's row, whatever it holds: its change no longer has anything to send. */
export function dropOutbox(db: Db, locationId: string, contactId: string): void {
  db.delete(outbox).where(and(eq(outbox.locationId, locationId), eq(outbox.contactId, contactId))).run();
}

/** Pending rows whose time has come, oldest due first. Failed (permanent) rows are never due. */
export function dueOutbox(db: Db, locationId: string, now: number, limit = 100): OutboxRow[] {
  return due(db).all({ locationId, now, limit });
}

const due = preparedOnce((db) => {
  const p = sql.placeholder;
  return db
    .select()
    .from(outbox)
    .where(and(eq(outbox.locationId, p('locationId')), eq(outbox.status, 'pending'), lte(outbox.nextAttemptAt, p('now'))))
    .orderBy(asc(outbox.nextAttemptAt), asc(outbox.id))
    .limit(p('limit'))
    .prepare();
});

export function getOutbox(db: Db, locationId: string, contactId: string): OutboxRow | undefined {
  return db
    .select()
    .from(outbox)
    .where(and(eq(outbox.locationId, locationId), eq(outbox.contactId, contactId)))
    .get();
}

/**
 * The change in `row` reached HighLevel: deletes the row unless the contact changed again since
 * it was read (then the newer change still has to go). True when deleted.
 */
export function completeOutbox(db: Db, row: Pick<OutboxRow, 'id' | 'updatedAt'>): boolean {
  return complete(db).run({ id: row.id, updatedAt: row.updatedAt }).changes > 0;
}

const complete = preparedOnce((db) =>
  db.delete(outbox).where(and(eq(outbox.id, sql.placeholder('id')), eq(outbox.updatedAt, sql.placeholder('updatedAt')))).prepare(),
);

/**
 * A failed attempt: retried at `nextAttemptAt`, or kept as 'failed' with its reason when
 * permanent (shown on the panel; a later local change makes it pending again). Does nothing when
 * the contact changed again since the row was read: that newer change gets its own fresh attempt.
 * `kind`: what the row becomes (a fill sent while Tandem edits stay held becomes their 'upsert').
 * `refusedBy`: for a refusal because another contact holds the contact's email or phone, that
 * holder's HighLevel contact id; its going or changing tries the row again (releaseRefusals).
 */
export function failOutbox(
  db: Db,
  row: Pick<OutboxRow, 'id' | 'updatedAt'>,
  failure: { error: string; nextAttemptAt: number; permanent: boolean; kind?: OutboxKind; refusedBy?: string },
): boolean {
  return (
    db
      .update(outbox)
      .set({
        ...(failure.kind ? { kind: failure.kind } : {}),
        status: failure.permanent ? 'failed' : 'pending',
        attempts: sql`${outbox.attempts} + 1`,
        lastError: failure.error,
        refusedBy: failure.permanent ? (failure.refusedBy ?? null) : null,
        nextAttemptAt: failure.nextAttemptAt,
      })
      .where(and(eq(outbox.id, row.id), eq(outbox.updatedAt, row.updatedAt)))
      .run().changes > 0
  );
}

export function outboxCounts(db: Db, locationId: string): { pending: number; failed: number } {
  const rows = db
    .select({ status: outbox.status, n: count() })
    .from(outbox)
    .where(eq(outbox.locationId, locationId))
    .groupBy(outbox.status)
    .all();
  return {
    pending: rows.find((r) => r.status === 'pending')?.n ?? 0,
    failed: rows.find((r) => r.status === 'failed')?.n ?? 0,
  };
}

/**
 * The refused contacts the Contacts tab's Refused filter lists (withOutboxStatus among live
 * contacts): how many, and the row refused last (for the panel's "latest problem"; a failed row's
 * nextAttemptAt is when it failed, its updatedAt when it was queued). A refused deletion of a
 * contact archived in Tandem is not among them: the tab lists and edits live contacts only, so the
 * status strip counting it pointed the admin at a list without it.
 */
export function refusedOutbox(db: Db, locationId: string): { count: number; latest: OutboxRow | undefined } {
  const where = and(eq(outbox.locationId, locationId), eq(outbox.status, 'failed'), isNull(contacts.archivedAt));
  const live = and(eq(contacts.id, outbox.contactId), eq(contacts.locationId, outbox.locationId));
  const n = db.select({ n: count() }).from(outbox).innerJoin(contacts, live).where(where).get()?.n ?? 0;
  if (n === 0) return { count: 0, latest: undefined };
  const latest = db.select({ row: outbox }).from(outbox).innerJoin(contacts, live).where(where).orderBy(sql`${outbox.nextAttemptAt} desc`).limit(1).get()?.row;
  return { count: n, latest };
}

/**
 * The deletions HighLevel refused for good of contacts archived in Tandem (or no longer there):
 * how many, and the one refused last. The Contacts tab lists live contacts only, so these are not
 * among its refused ones; the status strip says them apart (the contact stays in HighLevel).
 */
export function refusedDeletions(db: Db, locationId: string): { count: number; latest: OutboxRow | undefined } {
  const where = and(eq(outbox.locationId, locationId), eq(outbox.status, 'failed'), sql`${contacts.archivedAt} is not null or ${contacts.id} is null`);
  const of = and(eq(contacts.id, outbox.contactId), eq(contacts.locationId, outbox.locationId));
  const n = db.select({ n: count() }).from(outbox).leftJoin(contacts, of).where(where).get()?.n ?? 0;
  if (n === 0) return { count: 0, latest: undefined };
  const latest = db.select({ row: outbox }).from(outbox).leftJoin(contacts, of).where(where).orderBy(sql`${outbox.nextAttemptAt} desc`).limit(1).get()?.row;
  return { count: n, latest };
}

// ---- refusals tried again when their holder goes or changes ----------------------------------------

// Due at once: a failed row's nextAttemptAt is when it failed, already past.
const released = { status: 'pending', attempts: 0, lastError: null, refusedBy: null } as const;

const releaseNaming = preparedOnce((db) =>
  db
    .update(outbox)
    .set(released)
    .where(and(eq(outbox.locationId, sql.placeholder('locationId')), eq(outbox.status, 'failed'), eq(outbox.refusedBy, sql.placeholder('holder'))))
    .prepare(),
);

/**
 * The rows refused for good because the HighLevel contact `holder` held their contact's email or
 * phone become pending and due at once, their reason cleared: that contact is gone (deleted in
 * HighLevel) or no longer holds it. Called in the transaction of the change that freed them. A
 * refusal that still holds is refused again at the next attempt, and worded from it: one attempt
 * per change of the holder, never one per pass. Returns how many rows were released.
 */
export function releaseRefusals(db: DbOrTx, locationId: string, holder: string): number {
  return releaseNaming(db as Db).run({ locationId, holder }).changes;
}

// Whether the location has any refusal to release: a pull's ledger writes (saveLink) ask first,
// by the outbox's (location, status) index, which a SELECT answers several times faster than an
// UPDATE that changes nothing (about 0.3 µs against 2).
const anyRefusal = preparedOnce((db) =>
  db
    .select({ id: outbox.id })
    .from(outbox)
    .where(and(eq(outbox.locationId, sql.placeholder('locationId')), eq(outbox.status, 'failed'), sql`${outbox.refusedBy} is not null`))
    .limit(1)
    .prepare(),
);

const releaseLeaving = preparedOnce((db) => {
  const p = sql.placeholder;
  return db
    .update(outbox)
    .set(released)
    .where(
      and(
        eq(outbox.locationId, p('locationId')),
        eq(outbox.status, 'failed'),
        sql`${outbox.refusedBy} = (select ${contactLinks.highlevelId} from ${contactLinks}
          where ${contactLinks.contactId} = ${p('contactId')} and ${contactLinks.locationId} = ${p('locationId')}
            and (${contactLinks.highlevelId} is not ${p('highlevelId')}
              or json_extract(${contactLinks.base}, '$.email') is not ${p('email')}
              or json_extract(${contactLinks.base}, '$.phone') is not ${p('phone')}))`,
      ),
    )
    .prepare();
});

/**
 * releaseRefusals for the HighLevel contact the Tandem contact `contactId` is linked to, when it
 * stops holding what it held through that contact: `next` is the link about to be saved, and the
 * refusals are released when it moves to another HighLevel contact or its email or phone (what
 * HighLevel holds, the ledger) changes; without `next` (the link goes, the contact is archived), in
 * any case. Before the link is written: it is read as it was.
 */
export function releaseRefusalsLeaving(
  db: DbOrTx,
  locationId: string,
  contactId: string,
  next?: { highlevelId: string; email: string | null; phone: string | null },
): number {
  if (anyRefusal(db as Db).get({ locationId }) === undefined) return 0;
  return releaseLeaving(db as Db).run({
    locationId,
    contactId,
    highlevelId: next?.highlevelId ?? null,
    email: next?.email ?? null,
    phone: next?.phone ?? null,
  }).changes;
}

/**
 * Rows waiting to be tried again after a transient failure (not parked, not failed for good): how
 * many, and the one whose retry is latest, which failed last (for the panel's "latest problem").
 */
export function retryingOutbox(db: Db, locationId: string): { count: number; latest: OutboxRow | undefined } {
  const where = and(
    eq(outbox.locationId, locationId),
    eq(outbox.status, 'pending'),
    sql`${outbox.attempts} > 0`,
    sql`${outbox.lastError} is not null`,
    sql`${outbox.nextAttemptAt} < ${PARKED_AT}`,
  );
  const n = db.select({ n: count() }).from(outbox).where(where).get()?.n ?? 0;
  if (n === 0) return { count: 0, latest: undefined };
  return { count: n, latest: db.select().from(outbox).where(where).orderBy(sql`${outbox.nextAttemptAt} desc`).limit(1).get() };
}

/**
 * Makes the location's rows waiting out a transient failure's backoff due now: HighLevel answers
 * again (server/sync/supervisor.ts, after failed passes). Parked and refused rows stay. Returns how many.
 */
export function retryOutboxNow(db: Db, locationId: string, now: number): number {
  return db
    .update(outbox)
    .set({ nextAttemptAt: now })
    .where(
      and(
        eq(outbox.locationId, locationId),
        eq(outbox.status, 'pending'),
        sql`${outbox.attempts} > 0`,
        sql`${outbox.lastError} is not null`,
        sql`${outbox.nextAttemptAt} > ${now}`,
        sql`${outbox.nextAttemptAt} < ${PARKED_AT}`,
      ),
    )
    .run().changes;
}

/**
 * nextAttemptAt of a row waiting for a setting rather than for time (e.g. a Tandem change kept
 * while updates are Inbound): never due, still counted as pending. Added for server/sync/outbound.ts.
 */
export const PARKED_AT = Number.MAX_SAFE_INTEGER;

const unpark = preparedOnce((db) =>
  db
    .update(outbox)
    .set({ nextAttemptAt: sql`${sql.placeholder('now')}`, attempts: 0 })
    .where(
      and(
        eq(outbox.locationId, sql.placeholder('locationId')),
        eq(outbox.status, 'pending'),
        eq(outbox.nextAttemptAt, PARKED_AT),
        eq(outbox.lastError, sql.placeholder('reason')),
      ),
    )
    .prepare(),
);

/**
 * Makes the location's parked rows whose lastError is one of `reasons` due now: the setting that
 * held them back changed. Returns how many were released.
 */
export function unparkOutbox(db: Db, locationId: string, reasons: readonly string[], now: number): number {
  let changes = 0;
  for (const reason of new Set(reasons)) changes += unpark(db).run({ locationId, reason, now }).changes;
  return changes;
}

const nextDue = preparedOnce((db) =>
  db
    .select({ at: sql<number | null>`min(${outbox.nextAttemptAt})` })
    .from(outbox)
    .where(and(eq(outbox.locationId, sql.placeholder('locationId')), eq(outbox.status, 'pending'), lte(outbox.nextAttemptAt, PARKED_AT - 1)))
    .prepare(),
);

/** When the location's next pending row falls due (clock ms); undefined when none will (parked rows never do). */
export function nextOutboxDueAt(db: Db, locationId: string): number | undefined {
  return nextDue(db).get({ locationId })?.at ?? undefined;
}

/** Where a contact's outbox row stands, as the panel's Contacts tab shows it. */
export interface OutboxState {
  status: OutboxRow['status'];
  /** The last error recorded on the row; null while parked (it only restated the setting that held it). */
  reason: string | null;
}

/** The outbox rows of these contacts (a page of the Contacts tab), by contact id, in one query. */
export function outboxStates(db: Db, locationId: string, contactIds: readonly string[]): Map<string, OutboxState> {
  const states = new Map<string, OutboxState>();
  if (contactIds.length === 0) return states;
  const rows = db
    .select({ contactId: outbox.contactId, status: outbox.status, lastError: outbox.lastError, nextAttemptAt: outbox.nextAttemptAt })
    .from(outbox)
    .where(and(eq(outbox.locationId, locationId), inArray(outbox.contactId, [...contactIds])))
    .all();
  for (const r of rows) {
    const parked = r.status === 'pending' && r.nextAttemptAt === PARKED_AT;
    states.set(r.contactId, { status: r.status, reason: parked ? null : r.lastError });
  }
  return states;
}

/**
 * A condition on the contacts table: the contact has an outbox row of `status` in this location
 * ('failed': refused by HighLevel for good; 'pending': waiting to go, parked rows included). For
 * lists of contacts by where their change stands (the Contacts tab's filters). The rows are read
 * by the location's (location, status) index, so a few refused contacts among many are found
 * without reading every contact.
 */
export function withOutboxStatus(locationId: string, status: OutboxRow['status']): SQL {
  return sql`${contacts.id} in (select ${outbox.contactId} from ${outbox} where ${outbox.locationId} = ${locationId} and ${outbox.status} = ${status})`;
}
