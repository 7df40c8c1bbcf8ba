// The webhook inbox: verified HighLevel events stored before they are acknowledged, then applied
// by the inbox processor (server/installs/inbox-processor.ts). The only code that touches the table.
import { and, asc, eq, inArray, isNull, like, lt, lte, ne, or, sql } from 'drizzle-orm';
import type { Db } from './client.ts';
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
}

/** Stores an event once; a redelivery with the same webhookId is ignored. True when newly stored. */
export function insertInboxEvent(db: Db, event: NewInboxEvent): boolean {
  const result = db.insert(webhookInbox).values(event).onConflictDoNothing({ target: webhookInbox.webhookId }).run();
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
  return db
    .select()
    .from(webhookInbox)
    .where(
      and(
        isNull(webhookInbox.processedAt),
        or(isNull(webhookInbox.outcome), ne(webhookInbox.outcome, QUEUED)),
        or(isNull(webhookInbox.nextAttemptAt), lte(webhookInbox.nextAttemptAt, now)),
      ),
    )
    .orderBy(asc(webhookInbox.receivedAt), asc(webhookInbox.webhookId))
    .limit(limit)
    .all();
}

/** Hands a pending event to its location's sync loop (contact events): it stays pending until the loop applies it. */
export function queueInboxEvent(db: Db, webhookId: string): void {
  db.update(webhookInbox).set({ outcome: QUEUED, nextAttemptAt: null }).where(eq(webhookInbox.webhookId, webhookId)).run();
}

/** A location's events queued for its sync loop, in the order they were received. */
export function queuedInboxEvents(db: Db, locationId: string, limit = 100): InboxEvent[] {
  return db
    .select()
    .from(webhookInbox)
    .where(and(isNull(webhookInbox.processedAt), eq(webhookInbox.outcome, QUEUED), eq(webhookInbox.locationId, locationId)))
    .orderBy(asc(webhookInbox.receivedAt), asc(webhookInbox.webhookId))
    .limit(limit)
    .all();
}

/** A queued event whose application failed: it stays queued, with one more attempt counted. */
export function countInboxAttempt(db: Db, webhookId: string): void {
  db.update(webhookInbox).set({ attempts: sqlIncrement() }).where(eq(webhookInbox.webhookId, webhookId)).run();
}

/** Done with an event: applied, deliberately ignored, or failed for good. */
export function markInboxProcessed(db: Db, webhookId: string, outcome: string, now: number): void {
  db.update(webhookInbox)
    .set({ processedAt: now, outcome, nextAttemptAt: null, attempts: sqlIncrement() })
    .where(eq(webhookInbox.webhookId, webhookId))
    .run();
}

/** A failed attempt that will be retried at `nextAttemptAt`. */
export function markInboxRetry(db: Db, webhookId: string, outcome: string, nextAttemptAt: number): void {
  db.update(webhookInbox)
    .set({ outcome, nextAttemptAt, attempts: sqlIncrement() })
    .where(eq(webhookInbox.webhookId, webhookId))
    .run();
}

/** Not done, not failed: look again at `nextAttemptAt` (e.g. waiting for the OAuth callback). */
export function deferInboxEvent(db: Db, webhookId: string, outcome: string, nextAttemptAt: number): void {
  db.update(webhookInbox).set({ outcome, nextAttemptAt }).where(eq(webhookInbox.webhookId, webhookId)).run();
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

/** Every stored event, oldest first (tests and operators). */
export function listInboxEvents(db: Db): InboxEvent[] {
  return db.select().from(webhookInbox).orderBy(asc(webhookInbox.receivedAt), asc(webhookInbox.webhookId)).all();
}

function sqlIncrement() {
  return sql`${webhookInbox.attempts} + 1`;
}
