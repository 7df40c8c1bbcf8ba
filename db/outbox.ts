// The outbox of Tandem-side contact changes waiting to go to HighLevel, one row per contact
// (coalesced). Written in the same transaction as the contact write; drained by the location's
// sync loop. The only code that touches the table.
import { and, asc, count, eq, inArray, lte, sql, type SQL } from 'drizzle-orm';
import type { Db } from './client.ts';
import { preparedOnce } from './prepared.ts';
import { contacts, outbox } from './schema.ts';

export type OutboxRow = typeof outbox.$inferSelect;
export type OutboxKind = OutboxRow['kind'];

/** A transaction or the database itself: drizzle's better-sqlite3 transaction has the same API. */
export type DbOrTx = Pick<Db, 'select' | 'insert' | 'update' | 'delete'>;

/**
 * Records "this contact changed locally". An existing row for the contact is reused: the latest
 * kind wins, it becomes pending and due now, and its attempts and error start over (a new change
 * deserves a fresh try). `updated_at` strictly increases on every enqueue, even within one
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
 */
export function failOutbox(
  db: Db,
  row: Pick<OutboxRow, 'id' | 'updatedAt'>,
  failure: { error: string; nextAttemptAt: number; permanent: boolean; kind?: OutboxKind },
): boolean {
  return (
    db
      .update(outbox)
      .set({
        ...(failure.kind ? { kind: failure.kind } : {}),
        status: failure.permanent ? 'failed' : 'pending',
        attempts: sql`${outbox.attempts} + 1`,
        lastError: failure.error,
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
 * Rows failed for good, most recently refused first (for the panel's "latest error"): a failed
 * row's nextAttemptAt is when it failed (nothing retries it), its updatedAt when it was queued.
 */
export function failedOutbox(db: Db, locationId: string, limit = 20): OutboxRow[] {
  return db
    .select()
    .from(outbox)
    .where(and(eq(outbox.locationId, locationId), eq(outbox.status, 'failed')))
    .orderBy(sql`${outbox.nextAttemptAt} desc`)
    .limit(limit)
    .all();
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
