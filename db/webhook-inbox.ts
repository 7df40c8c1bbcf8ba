// The webhook inbox: verified HighLevel events stored before they are acknowledged, then applied
// by the inbox processor (server/installs/inbox-processor.ts) or, for contact events, by their
// location's sync loop (stored queued for it). The only code that touches the table.
// The hot path (insert on every webhook, the processor's selects and updates) runs through
// statements prepared once per database: building and preparing the SQL again on each call cost
// more than the write itself.
import Sqlite from 'better-sqlite3';
import { and, asc, eq, inArray, isNull, like, lt, lte, or, sql } from 'drizzle-orm';
import type { Db } from './client.ts';
import { preparedOnce, prepareWrite, transaction } from './prepared.ts';
import { webhookInbox } from './schema.ts';

export type InboxEvent = typeof webhookInbox.$inferSelect;

export interface NewInboxEvent {
  webhookId: string;
  type: string;
  locationId: string | null;
  companyId: string | null;
  /** The raw body exactly as received. */
  body: string;
  receivedAt: number;
  /** Not before this time (work Tandem queues for itself after a transient failure). */
  nextAttemptAt?: number | null;
  /**
   * Stored already handed to its location's sync loop (outcome QUEUED), as the inbox processor
   * would hand it: the webhook receiver does so for contact events of installed locations.
   */
  queued?: boolean;
}

/** Stores an event once; a redelivery with the same webhookId is ignored. True when newly stored. */
export function insertInboxEvent(db: Db, event: NewInboxEvent): boolean {
  const { queued, ...row } = event;
  const result = statements(db).insert.run({ ...row, nextAttemptAt: queued ? null : (event.nextAttemptAt ?? null), outcome: queued ? QUEUED : null });
  return result.changes > 0;
}

export function getInboxEvent(db: Db, webhookId: string): InboxEvent | undefined {
  return db.select().from(webhookInbox).where(eq(webhookInbox.webhookId, webhookId)).get();
}

/** Outcome of an event handed to its location's sync loop: pending, but not the inbox processor's to apply. */
export const QUEUED = 'queued';

/**
 * Events waiting to be applied whose retry time has come, oldest first (HighLevel's emission
 * order). Events queued for a location's sync loop are the loop's (queuedInboxEvents).
 */
export function dueInboxEvents(db: Db, now: number, limit = 100): InboxEvent[] {
  return statements(db).due.all({ now, limit });
}

/** Hands a pending event to its location's sync loop (contact events): it stays pending until the loop applies it. */
export function queueInboxEvent(db: Db, webhookId: string): void {
  statements(db).queue.run({ webhookId });
}

/** A location's events queued for its sync loop, in the order they were received. */
/** The location's queued events, oldest first; with `receivedUntil`, only those received by then (clock ms). */
export function queuedInboxEvents(db: Db, locationId: string, limit = 100, receivedUntil = Number.MAX_SAFE_INTEGER): InboxEvent[] {
  return statements(db).queued.all({ locationId, limit, receivedUntil });
}

/**
 * The location was uninstalled: the contact events still queued for its loop will never be
 * applied (the loop is gone; a reinstall starts with a full sweep), so they are closed with that
 * reason instead of counting as "waiting to come in" forever. Returns how many.
 */
export function dropQueuedInboxEvents(db: Db, locationId: string, outcome: string, now: number): number {
  return db
    .update(webhookInbox)
    .set({ processedAt: now, outcome })
    .where(and(eq(webhookInbox.locationId, locationId), isNull(webhookInbox.processedAt), sql`${webhookInbox.outcome} = 'queued'`))
    .run().changes;
}

/** A queued event whose application failed: it stays queued, with one more attempt counted. */
export function countInboxAttempt(db: Db, webhookId: string): void {
  statements(db).countAttempt.run({ webhookId });
}

/** Done with an event: applied, deliberately ignored, or failed for good. */
export function markInboxProcessed(db: Db, webhookId: string, outcome: string, now: number): void {
  statements(db).processed.run({ webhookId, outcome, now });
}

/** A failed attempt that will be retried at `nextAttemptAt`. */
export function markInboxRetry(db: Db, webhookId: string, outcome: string, nextAttemptAt: number): void {
  statements(db).retry.run({ webhookId, outcome, nextAttemptAt });
}

/** Not done, not failed: look again at `nextAttemptAt` (e.g. waiting for the OAuth callback). */
export function deferInboxEvent(db: Db, webhookId: string, outcome: string, nextAttemptAt: number): void {
  statements(db).defer.run({ webhookId, outcome, nextAttemptAt });
}

/** What the inbox processor decided for one event (see recordInboxOutcomes). */
export type InboxOutcomeWrite =
  | { webhookId: string; kind: 'processed'; outcome: string; now: number }
  | { webhookId: string; kind: 'retry'; outcome: string; nextAttemptAt: number }
  | { webhookId: string; kind: 'deferred'; outcome: string; nextAttemptAt: number }
  | { webhookId: string; kind: 'queued' };

/** Records a batch of outcomes in one transaction (one commit instead of one per event). */
export function recordInboxOutcomes(db: Db, writes: readonly InboxOutcomeWrite[]): void {
  if (writes.length === 0) return;
  transaction(db, () => {
    for (const w of writes) {
      if (w.kind === 'processed') markInboxProcessed(db, w.webhookId, w.outcome, w.now);
      else if (w.kind === 'retry') markInboxRetry(db, w.webhookId, w.outcome, w.nextAttemptAt);
      else if (w.kind === 'deferred') deferInboxEvent(db, w.webhookId, w.outcome, w.nextAttemptAt);
      else queueInboxEvent(db, w.webhookId);
    }
  });
}

/**
 * Makes deferred events about these locations or this company due now (the OAuth callback they
 * were waiting for has arrived). Returns how many were woken.
 */
export function wakeDeferredInboxEvents(db: Db, scope: { companyId: string; locationIds: string[] }, now: number): number {
  const about = scope.locationIds.length
    ? or(eq(webhookInbox.companyId, scope.companyId), inArray(webhookInbox.locationId, scope.locationIds))
    : eq(webhookInbox.companyId, scope.companyId);
  const res = db
    .update(webhookInbox)
    .set({ nextAttemptAt: now })
    .where(and(isNull(webhookInbox.processedAt), like(webhookInbox.outcome, 'deferred:%'), about))
    .run();
  return res.changes;
}

/** Deletes events processed before `before`; returns how many. Pending events are never deleted. */
export function pruneInboxEvents(db: Db, before: number): number {
  return db.delete(webhookInbox).where(lt(webhookInbox.processedAt, before)).run().changes;
}

/**
 * A read-only connection of its own to the inbox of the database file at `path`, for a thread that
 * must never write it (the front, server/front.ts): whether an event is stored already.
 */
export function openInboxLookup(path: string): { has(webhookId: string): boolean; close(): void } {
  const sqlite = new Sqlite(path, { readonly: true, fileMustExist: true });
  sqlite.pragma('busy_timeout = 5000');
  const select = sqlite.prepare<[string]>('SELECT 1 FROM webhook_inbox WHERE webhook_id = ?');
  return {
    has: (webhookId) => select.get(webhookId) !== undefined,
    close: () => sqlite.close(),
  };
}

/** Every stored event, oldest first (tests and operators). */
export function listInboxEvents(db: Db): InboxEvent[] {
  return db.select().from(webhookInbox).orderBy(asc(webhookInbox.receivedAt), asc(webhookInbox.webhookId)).all();
}

function sqlIncrement() {
  return sql`${webhookInbox.attempts} + 1`;
}

const p = sql.placeholder;

// The WHERE clauses of the partial indexes webhook_inbox_due and webhook_inbox_queued (db/schema.ts),
// word for word and with the literal 'queued' (a bound parameter would not match): SQLite uses a
// partial index only for a query whose WHERE contains the index's condition.
const dueCondition = sql`(${webhookInbox.processedAt} is null and (${webhookInbox.outcome} is null or ${webhookInbox.outcome} <> 'queued'))`;
const queuedCondition = sql`(${webhookInbox.processedAt} is null and ${webhookInbox.outcome} = 'queued')`;

function prepareStatements(db: Db) {
  const byId = eq(webhookInbox.webhookId, p('webhookId'));
  const oldestFirst = [asc(webhookInbox.receivedAt), asc(webhookInbox.webhookId)] as const;
  type Id = { webhookId: string };
  return {
    insert: prepareWrite<Omit<NewInboxEvent, 'queued'> & { nextAttemptAt: number | null; outcome: string | null }>(
      db,
      db
        .insert(webhookInbox)
        .values({
          webhookId: p('webhookId'),
          type: p('type'),
          locationId: p('locationId'),
          companyId: p('companyId'),
          body: p('body'),
          receivedAt: p('receivedAt'),
          nextAttemptAt: p('nextAttemptAt'),
          outcome: p('outcome'),
        })
        .onConflictDoNothing({ target: webhookInbox.webhookId }),
    ),
    due: db
      .select()
      .from(webhookInbox)
      .where(and(dueCondition, or(isNull(webhookInbox.nextAttemptAt), lte(webhookInbox.nextAttemptAt, p('now')))))
      .orderBy(...oldestFirst)
      .limit(p('limit'))
      .prepare(),
    queued: db
      .select()
      .from(webhookInbox)
      .where(and(queuedCondition, eq(webhookInbox.locationId, p('locationId')), lte(webhookInbox.receivedAt, p('receivedUntil'))))
      .orderBy(...oldestFirst)
      .limit(p('limit'))
      .prepare(),
    queue: prepareWrite<Id>(db, db.update(webhookInbox).set({ outcome: QUEUED, nextAttemptAt: null }).where(byId)),
    countAttempt: prepareWrite<Id>(db, db.update(webhookInbox).set({ attempts: sqlIncrement() }).where(byId)),
    processed: prepareWrite<Id & { outcome: string; now: number }>(
      db,
      db
        .update(webhookInbox)
        .set({ processedAt: sql`${p('now')}`, outcome: sql`${p('outcome')}`, nextAttemptAt: null, attempts: sqlIncrement() })
        .where(byId),
    ),
    retry: prepareWrite<Id & { outcome: string; nextAttemptAt: number }>(
      db,
      db
        .update(webhookInbox)
        .set({ outcome: sql`${p('outcome')}`, nextAttemptAt: sql`${p('nextAttemptAt')}`, attempts: sqlIncrement() })
        .where(byId),
    ),
    defer: prepareWrite<Id & { outcome: string; nextAttemptAt: number }>(
      db,
      db.update(webhookInbox).set({ outcome: sql`${p('outcome')}`, nextAttemptAt: sql`${p('nextAttemptAt')}` }).where(byId),
    ),
  };
}

/** Prepared once per connection (a transaction's handle shares them); dropped with the connection. */
const statements = preparedOnce(prepareStatements);
